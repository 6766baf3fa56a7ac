// Known answers for the Alibaba Cloud signers: the RPC example of the ECS
// "Signature mechanism" page (AccessKey testid/testsecret, DescribeRegions,
// both spellings of the timestamp parameter the page has carried), and the
// OSS V1/V4 vectors of the OSS Go SDK v2's signer tests (oss/signer/
// signer_test.go, AccessKey ak/sk).
#include "clouds/alicloud/alicloud_sign.h"

#include <gtest/gtest.h>

#include "clouds/http/ascii_case.h"

namespace ch {
namespace {

std::string header(const HttpRequest& r, std::string_view name) {
  for (const HttpHeader& h : r.headers)
    if (ascii_iequals(h.name, name)) return h.value;
  return "";
}

TEST(AliRpcSign, EcsDocumentationExample) {
  std::vector<std::pair<std::string, std::string>> p = {
      {"TimeStamp", "2016-02-23T12:46:24Z"}, {"Format", "XML"},
      {"AccessKeyId", "testid"},            {"Action", "DescribeRegions"},
      {"SignatureMethod", "HMAC-SHA1"},     {"SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"},
      {"Version", "2014-05-26"},            {"SignatureVersion", "1.0"}};
  EXPECT_EQ(rpc_string_to_sign("GET", p),
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1"
            "%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0"
            "%26TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26");
  EXPECT_EQ(rpc_signature("GET", p, "testsecret"), "CT9X0VtwR86fNWSnsc6v8YGOjuE=");
  p[0].first = "Timestamp";  // the current spelling
  EXPECT_EQ(rpc_signature("GET", p, "testsecret"), "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
}

TEST(AliRpcSign, PercentEncoding) {
  EXPECT_EQ(ali_percent_encode("a b*c~d/e+f"), "a%20b%2Ac~d%2Fe%2Bf");
  EXPECT_EQ(ali_percent_encode("é"), "%C3%A9");
  EXPECT_EQ(ali_percent_encode("a/b", true), "a/b");
}

TEST(OssSign, V1SdkVector) {
  HttpRequest r;
  r.method = "PUT";
  r.headers = {{"Content-MD5", "eB5eJF1ptWaXm4bijSPyxw=="},
               {"Content-Type", "text/html"},
               {"x-oss-meta-author", "alice"},
               {"x-oss-meta-magic", "abracadabra"},
               {"x-oss-date", "Wed, 28 Dec 2022 10:27:41 GMT"},
               {"Date", "Wed, 28 Dec 2022 10:27:41 GMT"}};
  AliCredentials c{"ak", "sk", "", "test"};
  EXPECT_EQ(oss_v1_string_to_sign(r, "examplebucket", "nelson"),
            "PUT\neB5eJF1ptWaXm4bijSPyxw==\ntext/html\nWed, 28 Dec 2022 10:27:41 GMT\nx-oss-date:Wed, 28 Dec 2022 "
            "10:27:41 GMT\nx-oss-meta-author:alice\nx-oss-meta-magic:abracadabra\n/examplebucket/nelson");
  oss_sign_v1(r, c, "examplebucket", "nelson", std::chrono::sys_seconds{});
  EXPECT_EQ(header(r, "Authorization"), "OSS ak:kSHKmLxlyEAKtZPkJhG9bZb5k7M=");

  // A subresource is part of the signed resource.
  r.query = {{"acl", ""}};
  r.headers.pop_back();
  r.headers.push_back({"Date", "Wed, 28 Dec 2022 10:27:41 GMT"});
  oss_sign_v1(r, c, "examplebucket", "nelson", std::chrono::sys_seconds{});
  EXPECT_EQ(header(r, "Authorization"), "OSS ak:/afkugFbmWDQ967j1vr6zygBLQk=");
}

TEST(OssSign, V1OnlySubresourcesAreSigned) {
  HttpRequest r;
  r.method = "GET";
  r.query = {{"resourceGroup", ""}, {"acl", ""}, {"uploadId", "u1"}, {"max-parts", "5"}};
  r.headers = {{"Date", "Wed, 28 Dec 2022 10:27:41 GMT"}};
  EXPECT_EQ(oss_v1_string_to_sign(r, "b", "k"), "GET\n\n\nWed, 28 Dec 2022 10:27:41 GMT\n/b/k?acl&uploadId=u1");
}

HttpRequest v4_vector_request() {
  HttpRequest r;
  r.method = "PUT";
  r.headers = {{"x-oss-head1", "value"}, {"abc", "value"},         {"ZAbc", "value"},
               {"XYZ", "value"},         {"content-type", "text/plain"}, {"x-oss-content-sha256", "UNSIGNED-PAYLOAD"}};
  r.query = {{"param1", "value1"}, {"+param1", "value3"}, {"|param1", "value4"},
             {"+param2", ""},      {"|param2", ""},       {"param2", ""}};
  return r;
}

TEST(OssSign, V4SdkVector) {
  HttpRequest r = v4_vector_request();
  oss_sign_v4(r, {"ak", "sk", "", "test"}, "cn-hangzhou", "bucket", "1234+-/123/1.txt",
              std::chrono::sys_seconds{std::chrono::seconds{1702743657}});
  EXPECT_EQ(header(r, "x-oss-date"), "20231216T162057Z");
  EXPECT_EQ(oss_v4_canonical_request(r, "bucket", "1234+-/123/1.txt"),
            "PUT\n/bucket/1234%2B-/123/1.txt\n%2Bparam1=value3&%2Bparam2&%7Cparam1=value4&%7Cparam2&param1=value1&"
            "param2\ncontent-type:text/plain\nx-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20231216T162057Z\n"
            "x-oss-head1:value\n\n\nUNSIGNED-PAYLOAD");
  EXPECT_EQ(header(r, "Authorization"),
            "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,"
            "Signature=e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe");
}

TEST(OssSign, V4SdkVectorWithSecurityToken) {
  HttpRequest r = v4_vector_request();
  oss_sign_v4(r, {"ak", "sk", "token", "test"}, "cn-hangzhou", "bucket", "1234+-/123/1.txt",
              std::chrono::sys_seconds{std::chrono::seconds{1702784856}});
  EXPECT_EQ(header(r, "x-oss-security-token"), "token");
  EXPECT_EQ(header(r, "Authorization"),
            "OSS4-HMAC-SHA256 Credential=ak/20231217/cn-hangzhou/oss/aliyun_v4_request,"
            "Signature=b94a3f999cf85bcdc00d332fbd3734ba03e48382c36fa4d5af5df817395bd9ea");
}

TEST(OssSign, HttpDate) {
  EXPECT_EQ(http_date(std::chrono::sys_seconds{std::chrono::seconds{1672223261}}), "Wed, 28 Dec 2022 10:27:41 GMT");
}

}  // namespace
}  // namespace ch
