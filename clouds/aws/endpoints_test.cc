#include "clouds/aws/endpoints.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace ch {
namespace {

AwsEnv env_of(std::map<std::string, std::string> vars) {
  AwsEnv env;
  env.vars = std::move(vars);
  env.home = "/nonexistent";
  return env;
}

AwsEndpoint resolve_ok(AwsService s, std::string_view region, const AwsEnv& env,
                       std::string_view bucket = {}, std::string_view profile_url = {}) {
  auto r = resolve_aws_endpoint(s, region, env, bucket, profile_url);
  EXPECT_TRUE(r.ok()) << r.message();
  return r.ok() ? *r : AwsEndpoint{};
}

TEST(AwsEndpointsTest, ServiceNames) {
  EXPECT_EQ(aws_service_name(AwsService::kS3), "s3");
  EXPECT_EQ(aws_service_name(AwsService::kEc2), "ec2");
  EXPECT_EQ(aws_service_name(AwsService::kEbs), "ebs");
  EXPECT_EQ(aws_service_name(AwsService::kSts), "sts");
  EXPECT_EQ(aws_service_env_suffix(AwsService::kS3), "S3");
  EXPECT_EQ(aws_service_env_suffix(AwsService::kEc2), "EC2");
  EXPECT_EQ(aws_service_env_suffix(AwsService::kEbs), "EBS");
  EXPECT_EQ(aws_service_env_suffix(AwsService::kSts), "STS");
}

TEST(AwsEndpointsTest, Partitions) {
  EXPECT_EQ(aws_partition("us-east-1").name, "aws");
  EXPECT_EQ(aws_partition("eu-west-2").dns_suffix, "amazonaws.com");
  EXPECT_EQ(aws_partition("cn-north-1").name, "aws-cn");
  EXPECT_EQ(aws_partition("cn-northwest-1").dns_suffix, "amazonaws.com.cn");
  EXPECT_EQ(aws_partition("us-gov-west-1").name, "aws-us-gov");
  EXPECT_EQ(aws_partition("us-gov-east-1").dns_suffix, "amazonaws.com");
}

TEST(AwsEndpointsTest, DefaultHostsPerPartition) {
  AwsEnv env = env_of({});
  AwsEndpoint ec2 = resolve_ok(AwsService::kEc2, "eu-west-2", env);
  EXPECT_EQ(ec2.scheme, "https");
  EXPECT_EQ(ec2.host, "ec2.eu-west-2.amazonaws.com");
  EXPECT_EQ(ec2.port, 0);
  EXPECT_EQ(ec2.base_path, "");
  EXPECT_FALSE(ec2.overridden);
  EXPECT_FALSE(ec2.s3_path_style);
  EXPECT_EQ(resolve_ok(AwsService::kEbs, "us-east-1", env).host, "ebs.us-east-1.amazonaws.com");
  EXPECT_EQ(resolve_ok(AwsService::kSts, "us-east-1", env).host, "sts.us-east-1.amazonaws.com");
  EXPECT_EQ(resolve_ok(AwsService::kS3, "us-east-1", env, "b1").host, "s3.us-east-1.amazonaws.com");
  EXPECT_EQ(resolve_ok(AwsService::kEc2, "cn-north-1", env).host, "ec2.cn-north-1.amazonaws.com.cn");
  EXPECT_EQ(resolve_ok(AwsService::kS3, "cn-northwest-1", env, "b1").host,
            "s3.cn-northwest-1.amazonaws.com.cn");
  EXPECT_EQ(resolve_ok(AwsService::kEc2, "us-gov-west-1", env).host,
            "ec2.us-gov-west-1.amazonaws.com");
  EXPECT_EQ(resolve_ok(AwsService::kEbs, "us-gov-east-1", env).host,
            "ebs.us-gov-east-1.amazonaws.com");
}

TEST(AwsEndpointsTest, S3VirtualHostUnlessTheNameCannotBeALabel) {
  AwsEnv env = env_of({});
  EXPECT_FALSE(resolve_ok(AwsService::kS3, "eu-west-2", env, "my-bucket").s3_path_style);
  EXPECT_TRUE(resolve_ok(AwsService::kS3, "eu-west-2", env, "my.dotted.bucket").s3_path_style);
  EXPECT_TRUE(resolve_ok(AwsService::kS3, "us-east-1", env, "Legacy_Name").s3_path_style);
  // No bucket (ListBuckets): the service host.
  EXPECT_FALSE(resolve_ok(AwsService::kS3, "eu-west-2", env).s3_path_style);
}

TEST(AwsEndpointsTest, RegionRequiredAndValidatedWithoutOverride) {
  AwsEnv env = env_of({});
  auto none = resolve_aws_endpoint(AwsService::kEc2, "", env);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.message(), "no AWS region for ec2: set one in the image YAML, AWS_REGION or the profile");
  auto bad = resolve_aws_endpoint(AwsService::kEc2, "evil.com/x", env);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(), "invalid AWS region 'evil.com/x'");
  // An override serves any region, even none.
  AwsEnv moto = env_of({{"AWS_ENDPOINT_URL", "http://127.0.0.1:5000"}});
  EXPECT_TRUE(resolve_aws_endpoint(AwsService::kEc2, "", moto).ok());
}

TEST(AwsEndpointsTest, OverridePrecedence) {
  AwsEnv env = env_of({{"AWS_ENDPOINT_URL", "http://global:1"},
                       {"AWS_ENDPOINT_URL_S3", "http://s3only:2"},
                       {"AWS_ENDPOINT_URL_EC2", "http://ec2only:3"},
                       {"AWS_ENDPOINT_URL_EBS", "http://ebsonly:4"},
                       {"AWS_ENDPOINT_URL_STS", "http://stsonly:5"}});
  EXPECT_EQ(resolve_ok(AwsService::kS3, "eu-west-2", env, "b", "http://profile:9").host, "s3only");
  EXPECT_EQ(resolve_ok(AwsService::kEc2, "eu-west-2", env, "", "http://profile:9").host, "ec2only");
  EXPECT_EQ(resolve_ok(AwsService::kEbs, "eu-west-2", env).host, "ebsonly");
  EXPECT_EQ(resolve_ok(AwsService::kSts, "eu-west-2", env).port, 5);

  // Service variable unset: the global one.
  AwsEnv global = env_of({{"AWS_ENDPOINT_URL", "http://global:1"}, {"AWS_ENDPOINT_URL_S3", "http://s3only:2"}});
  EXPECT_EQ(resolve_ok(AwsService::kEc2, "eu-west-2", global, "", "http://profile:9").host, "global");
  EXPECT_EQ(resolve_ok(AwsService::kS3, "eu-west-2", global, "b").host, "s3only");

  // Neither: the profile's endpoint_url.
  AwsEnv none = env_of({});
  AwsEndpoint p = resolve_ok(AwsService::kEc2, "eu-west-2", none, "", "https://profile:9");
  EXPECT_EQ(p.host, "profile");
  EXPECT_EQ(p.scheme, "https");
  EXPECT_TRUE(p.overridden);

  // AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true: all of them ignored.
  AwsEnv ignored = env;
  ignored.vars["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "TRUE";
  AwsEndpoint i = resolve_ok(AwsService::kS3, "eu-west-2", ignored, "b", "http://profile:9");
  EXPECT_EQ(i.host, "s3.eu-west-2.amazonaws.com");
  EXPECT_FALSE(i.overridden);
  ignored.vars["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "false";
  EXPECT_EQ(resolve_ok(AwsService::kS3, "eu-west-2", ignored, "b").host, "s3only");
}

TEST(AwsEndpointsTest, OverrideUrlParts) {
  AwsEnv env = env_of({{"AWS_ENDPOINT_URL", "http://127.0.0.1:47130/prefix/"}});
  AwsEndpoint e = resolve_ok(AwsService::kS3, "us-east-1", env, "plainbucket");
  EXPECT_EQ(e.scheme, "http");
  EXPECT_EQ(e.host, "127.0.0.1");
  EXPECT_EQ(e.port, 47130);
  EXPECT_EQ(e.base_path, "/prefix");
  EXPECT_TRUE(e.overridden);
  EXPECT_TRUE(e.s3_path_style);  // emulators: always path style, dotted or not
  EXPECT_TRUE(resolve_ok(AwsService::kS3, "us-east-1", env, "a.b.c").s3_path_style);
  EXPECT_FALSE(resolve_ok(AwsService::kEc2, "us-east-1", env).s3_path_style);

  AwsEnv v6 = env_of({{"AWS_ENDPOINT_URL_EC2", "HTTPS://[::1]:8443"}});
  AwsEndpoint e6 = resolve_ok(AwsService::kEc2, "us-east-1", v6);
  EXPECT_EQ(e6.scheme, "https");
  EXPECT_EQ(e6.host, "::1");
  EXPECT_EQ(e6.port, 8443);
  EXPECT_EQ(e6.base_path, "");
}

TEST(AwsEndpointsTest, BadOverridesAreErrors) {
  struct Case {
    std::string url, message;
  } cases[] = {
      {"ftp://x", "endpoint override AWS_ENDPOINT_URL_S3='ftp://x': not an http(s) URL"},
      {"localhost:5000", "endpoint override AWS_ENDPOINT_URL_S3='localhost:5000': not an http(s) URL"},
      {"http://:80", "endpoint override AWS_ENDPOINT_URL_S3='http://:80': no host"},
      {"http://h:0", "endpoint override AWS_ENDPOINT_URL_S3='http://h:0': bad port '0'"},
      {"http://h:99999", "endpoint override AWS_ENDPOINT_URL_S3='http://h:99999': bad port '99999'"},
      {"http://h/?a=1", "endpoint override AWS_ENDPOINT_URL_S3='http://h/?a=1': a query or fragment is not allowed"},
      {"http://u:p@h", "endpoint override AWS_ENDPOINT_URL_S3='http://u:p@h': user info is not allowed"},
  };
  for (const Case& c : cases) {
    AwsEnv env = env_of({{"AWS_ENDPOINT_URL_S3", c.url}});
    auto r = resolve_aws_endpoint(AwsService::kS3, "us-east-1", env, "b");
    ASSERT_FALSE(r.ok()) << c.url;
    EXPECT_EQ(r.message(), c.message);
  }
  auto p = resolve_aws_endpoint(AwsService::kS3, "us-east-1", env_of({}), "b", "nope");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(), "endpoint override endpoint_url='nope': not an http(s) URL");
}

TEST(AwsEndpointsTest, EnvFromProcess) {
  ::setenv("CH_AWS_ENDPOINTS_TEST_VAR", "a=b", 1);
  AwsEnv env = AwsEnv::from_process();
  EXPECT_EQ(env.get("CH_AWS_ENDPOINTS_TEST_VAR"), "a=b");
  EXPECT_EQ(env.get("CH_AWS_ENDPOINTS_TEST_UNSET"), "");
  const char* home = std::getenv("HOME");
  EXPECT_EQ(env.home, home ? home : "");
  ::unsetenv("CH_AWS_ENDPOINTS_TEST_VAR");
}

}  // namespace
}  // namespace ch
