// Credentials order, ~/.aliyun/config.json profiles, endpoints.
#include "clouds/alicloud/alicloud_client.h"

#include <sys/stat.h>

#include <fstream>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace ch
