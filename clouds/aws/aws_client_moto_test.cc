// AwsClient against moto itself (CLOUD_HELPER_MOTO_URL, tests/test_aws_env.h):
// EC2's query protocol and S3's REST paths end to end. (This moto checks no
// signatures; signature verification is covered by the integration suite.)
#include <gtest/gtest.h>

#include "clouds/aws/aws_client.h"
#include "tests/test_aws_env.h"

namespace ch {
namespace {

class AwsClientMotoTest : public test::AwsTest {
 protected:
  void SetUp() override {
    test::AwsTest::SetUp();
    if (HasFatalFailure()) return;
    moto_ = std::make_unique<test::AwsTestClient>(aws().moto_url, test::AwsKeys{"testing", "testing"});
  }
  AwsClient& client() { return *moto_->client; }

  std::unique_ptr<test::AwsTestClient> moto_;
};

TEST_F(AwsClientMotoTest, Ec2DescribeRegions) {
  AwsClient& c = client();
  auto xml = c.ec2("eu-west-2", "DescribeRegions", {});
  ASSERT_TRUE(xml.ok()) << xml.message();
  EXPECT_NE(xml->find("<regionName>us-east-1</regionName>"), std::string::npos) << *xml;
  EXPECT_NE(xml->find("<regionName>eu-west-2</regionName>"), std::string::npos);
}

TEST_F(AwsClientMotoTest, Ec2ErrorCarriesCode) {
  AwsClient& c = client();
  auto xml = c.ec2("us-east-1", "DescribeImages", {{"ImageId.1", "ami-00000000deadbeef0"}});
  ASSERT_FALSE(xml.ok());
  EXPECT_EQ(xml.error().code, "InvalidAMIID.NotFound") << xml.message();
  EXPECT_EQ(xml.error().http_status, 400);
  EXPECT_EQ(xml.message().rfind("EC2 DescribeImages (us-east-1): HTTP 400 InvalidAMIID.NotFound: ", 0), 0u)
      << xml.message();
}

TEST_F(AwsClientMotoTest, S3PutAndGetObject) {
  AwsClient& c = client();
  const std::string bucket = test::unique_name("awsclient");
  AwsClient::RestCall create;
  create.region = "us-east-1";
  create.bucket = bucket;
  create.request.method = "PUT";
  create.what = "S3 CreateBucket " + bucket;
  auto created = c.rest(create);
  ASSERT_TRUE(created.ok()) << created.message();

  const std::string key = "dir/a b+c/ü.raw";
  AwsClient::RestCall put;
  put.region = "us-east-1";
  put.bucket = bucket;
  put.raw_path = "/" + key;
  put.request.method = "PUT";
  put.request.body = "image bytes";
  auto put_r = c.rest(put);
  ASSERT_TRUE(put_r.ok()) << put_r.message();
  EXPECT_EQ(put_r->status, 200);

  AwsClient::RestCall get = put;
  get.request.method = "GET";
  get.request.body.clear();
  auto got = c.rest(get);
  ASSERT_TRUE(got.ok()) << got.message();
  EXPECT_EQ(got->body, "image bytes");

  // The key came through as raw bytes: a listing names it exactly.
  AwsClient::RestCall list;
  list.region = "us-east-1";
  list.bucket = bucket;
  list.request.query = {{"list-type", "2"}};
  auto listed = c.rest(list);
  ASSERT_TRUE(listed.ok()) << listed.message();
  EXPECT_NE(listed->body.find("<Key>" + key + "</Key>"), std::string::npos) << listed->body;

  AwsClient::RestCall missing = get;
  missing.raw_path = "/nope";
  missing.what = "S3 GetObject of s3://" + bucket + "/nope";
  auto err = c.rest(missing);
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.error().code, "NoSuchKey");
  EXPECT_EQ(err.error().http_status, 404);
  EXPECT_EQ(err.message().rfind(missing.what + ": HTTP 404 NoSuchKey: ", 0), 0u) << err.message();
}

}  // namespace
}  // namespace ch
