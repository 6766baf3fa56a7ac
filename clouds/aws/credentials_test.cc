// The credential chain without a network: environment, profiles, their
// errors, credential_process and the refresh rule. STS is in
// credentials_sts_test.cc (moto), IMDS and the container endpoint in
// credentials_http_test.cc (a scripted server).
#include "clouds/aws/credentials.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "clouds/aws/credentials_sources.h"
#include "helper/output.h"
#include "tests/test_util.h"

namespace ch {
namespace {

using namespace std::chrono_literals;

std::string iso(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));
  return buf;
}

class AwsCredentialsTest : public ::testing::Test {
 protected:
  AwsCredentialsTest() {
    env_.home = home_.path();
    env_.vars["AWS_EC2_METADATA_DISABLED"] = "true";
    test::run_command("mkdir -p " + test::shell_quote(home_.path() + "/.aws"));
  }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(home_.path() + "/" + name, std::ios::binary) << text;
  }
  std::string creds_path() const { return home_.path() + "/.aws/credentials"; }
  std::string config_path() const { return home_.path() + "/.aws/config"; }

  Result<std::unique_ptr<AwsCredentialProvider>> resolve() {
    return resolve_aws_credentials(http_, env_, "us-east-1");
  }
  std::string resolve_error() {
    auto r = resolve();
    EXPECT_FALSE(r.ok());
    return r.ok() ? "" : r.message();
  }

  test::TempDir home_;
  AwsEnv env_;
  HttpClient http_;
};

TEST_F(AwsCredentialsTest, EnvironmentWinsOverProfiles) {
  write(".aws/credentials", "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = filesecret\n");
  env_.vars["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  env_.vars["AWS_SECRET_ACCESS_KEY"] = "envsecret-5c1e8a";
  env_.vars["AWS_SESSION_TOKEN"] = "envtoken-77f1";
  env_.vars["AWS_PROFILE"] = "does-not-exist";  // not even looked at
  auto p = resolve();
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ((*p)->source(), "environment");
  auto c = (*p)->get();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key_id, "AKIDENV");
  EXPECT_EQ(c->secret_access_key, "envsecret-5c1e8a");
  EXPECT_EQ(c->session_token, "envtoken-77f1");
  EXPECT_EQ(redact("k=envsecret-5c1e8a t=envtoken-77f1"), "k=*** t=***");

  env_.vars.erase("AWS_SESSION_TOKEN");
  env_.vars["AWS_SECURITY_TOKEN"] = "legacy-token";
  EXPECT_EQ((*resolve())->get()->session_token, "legacy-token");
}

TEST_F(AwsCredentialsTest, PartialEnvironmentIsAnError) {
  env_.vars["AWS_ACCESS_KEY_ID"] = "AKID";
  EXPECT_EQ(resolve_error(), "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
  env_.vars.erase("AWS_ACCESS_KEY_ID");
  env_.vars["AWS_SECRET_ACCESS_KEY"] = "s";
  EXPECT_EQ(resolve_error(), "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
}

TEST_F(AwsCredentialsTest, ProfileSelection) {
  write(".aws/credentials",
        "[default]\naws_access_key_id = DEFKEY\naws_secret_access_key = defsecret\n"
        "# the CI profile\n[ci]\naws_access_key_id = CIKEY\naws_secret_access_key = cisecret-91ab\n"
        "aws_session_token = citoken-42\n");
  auto def = resolve();
  ASSERT_TRUE(def.ok()) << def.message();
  EXPECT_EQ((*def)->source(), "profile 'default' in " + creds_path());
  EXPECT_EQ((*def)->get()->access_key_id, "DEFKEY");

  env_.vars["AWS_PROFILE"] = "ci";
  auto ci = resolve();
  ASSERT_TRUE(ci.ok()) << ci.message();
  EXPECT_EQ((*ci)->source(), "profile 'ci' in " + creds_path());
  EXPECT_EQ((*ci)->get()->access_key_id, "CIKEY");
  EXPECT_EQ((*ci)->get()->session_token, "citoken-42");
  EXPECT_EQ(redact("cisecret-91ab citoken-42"), "*** ***");
}

TEST_F(AwsCredentialsTest, ConfigFileOnlyKeys) {
  write(".aws/config", "[profile build]\nregion = eu-west-2\naws_access_key_id = CFGKEY\n"
                       "aws_secret_access_key = cfgsecret\n");
  env_.vars["AWS_PROFILE"] = "build";
  auto p = resolve();
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ((*p)->source(), "profile 'build' in " + config_path());
  EXPECT_EQ((*p)->get()->access_key_id, "CFGKEY");
}

TEST_F(AwsCredentialsTest, MissingNamedProfileIsAnError) {
  write(".aws/credentials", "[default]\naws_access_key_id = A\naws_secret_access_key = S\n");
  env_.vars["AWS_PROFILE"] = "nope";
  EXPECT_EQ(resolve_error(),
            "AWS profile 'nope' not found in " + creds_path() + " or " + config_path());
}

TEST_F(AwsCredentialsTest, NothingFound) {
  const std::string expected =
      "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in " +
      creds_path() + " or " + config_path() +
      " (AWS_PROFILE), or AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or run with an ECS/EKS "
      "or EC2 instance role (disabled by AWS_EC2_METADATA_DISABLED)";
  EXPECT_EQ(resolve_error(), expected);
  // A default profile that only sets a region has no credentials either.
  write(".aws/config", "[default]\nregion = eu-west-2\n");
  EXPECT_EQ(resolve_error(), expected);
}

TEST_F(AwsCredentialsTest, KeyPairHalves) {
  write(".aws/credentials", "[a]\naws_access_key_id = A\n[b]\naws_secret_access_key = S\n");
  env_.vars["AWS_PROFILE"] = "a";
  EXPECT_EQ(resolve_error(), "profile 'a' in " + creds_path() +
                                 " sets aws_access_key_id but not aws_secret_access_key");
  env_.vars["AWS_PROFILE"] = "b";
  EXPECT_EQ(resolve_error(), "profile 'b' in " + creds_path() +
                                 " sets aws_secret_access_key but not aws_access_key_id");
}

TEST_F(AwsCredentialsTest, SourceProfileCycleAndMissingSource) {
  write(".aws/config",
        "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/a\nsource_profile = b\n"
        "[profile b]\nrole_arn = arn:aws:iam::123456789012:role/b\nsource_profile = c\n"
        "[profile c]\nrole_arn = arn:aws:iam::123456789012:role/c\nsource_profile = a\n"
        "[profile d]\nrole_arn = arn:aws:iam::123456789012:role/d\nsource_profile = ghost\n"
        "[profile e]\nrole_arn = arn:aws:iam::123456789012:role/e\nsource_profile = f\n"
        "[profile f]\nregion = us-east-1\n");
  env_.vars["AWS_PROFILE"] = "a";
  EXPECT_EQ(resolve_error(), "AWS profiles form a source_profile cycle: 'a' -> 'b' -> 'c' -> 'a'");
  env_.vars["AWS_PROFILE"] = "d";
  EXPECT_EQ(resolve_error(), "profile 'd': source_profile: AWS profile 'ghost' not found in " +
                                 creds_path() + " or " + config_path());
  env_.vars["AWS_PROFILE"] = "e";
  EXPECT_EQ(resolve_error(), "profile 'f' (a source_profile) has no credentials");
}

TEST_F(AwsCredentialsTest, UnsupportedAndConflictingProfiles) {
  write(".aws/config",
        "[profile mfa]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = k\nmfa_serial = arn:aws:iam::1:mfa/u\n"
        "[profile both]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = k\ncredential_source = Environment\n"
        "[profile bare]\nrole_arn = arn:aws:iam::1:role/x\n"
        "[profile badsource]\nrole_arn = arn:aws:iam::1:role/x\ncredential_source = Moon\n"
        "[profile envsource]\nrole_arn = arn:aws:iam::1:role/x\ncredential_source = Environment\n"
        "[profile web]\nweb_identity_token_file = /t\n"
        "[profile sso]\nsso_session = corp\nsso_account_id = 1\n"
        "[profile dur]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = k\nduration_seconds = 60\n"
        "[profile k]\naws_access_key_id = A\naws_secret_access_key = S\n");
  auto err = [&](const std::string& profile) {
    env_.vars["AWS_PROFILE"] = profile;
    return resolve_error();
  };
  EXPECT_EQ(err("mfa"), "profile 'mfa' needs an MFA code (mfa_serial), which cloud_helper cannot "
                        "ask for; use credential_process or temporary keys");
  EXPECT_EQ(err("both"), "profile 'both' sets both source_profile and credential_source");
  EXPECT_EQ(err("bare"), "profile 'bare' sets role_arn but no source_profile, credential_source "
                         "or web_identity_token_file");
  EXPECT_EQ(err("badsource"), "profile 'badsource': credential_source 'Moon' is not Environment, "
                              "Ec2InstanceMetadata or EcsContainer");
  EXPECT_EQ(err("envsource"),
            "profile 'envsource': credential_source Environment but AWS_ACCESS_KEY_ID is not set");
  EXPECT_EQ(err("web"), "profile 'web' sets web_identity_token_file without role_arn");
  EXPECT_EQ(err("sso"), "profile 'sso' uses AWS IAM Identity Center (SSO), which cloud_helper "
                        "does not read; set credential_process = aws configure "
                        "export-credentials --profile sso --format process");
  EXPECT_EQ(err("dur"), "profile 'dur': duration_seconds '60' is not 900..43200");
}

TEST_F(AwsCredentialsTest, BadFileIsAnError) {
  write(".aws/credentials", "[default]\nthis is not a setting\n");
  EXPECT_EQ(resolve_error(), creds_path() + ":2: expected 'key = value'");
}

TEST_F(AwsCredentialsTest, CredentialProcess) {
  const std::string count = home_.path() + "/runs";
  const std::string json = home_.path() + "/out.json";
  write("proc.sh", "echo run >> '" + count + "'\ncat '" + json + "'\n");
  write(".aws/config", "[profile p]\ncredential_process = /bin/sh " + home_.path() + "/proc.sh\n");
  env_.vars["AWS_PROFILE"] = "p";
  auto runs = [&] {
    return test::run_command("wc -l < " + test::shell_quote(count)).output;
  };

  // Long-lived: fetched once.
  write("out.json", R"({"Version": 1, "AccessKeyId": "ASIAPROC", "SecretAccessKey": "procsecret-3f9",
                       "SessionToken": "proctoken-8d2", "Expiration": ")" +
                        iso(std::chrono::system_clock::now() + 1h) + "\"}");
  auto p = resolve();
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ((*p)->source(), "credential_process of profile 'p'");
  auto c = (*p)->get();
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->access_key_id, "ASIAPROC");
  EXPECT_EQ(c->session_token, "proctoken-8d2");
  EXPECT_EQ(redact("procsecret-3f9 proctoken-8d2"), "*** ***");
  EXPECT_EQ(runs(), "1\n");

  // Within five minutes of expiry: every get() runs it again.
  std::remove(count.c_str());
  write("out.json", R"({"Version": 1, "AccessKeyId": "ASIASOON", "SecretAccessKey": "s",
                       "Expiration": ")" + iso(std::chrono::system_clock::now() + 2min) + "\"}");
  auto soon = resolve();
  ASSERT_TRUE(soon.ok()) << soon.message();
  ASSERT_TRUE((*soon)->get().ok());
  ASSERT_TRUE((*soon)->get().ok());
  EXPECT_EQ(runs(), "3\n");

  // No Expiration: never refreshed.
  std::remove(count.c_str());
  write("out.json", R"({"Version": 1, "AccessKeyId": "AKIALONG", "SecretAccessKey": "s"})");
  auto forever = resolve();
  ASSERT_TRUE(forever.ok()) << forever.message();
  ASSERT_TRUE((*forever)->get().ok());
  EXPECT_EQ(runs(), "1\n");

  write("out.json", R"({"Version": 2, "AccessKeyId": "A", "SecretAccessKey": "s"})");
  EXPECT_EQ(resolve_error(), "profile 'p': credential_process: JSON Version must be 1");
  write("out.json", R"({"Version": 1, "AccessKeyId": "A"})");
  EXPECT_EQ(resolve_error(), "profile 'p': credential_process: answer lacks AccessKeyId or SecretAccessKey");
  write("out.json", "SECRET-LOOKING GARBAGE");
  EXPECT_EQ(resolve_error(), "profile 'p': credential_process: answer is not a JSON object");
  write(".aws/config", "[profile p]\ncredential_process = exit 3\n");
  EXPECT_EQ(resolve_error(), "profile 'p': credential_process: command exited with status 3");
}

TEST_F(AwsCredentialsTest, RegionAndEndpointFromProfile) {
  write(".aws/config", "[default]\nregion = eu-west-2\nendpoint_url = http://127.0.0.1:4566\n"
                       "[profile other]\nregion = ap-south-1\n");
  EXPECT_EQ(default_aws_region(env_), "eu-west-2");
  EXPECT_EQ(profile_endpoint_url(env_), "http://127.0.0.1:4566");
  env_.vars["AWS_PROFILE"] = "other";
  EXPECT_EQ(default_aws_region(env_), "ap-south-1");
  EXPECT_EQ(profile_endpoint_url(env_), "");
  env_.vars["AWS_DEFAULT_REGION"] = "us-west-1";
  EXPECT_EQ(default_aws_region(env_), "us-west-1");
  env_.vars["AWS_REGION"] = "us-west-2";
  EXPECT_EQ(default_aws_region(env_), "us-west-2");
  env_.vars["AWS_PROFILE"] = "missing";
  env_.vars.erase("AWS_REGION");
  env_.vars.erase("AWS_DEFAULT_REGION");
  EXPECT_EQ(default_aws_region(env_), "");
}

TEST(AwsStaticCredentialsTest, FixedAndRedacted) {
  auto p = static_aws_credentials({"AKID", "static-secret-0a1b", "static-token-2c3d"}, "tests");
  EXPECT_EQ(p->source(), "tests");
  EXPECT_EQ(p->get()->secret_access_key, "static-secret-0a1b");
  EXPECT_EQ(redact("static-secret-0a1b static-token-2c3d"), "*** ***");
}

TEST(AwsTimeTest, ParsesIso8601) {
  using namespace std::chrono;
  sys_seconds base = sys_days(2011y / 7 / 15) + 23h + 28min + 33s;
  EXPECT_EQ(*parse_aws_time("2011-07-15T23:28:33.359Z"), base);
  EXPECT_EQ(*parse_aws_time("2011-07-15T23:28:33Z"), base);
  EXPECT_EQ(*parse_aws_time("2011-07-16T01:28:33+02:00"), base);
  EXPECT_EQ(*parse_aws_time("2011-07-15T22:28:33.5-01:00"), base);
  for (const char* bad : {"", "2011-07-15", "2011-13-01T00:00:00Z", "2011-07-15T23:28:33Q",
                          "2011-07-15T23:28:33.Z", "yesterday"}) {
    auto r = parse_aws_time(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
  EXPECT_EQ(parse_aws_time("x").message(), "'x' is not an ISO 8601 UTC time");
}

TEST(AwsRefreshTest, RefreshesNearExpiryAndKeepsValidCredentialsOnFailure) {
  using namespace std::chrono;
  int fetches = 0;
  std::optional<sys_seconds> expiration;
  bool fail = false;
  auto provider = refreshing_aws_credentials(
      [&]() -> Result<TimedAwsCredentials> {
        ++fetches;
        if (fail) return Error{"endpoint down"};
        return TimedAwsCredentials{{"AKID" + std::to_string(fetches), "s", "t"}, expiration};
      },
      "test source");
  EXPECT_EQ(provider->source(), "test source");

  expiration = floor<seconds>(system_clock::now()) + 1h;
  EXPECT_EQ(provider->get()->access_key_id, "AKID1");
  EXPECT_EQ(provider->get()->access_key_id, "AKID1");
  EXPECT_EQ(fetches, 1);

  auto soon = refreshing_aws_credentials(
      [&]() -> Result<TimedAwsCredentials> {
        ++fetches;
        if (fail) return Error{"endpoint down"};
        return TimedAwsCredentials{{"AKID" + std::to_string(fetches), "s", "t"}, expiration};
      },
      "soon");
  fetches = 0;
  expiration = floor<seconds>(system_clock::now()) + 4min;  // inside the 5-minute margin
  EXPECT_EQ(soon->get()->access_key_id, "AKID1");
  EXPECT_EQ(soon->get()->access_key_id, "AKID2");
  // A failed refresh while the current ones are still valid: keep them.
  fail = true;
  auto kept = soon->get();
  ASSERT_TRUE(kept.ok()) << kept.message();
  EXPECT_EQ(kept->access_key_id, "AKID2");
  EXPECT_EQ(fetches, 3);

  // Once they have expired, the failure is an error.
  auto expired = refreshing_aws_credentials(
      [&]() -> Result<TimedAwsCredentials> {
        if (fail) return Error{"endpoint down"};
        return TimedAwsCredentials{{"A", "s", ""}, floor<seconds>(system_clock::now()) - 1min};
      },
      "expired");
  fail = false;
  ASSERT_TRUE(expired->get().ok());
  fail = true;
  auto err = expired->get();
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.message(), "endpoint down");
}

}  // namespace
}  // namespace ch
