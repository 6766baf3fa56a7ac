// S3 calls against the scripted server (tests/test_http_server.h), for what
// moto cannot show: the exact headers on the wire (moto verifies neither
// Content-MD5 nor the payload hash), answers moto never gives (a 200
// carrying an <Error>, a 503 on one part, a 301 to another region), and
// what is NOT sent after a failure.
#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/file.h"
#include "clouds/aws/credentials.h"
#include "clouds/aws/s3.h"
#include "clouds/aws/s3_multipart.h"
#include "tests/test_http_server.h"
#include "tests/test_util.h"

namespace ch {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr uint64_t kMiB = 1ull << 20;

bool has(const std::string& target, const std::string& part) { return target.find(part) != std::string::npos; }

class S3WireTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AwsEnv env;
    env.vars["AWS_ENDPOINT_URL"] = server_.url("");
    env.home = dir_.path();
    credentials_ = static_aws_credentials({"AKIDWIRE", "wiresecret", ""}, "test");
    RetryPolicy retry;
    retry.max_attempts = 3;
    retry.base_delay = std::chrono::milliseconds(1);
    retry.max_delay = std::chrono::milliseconds(5);
    client_ = std::make_unique<AwsClient>(http_, *credentials_, env, retry);
  }

  // A fake multipart endpoint: CreateMultipartUpload gives "UP1", parts
  // answer with the MD5 of what arrived, the Nth Complete with
  // COMPLETE_BODIES[N] (the last one repeats). FAIL_PART's first attempt
  // gets FAIL_STATUS with FAIL_BODY.
  void serve_multipart(std::vector<std::string> complete_bodies, uint32_t fail_part = 0,
                       int fail_status = 0, std::string fail_body = "") {
    server_.set_handler([=, this](const test::ReceivedRequest& r) {
      test::ScriptedResponse resp;
      resp.headers.push_back({"x-amz-request-id", "REQ" + std::to_string(++requests_)});
      if (r.method == "POST" && has(r.target, "?uploads")) {
        resp.body = "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                    "<Bucket>b</Bucket><Key>k</Key><UploadId>UP1</UploadId></InitiateMultipartUploadResult>";
      } else if (r.method == "PUT" && has(r.target, "partNumber=")) {
        std::string number = r.target.substr(r.target.find("partNumber=") + 11);
        number = number.substr(0, number.find('&'));
        if (fail_part != 0 && number == std::to_string(fail_part) && !failed_.exchange(true)) {
          resp.status = fail_status;
          resp.body = fail_body;
          return resp;
        }
        resp.headers.push_back({"ETag", "\"" + test::digest_hex(r.body, "md5") + "\""});
      } else if (r.method == "POST" && has(r.target, "uploadId=UP1")) {
        size_t n = std::min<size_t>(completes_++, complete_bodies.size() - 1);
        resp.body = complete_bodies[n];
      } else if (r.method == "DELETE") {
        resp.status = 204;
      } else if (r.method == "HEAD") {
        resp.status = 404;  // the skip check finds nothing
      } else {
        resp.status = 500;
      }
      return resp;
    });
  }

  std::vector<test::ReceivedRequest> requests_matching(const std::string& method, const std::string& part) {
    std::vector<test::ReceivedRequest> out;
    for (auto& r : server_.requests()) {
      if (r.method == method && has(r.target, part)) out.push_back(r);
    }
    return out;
  }

  std::string make_file(uint64_t size) {
    std::string path = dir_ / "disk.raw";
    CH_CHECK(test::make_sparse_file(path, size, {{0, size, false}}).ok());
    return path;
  }

  static constexpr const char* kCompleteOk =
      "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Location>x</Location><Bucket>b</Bucket><Key>k</Key><ETag>\"abc-3\"</ETag>"
      "</CompleteMultipartUploadResult>";

  test::HttpTestServer server_;
  test::TempDir dir_;
  HttpClient http_;
  std::unique_ptr<AwsCredentialProvider> credentials_;
  std::unique_ptr<AwsClient> client_;
  std::atomic<int> requests_{0};
  std::atomic<bool> failed_{false};
  std::atomic<size_t> completes_{0};
};

TEST_F(S3WireTest, PartsCarryContentMd5AndTheirSignedSha256) {
  serve_multipart({kCompleteOk});
  std::string path = make_file(11 * kMiB + 3);
  S3UploadOptions o;
  o.part_size = 5 * kMiB;
  o.parallel = 2;
  o.sha256 = std::string(64, 'e');
  auto r = s3_upload_file(*client_, "us-east-1", S3Url{"bucket", "dir/disk image.raw"}, path, o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->object.etag, "abc-3");

  EXPECT_EQ(requests_matching("HEAD", "").size(), 1u);  // the skip check, with sha256 given
  auto creates = requests_matching("POST", "?uploads");
  ASSERT_EQ(creates.size(), 1u);
  EXPECT_EQ(creates[0].target, "/bucket/dir/disk%20image.raw?uploads=");
  EXPECT_EQ(creates[0].header("x-amz-meta-sha256"), o.sha256);

  auto parts = requests_matching("PUT", "partNumber=");
  ASSERT_EQ(parts.size(), 3u);
  auto file = File::open_read(path);
  for (const auto& p : parts) {
    std::string number = p.target.substr(p.target.find("partNumber=") + 11, 1);
    uint64_t offset = (std::stoull(number) - 1) * 5 * kMiB;
    uint64_t length = std::min<uint64_t>(5 * kMiB, 11 * kMiB + 3 - offset);
    std::string expected(length, '\0');
    ASSERT_TRUE(file->pread_full(offset, expected.data(), length).ok());
    EXPECT_EQ(p.body, expected) << "part " << number;
    EXPECT_EQ(p.header("Content-MD5"), content_md5(expected));
    // The real hash, signed: S3 verifies it (never UNSIGNED-PAYLOAD).
    EXPECT_EQ(p.header("x-amz-content-sha256"), test::digest_hex(expected, "sha256"));
    EXPECT_THAT(p.header("Authorization"), HasSubstr("x-amz-content-sha256"));
    EXPECT_THAT(p.target, HasSubstr("uploadId=UP1"));
  }
  auto completes = requests_matching("POST", "uploadId=UP1");
  ASSERT_EQ(completes.size(), 1u);
  std::string list;
  for (uint32_t n = 1; n <= 3; ++n) {
    uint64_t offset = (n - 1) * 5 * kMiB;
    std::string bytes(std::min<uint64_t>(5 * kMiB, 11 * kMiB + 3 - offset), '\0');
    ASSERT_TRUE(file->pread_full(offset, bytes.data(), bytes.size()).ok());
    list += "<Part><PartNumber>" + std::to_string(n) + "</PartNumber><ETag>\"" +
            test::digest_hex(bytes, "md5") + "\"</ETag></Part>";
  }
  EXPECT_EQ(completes[0].body,
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">" + list +
                "</CompleteMultipartUpload>");
}

TEST_F(S3WireTest, SinglePutCarriesDigestsAndHeaders) {
  server_.set_handler([](const test::ReceivedRequest& r) {
    test::ScriptedResponse resp;
    resp.headers.push_back({"ETag", "\"" + test::digest_hex(r.body, "md5") + "\""});
    resp.headers.push_back({"x-amz-version-id", "v7"});
    return resp;
  });
  std::string path = make_file(1000);
  S3UploadOptions o;
  o.content_type = "application/octet-stream";
  o.tags = {{"k", "v w"}};
  auto r = s3_upload_file(*client_, "us-east-1", S3Url{"bucket", "a+b.raw"}, path, o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->object.version_id, "v7");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].target, "/bucket/a%2Bb.raw");
  EXPECT_EQ(reqs[0].header("Content-MD5"), content_md5(reqs[0].body));
  EXPECT_EQ(reqs[0].header("x-amz-content-sha256"), test::digest_hex(reqs[0].body, "sha256"));
  EXPECT_EQ(reqs[0].header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(reqs[0].header("x-amz-tagging"), "k=v%20w");
  EXPECT_EQ(reqs[0].body.size(), 1000u);
}

TEST_F(S3WireTest, ForbiddenHeadStillUploads) {
  server_.set_handler([](const test::ReceivedRequest& r) {
    test::ScriptedResponse resp;
    if (r.method == "HEAD") resp.status = 403;
    if (r.method == "PUT") resp.headers.push_back({"ETag", "\"" + test::digest_hex(r.body, "md5") + "\""});
    return resp;
  });
  std::string path = make_file(100);
  S3UploadOptions o;
  o.sha256 = std::string(64, 'a');
  auto r = s3_upload_file(*client_, "us-east-1", S3Url{"bucket", "k"}, path, o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FALSE(r->already_present);
  EXPECT_EQ(requests_matching("PUT", "/bucket/k").size(), 1u);
}

TEST_F(S3WireTest, CompleteAnswering200WithAnErrorFails) {
  serve_multipart({"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidPart</Code>"
                   "<Message>One or more of the specified parts could not be found.</Message>"
                   "<RequestId>R200</RequestId></Error>"});
  std::string path = make_file(6 * kMiB);
  S3UploadOptions o;
  o.part_size = 5 * kMiB;
  auto r = s3_upload_file(*client_, "us-east-1", S3Url{"bucket", "k"}, path, o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.message(), StartsWith("S3 CompleteMultipartUpload s3://bucket/k: HTTP 200 InvalidPart: "
                                      "One or more of the specified parts could not be found. (request id "));
  EXPECT_EQ(r.error().code, "InvalidPart");
  EXPECT_EQ(requests_matching("POST", "uploadId=UP1").size(), 1u);
  EXPECT_TRUE(requests_matching("DELETE", "").empty());  // left for a resume
}

TEST_F(S3WireTest, CompleteAnswering200WithInternalErrorIsRetried) {
  serve_multipart({"<Error><Code>InternalError</Code><Message>We encountered an internal error. "
                   "Please try again.</Message></Error>",
                   kCompleteOk});
  std::string path = make_file(6 * kMiB);
  S3UploadOptions o;
  o.part_size = 5 * kMiB;
  auto r = s3_upload_file(*client_, "us-east-1", S3Url{"bucket", "k"}, path, o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->object.etag, "abc-3");
  EXPECT_EQ(requests_matching("POST", "uploadId=UP1").size(), 2u);
}

TEST_F(S3WireTest, RetriedPartCountsItsBytesOnce) {
  serve_multipart({kCompleteOk}, /*fail_part=*/2, 503,
                  "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>");
  std::string path = make_file(12 * kMiB);
  S3UploadOptions o;
  o.part_size = 5 * kMiB;
  std::atomic<uint64_t> progress{0};
  o.progress = [&](uint64_t d) { progress += d; };
  auto r = s3_upload_file(*client_, "us-east-1", S3Url{"bucket", "k"}, path, o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(requests_matching("PUT", "partNumber=2&").size(), 2u);
  EXPECT_EQ(r->parts_sent, 3u);
  EXPECT_EQ(progress.load(), 12 * kMiB);
}

TEST_F(S3WireTest, RefusedPartStopsTheUploadAndNamesThePart) {
  serve_multipart({kCompleteOk}, /*fail_part=*/2, 403,
                  "<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
                  "<RequestId>RQ403</RequestId></Error>");
  std::string path = make_file(12 * kMiB);
  S3UploadOptions o;
  o.part_size = 5 * kMiB;
  o.parallel = 1;
  auto r = s3_upload_file(*client_, "us-east-1", S3Url{"bucket", "img/k"}, path, o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.message(), StartsWith("S3 UploadPart 2 of s3://bucket/img/k: HTTP 403 AccessDenied: "
                                      "Access Denied (request id "));
  EXPECT_EQ(r.error().http_status, 403);
  EXPECT_EQ(requests_matching("PUT", "partNumber=3&").size(), 0u);  // stopped after the failure
  EXPECT_TRUE(requests_matching("POST", "uploadId=UP1").empty());   // no Complete
  EXPECT_TRUE(requests_matching("DELETE", "").empty());             // kept for a resume
}

TEST_F(S3WireTest, BucketRegionFromARedirect) {
  server_.set_handler([](const test::ReceivedRequest& r) {
    test::ScriptedResponse resp;
    resp.status = 301;
    resp.headers.push_back({"x-amz-bucket-region", "ap-southeast-2"});
    return resp;
  });
  auto region = s3_bucket_region(*client_, "far-bucket");
  ASSERT_TRUE(region.ok()) << region.message();
  EXPECT_EQ(*region, "ap-southeast-2");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "HEAD");
}

TEST_F(S3WireTest, BucketRegionFromGetBucketLocation) {
  server_.set_handler([](const test::ReceivedRequest& r) {
    test::ScriptedResponse resp;
    if (r.method == "GET") {
      resp.body = "<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">EU</LocationConstraint>";
    }
    return resp;
  });
  auto region = s3_bucket_region(*client_, "old-bucket");
  ASSERT_TRUE(region.ok()) << region.message();
  EXPECT_EQ(*region, "eu-west-1");
}

TEST_F(S3WireTest, MalformedXmlIsNamed) {
  server_.set_handler([](const test::ReceivedRequest&) {
    test::ScriptedResponse resp;
    resp.body = "<InitiateMultipartUploadResult><UploadId>x";
    return resp;
  });
  auto id = s3_create_multipart_upload(*client_, "us-east-1", S3Url{"bucket", "k"}, {});
  ASSERT_FALSE(id.ok());
  EXPECT_THAT(id.message(), StartsWith("S3 CreateMultipartUpload s3://bucket/k: malformed XML in the response: "));
}

}  // namespace
}  // namespace ch
