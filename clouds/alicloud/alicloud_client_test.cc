// Credentials order, ~/.aliyun/config.json profiles, endpoints; which ECS
// and OSS errors are retried, and how the final error reads.
#include "clouds/alicloud/alicloud_client.h"

#include <sys/stat.h>

#include <fstream>

#include <gtest/gtest.h>

#include "tests/test_http_server.h"
#include "tests/test_util.h"

namespace ch {
namespace {

class AliCredentialsTest : public ::testing::Test {
 protected:
  void config(const std::string& text) {
    mkdir(dir_.file(".aliyun").c_str(), 0700);
    std::ofstream(dir_.file(".aliyun/config.json")) << text;
  }
  test::TempDir dir_;
};

constexpr char kConfig[] =
    R"({"current":"work","profiles":[)"
    R"({"name":"default","mode":"AK","access_key_id":"AK1","access_key_secret":"S1"},)"
    R"({"name":"work","mode":"StsToken","access_key_id":"AK2","access_key_secret":"S2","sts_token":"T2"},)"
    R"({"name":"sso","mode":"RamRoleArn","access_key_id":"AK3","access_key_secret":"S3"}]})";

TEST_F(AliCredentialsTest, EnvironmentComesFirst) {
  config(kConfig);
  auto c = resolve_alicloud_credentials({{"ALIBABA_CLOUD_ACCESS_KEY_ID", "E"}, {"ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ES"},
                                         {"ALIBABA_CLOUD_SECURITY_TOKEN", "ET"}}, dir_.path());
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->access_key_id, "E");
  EXPECT_EQ(c->security_token, "ET");
  auto half = resolve_alicloud_credentials({{"ALIBABA_CLOUD_ACCESS_KEY_ID", "E"}}, dir_.path());
  EXPECT_FALSE(half.ok());
}

TEST_F(AliCredentialsTest, ConfigFileProfiles) {
  config(kConfig);
  auto cur = resolve_alicloud_credentials({}, dir_.path());
  ASSERT_TRUE(cur.ok()) << cur.message();
  EXPECT_EQ(cur->access_key_id, "AK2");
  EXPECT_EQ(cur->security_token, "T2");
  EXPECT_NE(cur->source.find("profile work"), std::string::npos);
  auto def = resolve_alicloud_credentials({{"ALIBABA_CLOUD_PROFILE", "default"}}, dir_.path());
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(def->access_key_id, "AK1");
  EXPECT_EQ(def->security_token, "");
  auto sso = resolve_alicloud_credentials({{"ALIBABA_CLOUD_PROFILE", "sso"}}, dir_.path());
  ASSERT_FALSE(sso.ok());
  EXPECT_NE(sso.message().find("mode RamRoleArn"), std::string::npos) << sso.message();
  auto none = resolve_alicloud_credentials({{"ALIBABA_CLOUD_PROFILE", "nope"}}, dir_.path());
  EXPECT_NE(none.message().find("no profile named 'nope'"), std::string::npos);
}

TEST_F(AliCredentialsTest, NothingConfigured) {
  auto c = resolve_alicloud_credentials({}, dir_.path());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.message().find("ALIBABA_CLOUD_ACCESS_KEY_ID"), std::string::npos);
}

TEST(AliEndpoints, HostsAndOverrides) {
  EXPECT_EQ(ecs_host("cn-hangzhou"), "ecs.aliyuncs.com");
  EXPECT_EQ(ecs_host("eu-central-1"), "ecs.eu-central-1.aliyuncs.com");
  EXPECT_EQ(oss_host("eu-central-1"), "oss-eu-central-1.aliyuncs.com");
  auto e = alicloud_endpoints({{"ALIBABA_CLOUD_OSS_ENDPOINT", "http://127.0.0.1:9000/"}});
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(e->oss);
  EXPECT_EQ(e->oss->port, 9000);
  EXPECT_FALSE(e->ecs);
  EXPECT_FALSE(alicloud_endpoints({{"ALIBABA_CLOUD_ECS_ENDPOINT", "::bad"}}).ok());
}

// A scripted ECS/OSS endpoint: the client's requests go to SERVER.
class AliRetryTest : public ::testing::Test {
 protected:
  AliClient client() {
    auto e = alicloud_endpoints({{"ALIBABA_CLOUD_ECS_ENDPOINT", server_.url()}, {"ALIBABA_CLOUD_OSS_ENDPOINT", server_.url()}});
    EXPECT_TRUE(e.ok());
    RetryPolicy fast;
    fast.base_delay = std::chrono::milliseconds(1);
    fast.max_delay = std::chrono::milliseconds(2);
    return AliClient(http_, {"AK", "SECRET", "", "test"}, *e, OssSignature::kV4, fast);
  }
  static test::ScriptedResponse ecs_error(int status, const std::string& code, const std::string& message) {
    return {status, {{"Content-Type", "application/json"}},
            R"({"RequestId":"RID-1","HostId":"ecs.aliyuncs.com","Code":")" + code + R"(","Message":")" + message +
                R"(","Recommend":""})"};
  }
  test::HttpTestServer server_;
  HttpClient http_;
};

TEST_F(AliRetryTest, EcsThrottlingIsRetriedUntilItPasses) {
  server_.enqueue(ecs_error(400, "Throttling.User", "Request was denied due to user flow control."));
  server_.enqueue(ecs_error(400, "Throttling", "Request was denied due to request throttling."));
  server_.enqueue(ecs_error(503, "ServiceUnavailable", "The request has failed due to a temporary failure."));
  server_.enqueue({200, {{"Content-Type", "application/json"}}, R"({"RequestId":"R","ImageId":"m-1"})"});
  AliClient c = client();
  auto r = c.ecs("cn-hangzhou", "ImportImage", {{"ImageName", "x"}});
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->value("ImageId", ""), "m-1");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 4u);
  // Every attempt is signed anew: a fresh nonce each time.
  EXPECT_NE(reqs[0].body, reqs[1].body);
}

TEST_F(AliRetryTest, QuotaIsNotRetriedAndNamesTheRegion) {
  server_.enqueue(ecs_error(403, "QuotaExceed.Image", "The number of images exceeds the limit (100)."));
  AliClient c = client();
  auto r = c.ecs("cn-hangzhou", "CopyImage", {{"ImageId", "m-1"}, {"DestinationRegionId", "eu-central-1"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(server_.requests().size(), 1u);
  EXPECT_EQ(r.error().code, "QuotaExceed.Image");
  EXPECT_EQ(r.error().http_status, 403);
  EXPECT_EQ(r.message(),
            "ECS CopyImage (cn-hangzhou): HTTP 403 QuotaExceed.Image: The number of images exceeds the limit (100). "
            "(request id RID-1); the custom image quota of eu-central-1 is used up: delete images no longer needed "
            "there or raise the quota in Quota Center, then run again");
}

TEST_F(AliRetryTest, ThrottlingPastTheBudgetSaysHowManyAttempts) {
  for (int i = 0; i < 8; ++i)
    server_.enqueue({503, {{"Content-Type", "application/xml"}, {"x-oss-request-id", "OSSRID"}, {"x-oss-ec", "0004-00000302"}},
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>TotalQpsLimitExceeded</Code>"
                     "<Message>Max total qps limit is exceeded</Message><RequestId>OSSRID</RequestId></Error>"});
  AliClient c = client();
  OssCall call;
  call.what = "OSS PutObject";
  call.method = "PUT";
  call.region = "cn-hangzhou";
  call.bucket = "bucket";
  call.key = "k";
  call.body = "data";
  auto r = c.oss(call);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(server_.requests().size(), 8u);
  EXPECT_EQ(r.message(), "OSS PutObject oss://bucket/k: HTTP 503 TotalQpsLimitExceeded: Max total qps limit is "
                         "exceeded (request id OSSRID, after 8 attempts)");
}

}  // namespace
}  // namespace ch
