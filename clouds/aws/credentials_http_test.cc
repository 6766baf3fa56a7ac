// Instance metadata (IMDSv2) and the container endpoint against a scripted
// loopback server that behaves as they do (tokens required).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>

#include "clouds/aws/credentials.h"
#include "clouds/aws/credentials_sources.h"
#include "helper/output.h"
#include "tests/test_http_server.h"
#include "tests/test_util.h"

namespace ch {
namespace {

using namespace std::chrono_literals;
using test::ReceivedRequest;
using test::ScriptedResponse;

constexpr const char* kImdsToken = "imds-session-token-51f0c2";
constexpr const char* kCredsPath = "/latest/meta-data/iam/security-credentials/";

std::string iso(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));
  return buf;
}

std::string credentials_json(const std::string& key, std::chrono::system_clock::time_point expiry) {
  return R"({"Code": "Success", "LastUpdated": "2024-01-01T00:00:00Z", "Type": "AWS-HMAC",
    "AccessKeyId": ")" + key + R"(", "SecretAccessKey": "imds-secret-7e3a90",
    "Token": "imds-session-cred-token-0b4d", "Expiration": ")" + iso(expiry) + "\"}";
}

class AwsImdsTest : public ::testing::Test {
 protected:
  AwsImdsTest() {
    env_.home = home_.path();
    env_.vars["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = server_.url("/");
    server_.set_handler([this](const ReceivedRequest& r) { return answer(r); });
  }

  // IMDSv2 as EC2 serves it: a PUT for a session token, then GETs that
  // must carry it.
  ScriptedResponse answer(const ReceivedRequest& r) {
    if (r.target == "/latest/api/token") {
      if (r.method != "PUT") return {.status = 405};
      if (r.header("X-aws-ec2-metadata-token-ttl-seconds") != "21600") return {.status = 400};
      return {.status = 200, .body = kImdsToken};
    }
    if (r.method != "GET") return {.status = 405};
    if (r.header("X-aws-ec2-metadata-token") != kImdsToken) return {.status = 401};
    if (r.target == kCredsPath) {
      if (role_.empty()) return {.status = 404};
      return {.status = 200, .body = role_ + "\n"};
    }
    if (r.target == std::string(kCredsPath) + role_) {
      ++credential_fetches_;
      return {.status = 200, .body = credentials_json("ASIAIMDS" + std::to_string(credential_fetches_.load()), expiry_)};
    }
    return {.status = 404};
  }

  test::TempDir home_;
  test::HttpTestServer server_;
  HttpClient http_;
  AwsEnv env_;
  std::string role_ = "ci-role";
  std::chrono::system_clock::time_point expiry_ = std::chrono::system_clock::now() + 6h;
  std::atomic<int> credential_fetches_{0};
};

TEST_F(AwsImdsTest, ChainEndsAtInstanceMetadataWithSessionToken) {
  auto p = resolve_aws_credentials(http_, env_, "us-east-1");
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ((*p)->source(), "instance metadata (IMDSv2) role 'ci-role'");
  auto c = (*p)->get();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key_id, "ASIAIMDS1");
  EXPECT_EQ(c->secret_access_key, "imds-secret-7e3a90");
  EXPECT_EQ(c->session_token, "imds-session-cred-token-0b4d");
  EXPECT_EQ(redact(std::string("a ") + kImdsToken + " imds-secret-7e3a90 imds-session-cred-token-0b4d"),
            "a *** *** ***");

  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].target, "/latest/api/token");
  EXPECT_EQ(reqs[1].target, kCredsPath);
  EXPECT_EQ(reqs[2].target, std::string(kCredsPath) + "ci-role");
  for (size_t i = 1; i < reqs.size(); ++i) EXPECT_EQ(reqs[i].header("X-aws-ec2-metadata-token"), kImdsToken);

  // Valid for hours: no new fetch.
  ASSERT_TRUE((*p)->get().ok());
  EXPECT_EQ(credential_fetches_.load(), 1);
}

TEST_F(AwsImdsTest, RefreshedFiveMinutesBeforeExpiry) {
  expiry_ = std::chrono::system_clock::now() + 4min;
  auto p = resolve_aws_credentials(http_, env_, "us-east-1");
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ((*p)->get()->access_key_id, "ASIAIMDS2");
  EXPECT_EQ((*p)->get()->access_key_id, "ASIAIMDS3");
  // Each refresh takes a new session token first.
  int puts = 0;
  for (const auto& r : server_.requests()) puts += r.method == "PUT";
  EXPECT_EQ(puts, 3);
}

TEST_F(AwsImdsTest, NoRoleOrNoTokenMeansNoCredentials) {
  role_.clear();
  auto p = resolve_aws_credentials(http_, env_, "us-east-1");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.message().find("(instance metadata (IMDSv2): no IAM role is attached to this instance)"),
            std::string::npos)
      << p.message();
  EXPECT_EQ(p.message().rfind("no AWS credentials: ", 0), 0u);

  // A server that refuses the token PUT (IMDSv1-only emulators, proxies).
  test::HttpTestServer v1;
  v1.set_handler([](const ReceivedRequest&) { return ScriptedResponse{.status = 403}; });
  env_.vars["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = v1.url("/");
  std::string role;
  auto r = fetch_imds_credentials(http_, env_, &role);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "instance metadata (IMDSv2): PUT /latest/api/token: HTTP 403 Forbidden");
}

TEST_F(AwsImdsTest, DisabledByVariable) {
  env_.vars["AWS_EC2_METADATA_DISABLED"] = "true";
  auto p = resolve_aws_credentials(http_, env_, "us-east-1");
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(server_.requests().empty());
}

TEST_F(AwsImdsTest, ProfileCredentialSourceEc2InstanceMetadataNeedsSts) {
  // The IMDS credentials are fetched to sign AssumeRole; the STS call goes
  // to the same scripted server here and is refused, which must surface.
  test::run_command("mkdir -p " + test::shell_quote(home_.path() + "/.aws"));
  std::ofstream(home_.path() + "/.aws/config")
      << "[profile r]\nrole_arn = arn:aws:iam::123456789012:role/x\ncredential_source = Ec2InstanceMetadata\n";
  env_.vars["AWS_PROFILE"] = "r";
  env_.vars["AWS_ENDPOINT_URL_STS"] = server_.url("/sts");
  auto p = resolve_aws_credentials(http_, env_, "us-east-1");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(),
            "assume-role arn:aws:iam::123456789012:role/x: STS AssumeRole (us-east-1): HTTP 405 Method Not Allowed");
  auto reqs = server_.requests();
  ASSERT_GE(reqs.size(), 4u);
  EXPECT_EQ(reqs.back().target, "/sts/");
  EXPECT_NE(reqs.back().header("Authorization").find("Credential=ASIAIMDS1/"), std::string::npos);
}

class AwsContainerCredentialsTest : public ::testing::Test {
 protected:
  AwsContainerCredentialsTest() {
    env_.home = home_.path();
    env_.vars["AWS_EC2_METADATA_DISABLED"] = "true";
    env_.vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server_.url("/v2/credentials/abc");
    server_.set_handler([this](const ReceivedRequest& r) -> ScriptedResponse {
      if (r.target != "/v2/credentials/abc") return {.status = 404};
      if (r.header("Authorization") != auth_) return {.status = 401, .body = R"({"message":"bad token"})"};
      return {.status = 200,
              .body = R"({"AccessKeyId": "ASIACONT", "SecretAccessKey": "container-secret-19d",
                          "Token": "container-token-83c", "Expiration": ")" +
                      iso(std::chrono::system_clock::now() + 1h) + "\"}"};
    });
  }
  test::TempDir home_;
  test::HttpTestServer server_;
  HttpClient http_;
  AwsEnv env_;
  std::string auth_ = "pod-identity-token-4e2f1a";
};

TEST_F(AwsContainerCredentialsTest, FullUriWithAuthorizationToken) {
  env_.vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = auth_;
  auto p = resolve_aws_credentials(http_, env_, "us-east-1");
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ((*p)->source(), "container endpoint");
  auto c = (*p)->get();
  EXPECT_EQ(c->access_key_id, "ASIACONT");
  EXPECT_EQ(c->session_token, "container-token-83c");
  EXPECT_EQ(redact("pod-identity-token-4e2f1a container-secret-19d"), "*** ***");
  EXPECT_EQ(server_.requests().size(), 1u);
}

TEST_F(AwsContainerCredentialsTest, TokenFileWinsAndIsReadEachTime) {
  env_.vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "stale";
  env_.vars["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = home_ / "token";
  std::ofstream(home_ / "token") << auth_ << "\n";
  auto p = resolve_aws_credentials(http_, env_, "us-east-1");
  ASSERT_TRUE(p.ok()) << p.message();

  std::ofstream(home_ / "token") << "rotated-away\n";
  auto r = fetch_container_credentials(http_, env_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "container credentials endpoint: HTTP 401 Unauthorized: bad token");
}

TEST_F(AwsContainerCredentialsTest, UrlRules) {
  AwsEnv env;
  env.vars["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] = "/v2/credentials/x";
  env.vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://ignored/";
  EXPECT_EQ(*container_credentials_url(env), "http://169.254.170.2/v2/credentials/x");
  env.vars.erase("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  for (const char* ok : {"http://127.0.0.1:80/c", "http://localhost/c", "http://169.254.170.23/v1/credentials",
                         "https://anything.example.com/c"}) {
    env.vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = ok;
    EXPECT_TRUE(container_credentials_url(env).ok()) << ok;
  }
  env_.vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://metadata.example.com/c";
  auto p = resolve_aws_credentials(http_, env_, "us-east-1");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(),
            "AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http is only allowed to a loopback address "
            "or the ECS/EKS agent, not 'metadata.example.com'");
}

TEST_F(AwsContainerCredentialsTest, RefusalIsAnErrorNotAFallThrough) {
  env_.vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "wrong-token-value";
  auto p = resolve_aws_credentials(http_, env_, "us-east-1");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(), "container credentials endpoint: HTTP 401 Unauthorized: bad token");
}

}  // namespace
}  // namespace ch
