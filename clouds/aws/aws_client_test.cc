#include "clouds/aws/aws_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fcntl.h>
#include <fstream>
#include <unistd.h>

#include "tests/test_http_server.h"
#include "tests/test_util.h"

namespace ch {
namespace {

HttpResponse response_of(long status, std::string body,
                         std::vector<HttpHeader> headers = {}, std::string request_id = "") {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  r.request_id = std::move(request_id);
  return r;
}

// ---------------------------------------------------------------------------
// Error documents (samples from the AWS API references)

TEST(AwsErrorTest, S3XmlError) {
  // https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
  Error e = aws_error("S3 GetObject of s3://mybucket/myfoto.jpg",
                      response_of(404, R"(<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>NoSuchKey</Code>
  <Message>The resource you requested does not exist</Message>
  <Resource>/mybucket/myfoto.jpg</Resource>
  <RequestId>4442587FB7D0A2F9</RequestId>
</Error>)"));
  EXPECT_EQ(e.message,
            "S3 GetObject of s3://mybucket/myfoto.jpg: HTTP 404 NoSuchKey: The resource you "
            "requested does not exist (request id 4442587FB7D0A2F9)");
  EXPECT_EQ(e.code, "NoSuchKey");
  EXPECT_EQ(e.http_status, 404);
}

TEST(AwsErrorTest, Ec2XmlError) {
  // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
  Error e = aws_error("EC2 RegisterImage (eu-west-2)", response_of(400, R"(<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Errors>
    <Error>
      <Code>InvalidAMIName.Duplicate</Code>
      <Message>AMI name x is already in use</Message>
    </Error>
  </Errors>
  <RequestID>ea966190-f9aa-478e-9ede-example</RequestID>
</Response>)"));
  EXPECT_EQ(e.message,
            "EC2 RegisterImage (eu-west-2): HTTP 400 InvalidAMIName.Duplicate: AMI name x is "
            "already in use (request id ea966190-f9aa-478e-9ede-example)");
  EXPECT_EQ(e.code, "InvalidAMIName.Duplicate");
  EXPECT_EQ(e.http_status, 400);
}

TEST(AwsErrorTest, StsXmlErrorAndHeaderRequestIdWins) {
  // https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html shape
  Error e = aws_error("STS AssumeRole (us-east-1)",
                      response_of(403, R"(<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>User: arn:aws:iam::123456789012:user/x is not authorized
      to perform: sts:AssumeRole</Message>
  </Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>)",
                                  {}, "from-header"));
  EXPECT_EQ(e.message,
            "STS AssumeRole (us-east-1): HTTP 403 AccessDenied: User: "
            "arn:aws:iam::123456789012:user/x is not authorized to perform: sts:AssumeRole "
            "(request id from-header)");
  EXPECT_EQ(e.code, "AccessDenied");
}

TEST(AwsErrorTest, JsonErrors) {
  // EBS direct APIs: x-amzn-ErrorType header, {"Message": .., "Reason": ..}.
  Error ebs = aws_error("EBS PutSnapshotBlock 7 (eu-west-2)",
                        response_of(400, R"({"Message":"The checksum is invalid","Reason":"INVALID_CHECKSUM"})",
                                    {{"x-amzn-ErrorType", "ValidationException:http://internal.amazon.com/coral/com.amazon.coral.validate/"},
                                     {"x-amzn-RequestId", "7f1c"}}));
  EXPECT_EQ(ebs.message,
            "EBS PutSnapshotBlock 7 (eu-west-2): HTTP 400 ValidationException: The checksum is "
            "invalid (request id 7f1c)");
  EXPECT_EQ(ebs.code, "ValidationException");

  Error typed = aws_error("EBS StartSnapshot (us-east-1)",
                          response_of(403, R"({"__type":"com.amazon.coral.service#AccessDeniedException","message":"User is not authorized"})"));
  EXPECT_EQ(typed.message, "EBS StartSnapshot (us-east-1): HTTP 403 AccessDeniedException: User is not authorized");
  EXPECT_EQ(typed.code, "AccessDeniedException");

  Error code = aws_error("X", response_of(429, R"({"code":"Throttling","message":"Rate exceeded"})"));
  EXPECT_EQ(code.message, "X: HTTP 429 Throttling: Rate exceeded");
}

TEST(AwsErrorTest, NoDocument) {
  Error head = aws_error("S3 HeadObject of s3://b/k", response_of(404, "", {{"x-amz-request-id", "R1"}}));
  EXPECT_EQ(head.message, "S3 HeadObject of s3://b/k: HTTP 404 Not Found (request id R1)");
  EXPECT_EQ(head.code, "");
  EXPECT_EQ(head.http_status, 404);

  Error html = aws_error("EC2 DescribeImages (us-east-1)",
                         response_of(502, "<html><body>\n<h1>Bad Gateway</h1></body></html>"));
  EXPECT_EQ(html.message,
            "EC2 DescribeImages (us-east-1): HTTP 502 Bad Gateway: <html><body> <h1>Bad "
            "Gateway</h1></body></html>");
}

TEST(AwsErrorTest, QueryBody) {
  EXPECT_EQ(aws_query_body("DescribeImages", "2016-11-15",
                           {{"Filter.1.Name", "name"}, {"Filter.1.Value.1", "alpine 3.21*/x&y=z"}}),
            "Action=DescribeImages&Version=2016-11-15&Filter.1.Name=name&"
            "Filter.1.Value.1=alpine%203.21%2A%2Fx%26y%3Dz");
}

// ---------------------------------------------------------------------------
// Requests against a scripted server

class CountingCredentials : public AwsCredentialProvider {
 public:
  Result<AwsCredentials> get() override {
    ++calls;
    return AwsCredentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  }
  std::string source() const override { return "test"; }
  std::atomic<int> calls{0};
};

class AwsClientFakeTest : public ::testing::Test {
 protected:
  AwsClientFakeTest() {
    env_.home = "/nonexistent";
    env_.vars["AWS_ENDPOINT_URL"] = server_.url("/base");
    retry_.max_attempts = 3;
    retry_.base_delay = std::chrono::milliseconds(1);
    retry_.max_delay = std::chrono::milliseconds(2);
  }
  AwsClient client() { return AwsClient(http_, credentials_, env_, retry_); }

  test::HttpTestServer server_;
  HttpClient http_;
  CountingCredentials credentials_;
  AwsEnv env_;
  RetryPolicy retry_;
};

TEST_F(AwsClientFakeTest, Ec2QueryIsAFormPostSignedForEc2) {
  server_.enqueue({.status = 200, .body = "<DescribeRegionsResponse/>"});
  AwsClient c = client();
  auto r = c.ec2("eu-west-2", "DescribeRegions", {{"RegionName.1", "eu-west-2"}});
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(*r, "<DescribeRegionsResponse/>");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/base/");
  EXPECT_EQ(reqs[0].body, "Action=DescribeRegions&Version=2016-11-15&RegionName.1=eu-west-2");
  EXPECT_EQ(reqs[0].header("Content-Type"), "application/x-www-form-urlencoded; charset=utf-8");
  EXPECT_NE(reqs[0].header("Authorization").find("/eu-west-2/ec2/aws4_request"), std::string::npos);
  EXPECT_EQ(reqs[0].header("x-amz-content-sha256"), "");
}

TEST_F(AwsClientFakeTest, Ec2ErrorsAndRetriesReSign) {
  server_.enqueue({.status = 503, .body = "<Response><Errors><Error><Code>Unavailable</Code></Error></Errors></Response>"});
  server_.enqueue({.status = 400,
                   .headers = {{"x-amzn-RequestId", "req-9"}},
                   .body = "<Response><Errors><Error><Code>InvalidAMIID.Malformed</Code>"
                           "<Message>Invalid id: \"x\"</Message></Error></Errors></Response>"});
  AwsClient c = client();
  auto r = c.ec2("us-east-1", "DescribeImages", {{"ImageId.1", "x"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(),
            "EC2 DescribeImages (us-east-1): HTTP 400 InvalidAMIID.Malformed: Invalid id: \"x\" "
            "(request id req-9)");
  EXPECT_EQ(r.error().code, "InvalidAMIID.Malformed");
  EXPECT_EQ(r.error().http_status, 400);
  EXPECT_EQ(server_.requests().size(), 2u);
  EXPECT_EQ(credentials_.calls.load(), 2);  // fresh credentials per attempt
}

TEST_F(AwsClientFakeTest, S3RestPathStyleOnOverrideWithEncodedKey) {
  server_.enqueue({.status = 200, .headers = {{"ETag", "\"abc\""}}});
  AwsClient c = client();
  AwsClient::RestCall call;
  call.service = AwsService::kS3;
  call.region = "eu-west-2";
  call.bucket = "my.bucket";
  call.raw_path = "/dir/a b+c/ü.raw";
  call.request.method = "PUT";
  call.request.query = {{"partNumber", "3"}, {"uploadId", "u/1"}};
  call.request.headers = {{"Content-MD5", "x"}};
  call.request.body = "hello";
  call.unsigned_payload = true;  // ignored over plain http
  auto r = c.rest(call);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->header("etag"), "\"abc\"");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target, "/base/my.bucket/dir/a%20b%2Bc/%C3%BC.raw?partNumber=3&uploadId=u%2F1");
  EXPECT_EQ(reqs[0].body, "hello");
  EXPECT_EQ(reqs[0].header("x-amz-content-sha256"), sha256_hex("hello"));
  EXPECT_EQ(reqs[0].header("Content-MD5"), "x");
  EXPECT_NE(reqs[0].header("Authorization").find("/eu-west-2/s3/aws4_request"), std::string::npos);
}

TEST_F(AwsClientFakeTest, S3FileBodyHashedOnceAndGivenHashUsed) {
  test::TempDir dir;
  std::ofstream(dir / "f", std::ios::binary) << "0123456789abcdef";
  int fd = ::open((dir / "f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  FileBody body{fd, 4, 6};  // "456789"
  SendOptions options;
  options.file_body = &body;
  server_.enqueue({.status = 500, .body = "<Error><Code>InternalError</Code></Error>"});
  server_.enqueue({.status = 200});
  AwsClient c = client();
  AwsClient::RestCall call;
  call.bucket = "b";
  call.region = "us-east-1";
  call.raw_path = "/k";
  call.request.method = "PUT";
  auto r = c.rest(call, options);
  ASSERT_TRUE(r.ok()) << r.message();
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  for (const auto& req : reqs) {
    EXPECT_EQ(req.body, "456789");
    EXPECT_EQ(req.header("x-amz-content-sha256"), sha256_hex("456789"));
  }
  call.payload_sha256 = std::string(64, 'a');
  server_.enqueue({.status = 200});
  ASSERT_TRUE(c.rest(call, options).ok());
  EXPECT_EQ(server_.requests().back().header("x-amz-content-sha256"), std::string(64, 'a'));

  FileBody past{fd, 10, 100};
  options.file_body = &past;
  call.payload_sha256.clear();
  auto short_file = c.rest(call, options);
  ASSERT_FALSE(short_file.ok());
  EXPECT_EQ(short_file.message(),
            "S3 PUT s3://b/k (us-east-1): reading 100 bytes at offset 10 to hash them: file "
            "ends after 16 bytes");
  ::close(fd);
}

TEST_F(AwsClientFakeTest, AcceptedStatusesAndHead) {
  server_.enqueue({.status = 404, .headers = {{"x-amz-request-id", "R404"}}});
  server_.enqueue({.status = 404, .headers = {{"x-amz-request-id", "R404"}}});
  AwsClient c = client();
  AwsClient::RestCall call;
  call.bucket = "b";
  call.region = "us-east-1";
  call.raw_path = "/missing";
  call.request.method = "HEAD";
  call.what = "S3 HeadObject of s3://b/missing";
  auto err = c.rest(call);
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.message(), "S3 HeadObject of s3://b/missing: HTTP 404 Not Found (request id R404)");
  call.accept = {404};
  auto ok = c.rest(call);
  ASSERT_TRUE(ok.ok()) << ok.message();
  EXPECT_EQ(ok->status, 404);
}

TEST_F(AwsClientFakeTest, S3RedirectNamesTheBucketRegion) {
  server_.enqueue({.status = 301,
                   .headers = {{"x-amz-bucket-region", "eu-west-2"}, {"x-amz-request-id", "R301"}},
                   .body = "<Error><Code>PermanentRedirect</Code><Message>The bucket you are "
                           "attempting to access must be addressed using the specified "
                           "endpoint.</Message><Endpoint>b.s3.eu-west-2.amazonaws.com</Endpoint>"
                           "<Bucket>b</Bucket></Error>"});
  server_.enqueue({.status = 301,
                   .body = "<Error><Code>PermanentRedirect</Code><Endpoint>b.s3.amazonaws.com</Endpoint></Error>"});
  AwsClient c = client();
  AwsClient::RestCall call;
  call.bucket = "b";
  call.region = "us-east-1";
  call.raw_path = "/k";
  call.request.method = "GET";
  call.what = "S3 GetObject of s3://b/k";
  auto r = c.rest(call);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(),
            "S3 GetObject of s3://b/k: HTTP 301 PermanentRedirect: bucket 'b' is in region "
            "eu-west-2, not us-east-1; use that region (request id R301)");
  EXPECT_EQ(r.error().code, "PermanentRedirect");
  EXPECT_EQ(r.error().http_status, 301);
  auto r2 = c.rest(call);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.message(),
            "S3 GetObject of s3://b/k: HTTP 301 PermanentRedirect: bucket 'b' must be addressed "
            "at b.s3.amazonaws.com (another region)");
}

TEST_F(AwsClientFakeTest, EbsSignedForEbsWithoutS3Options) {
  server_.enqueue({.status = 201, .body = "{}"});
  AwsClient c = client();
  AwsClient::RestCall call;
  call.service = AwsService::kEbs;
  call.region = "eu-west-2";
  call.raw_path = "/snapshots/snap-1/blocks/7";
  call.request.method = "PUT";
  call.request.body = "block";
  auto r = c.rest(call);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->status, 201);
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target, "/base/snapshots/snap-1/blocks/7");
  EXPECT_NE(reqs[0].header("Authorization").find("/eu-west-2/ebs/aws4_request"), std::string::npos);
  EXPECT_EQ(reqs[0].header("x-amz-content-sha256"), "");
}

TEST_F(AwsClientFakeTest, CredentialAndEndpointErrorsNameTheCall) {
  class Failing : public AwsCredentialProvider {
   public:
    Result<AwsCredentials> get() override { return Error{"token expired"}; }
    std::string source() const override { return "failing"; }
  } failing;
  AwsClient c(http_, failing, env_, retry_);
  auto r = c.ec2("us-east-1", "DescribeRegions", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "EC2 DescribeRegions (us-east-1): token expired");

  AwsEnv bad = env_;
  bad.vars["AWS_ENDPOINT_URL_EC2"] = "ftp://x";
  AwsClient c2(http_, credentials_, bad, retry_);
  auto r2 = c2.ec2("us-east-1", "DescribeRegions", {});
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.message(),
            "EC2 DescribeRegions (us-east-1): endpoint override AWS_ENDPOINT_URL_EC2='ftp://x': "
            "not an http(s) URL");
}

}  // namespace
}  // namespace ch
