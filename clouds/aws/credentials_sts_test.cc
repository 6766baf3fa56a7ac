// STS AssumeRole and AssumeRoleWithWebIdentity through the chain, against
// moto itself (CLOUD_HELPER_MOTO_URL, tests/test_aws_env.h), which grants
// any role and returns ASIA... session credentials.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "clouds/aws/credentials.h"
#include "clouds/aws/credentials_sources.h"
#include "helper/output.h"
#include "tests/test_aws_env.h"
#include "tests/test_util.h"

namespace ch {
namespace {

constexpr const char* kRole = "arn:aws:iam::123456789012:role/deploy";

class AwsStsMotoTest : public test::AwsTest {
 protected:
  void SetUp() override {
    test::AwsTest::SetUp();
    if (HasFatalFailure()) return;
    env_.home = home_.path();
    env_.vars["AWS_ENDPOINT_URL"] = aws().moto_url;
    env_.vars["AWS_EC2_METADATA_DISABLED"] = "true";
    test::run_command("mkdir -p " + test::shell_quote(home_.path() + "/.aws"));
    std::ofstream(home_.path() + "/.aws/credentials")
        << "[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = base-secret-key-1\n";
    std::ofstream(home_.path() + "/.aws/config")
        << "[profile deploy]\nrole_arn = " << kRole
        << "\nsource_profile = base\nrole_session_name = ci-run\nexternal_id = ext-1\n"
           "duration_seconds = 1800\n"
           "[profile chained]\nrole_arn = arn:aws:iam::123456789012:role/second\nsource_profile = deploy\n"
           "[profile self]\nrole_arn = arn:aws:iam::123456789012:role/self\nsource_profile = self\n"
           "aws_access_key_id = AKIASELF\naws_secret_access_key = self-secret-key-2\n"
           "[profile fromenv]\nrole_arn = arn:aws:iam::123456789012:role/env\ncredential_source = Environment\n"
           "[profile web]\nrole_arn = arn:aws:iam::123456789012:role/web\nweb_identity_token_file = "
        << home_.path() << "/token\n";
    std::ofstream(home_.path() + "/token") << "eyJhbGciOiJSUzI1NiJ9.web-identity-token.sig\n";
  }

  Result<std::unique_ptr<AwsCredentialProvider>> resolve(const std::string& profile) {
    if (!profile.empty()) env_.vars["AWS_PROFILE"] = profile;
    return resolve_aws_credentials(http_, env_, "us-east-1");
  }

  static void expect_session(AwsCredentialProvider& p) {
    auto c = p.get();
    ASSERT_TRUE(c.ok()) << c.message();
    EXPECT_EQ(c->access_key_id.rfind("ASIA", 0), 0u) << c->access_key_id;
    EXPECT_FALSE(c->secret_access_key.empty());
    EXPECT_FALSE(c->session_token.empty());
    EXPECT_EQ(redact(c->secret_access_key + " " + c->session_token), "*** ***");
  }

  test::TempDir home_;
  HttpClient http_;
  AwsEnv env_;
};

TEST_F(AwsStsMotoTest, AssumeRoleViaSourceProfile) {
  auto p = resolve("deploy");
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ((*p)->source(), std::string("assume-role ") + kRole + " via profile 'base'");
  expect_session(**p);
}

TEST_F(AwsStsMotoTest, ChainedRolesAndSelfReference) {
  auto chained = resolve("chained");
  ASSERT_TRUE(chained.ok()) << chained.message();
  EXPECT_EQ((*chained)->source(),
            "assume-role arn:aws:iam::123456789012:role/second via profile 'deploy'");
  expect_session(**chained);

  // A source profile with keys uses them, even when it is the profile itself.
  auto self = resolve("self");
  ASSERT_TRUE(self.ok()) << self.message();
  EXPECT_EQ((*self)->source(), "assume-role arn:aws:iam::123456789012:role/self via profile 'self'");
  expect_session(**self);
}

TEST_F(AwsStsMotoTest, CredentialSourceEnvironment) {
  env_.vars["AWS_PROFILE"] = "fromenv";
  auto none = resolve("");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.message(),
            "profile 'fromenv': credential_source Environment but AWS_ACCESS_KEY_ID is not set");
  // With keys in the environment, the environment itself wins (step 1).
  env_.vars["AWS_ACCESS_KEY_ID"] = "AKIAENV";
  env_.vars["AWS_SECRET_ACCESS_KEY"] = "env-secret-key-3";
  auto p = resolve("");
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ((*p)->source(), "environment");
}

TEST_F(AwsStsMotoTest, WebIdentityFromProfileAndEnvironment) {
  auto profile = resolve("web");
  ASSERT_TRUE(profile.ok()) << profile.message();
  EXPECT_EQ((*profile)->source(), "web identity token file " + home_.path() +
                                      "/token for arn:aws:iam::123456789012:role/web");
  expect_session(**profile);
  EXPECT_EQ(redact("eyJhbGciOiJSUzI1NiJ9.web-identity-token.sig"), "***");

  env_.vars["AWS_PROFILE"] = "absent-but-unnamed";
  env_.vars.erase("AWS_PROFILE");
  env_.vars["AWS_WEB_IDENTITY_TOKEN_FILE"] = home_.path() + "/token";
  env_.vars["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/k8s";
  env_.vars["AWS_ROLE_SESSION_NAME"] = "pod-1";
  auto from_env = resolve("");
  ASSERT_TRUE(from_env.ok()) << from_env.message();
  EXPECT_EQ((*from_env)->source(), "web identity token file " + home_.path() +
                                       "/token for arn:aws:iam::123456789012:role/k8s");
  expect_session(**from_env);

  env_.vars.erase("AWS_ROLE_ARN");
  auto no_role = resolve("");
  ASSERT_FALSE(no_role.ok());
  EXPECT_EQ(no_role.message(), "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");

  env_.vars["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/k8s";
  env_.vars["AWS_WEB_IDENTITY_TOKEN_FILE"] = home_.path() + "/missing-token";
  auto no_token = resolve("");
  ASSERT_FALSE(no_token.ok());
  EXPECT_EQ(no_token.message().rfind("web identity role arn:aws:iam::123456789012:role/k8s: "
                                     "STS AssumeRoleWithWebIdentity (us-east-1): web identity token: ",
                                     0),
            0u)
      << no_token.message();
}

TEST_F(AwsStsMotoTest, AssumeRoleReturnsExpiry) {
  auto source = static_aws_credentials({"AKIADIRECT", "direct-secret-key-4", ""}, "test");
  AssumeRoleParams params;
  params.role_arn = kRole;
  params.duration_seconds = 900;
  auto r = sts_assume_role(http_, env_, *source, params);
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_TRUE(r->expiration.has_value());
  auto left = *r->expiration - std::chrono::system_clock::now();
  EXPECT_GT(left, std::chrono::minutes(10));
  EXPECT_LT(left, std::chrono::minutes(20));
}

}  // namespace
}  // namespace ch
