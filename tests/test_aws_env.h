// The AWS emulators as tests see them: moto_server behind the gap-filling
// and fault-injecting proxies, plus a signature-checking moto, all started
// by CTest's fixture "aws" (tests/aws/emulators.py; ports, behaviour and
// moto's known gaps in tests/aws/README.md).
//
// moto's state is shared by every test of a run and survives between tests:
// each test names its buckets, keys and images with unique_name().
//
//   class MyAwsTest : public ch::test::AwsTest {};
//   TEST_F(MyAwsTest, Uploads) {
//     std::string bucket = ch::test::unique_name("up");
//     ASSERT_TRUE(aws().boto3("s3.create_bucket(Bucket='" + bucket + "')").ok());
//     ... exercise our client against aws().endpoint ...
//     auto out = aws().boto3("print(s3.head_object(Bucket=..., Key=...)['ContentLength'])");
//   }
//
// Our own C++ client under test talks to aws().endpoint (or aws().moto_url
// where a test needs moto as it is) through an AwsTestClient.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"
#include "clouds/aws/aws_client.h"

namespace ch::test {

struct AwsKeys {
  std::string access_key_id;
  std::string secret_access_key;
};

class AwsTestEnv {
 public:
  // From CLOUD_HELPER_AWS_ENDPOINT, CLOUD_HELPER_MOTO_URL,
  // CLOUD_HELPER_AWS_FAULT_ENDPOINT, CLOUD_HELPER_AWS_AUTH_ENDPOINT and
  // CLOUD_HELPER_AWS_AUTH_KEYS; fails, naming the variable or endpoint and how
  // to start the emulators, when one is unset or does not answer.
  static Result<AwsTestEnv> load();

  std::string endpoint;        // gap proxy in front of moto: S3, EC2, EBS, IAM
  std::string moto_url;        // moto itself, bypassing the gap proxy
  std::string fault_endpoint;  // fault proxy in front of `endpoint`
  std::string auth_endpoint;   // moto checking SigV4 signatures
  std::string auth_keys_path;  // auth_keys.json: an IAM user's keys for auth_endpoint
  std::string region = "us-east-1";
  // Any keys work on the endpoints that do not check signatures.
  AwsKeys keys{"test", "test"};

  // The IAM user's keys that auth_endpoint accepts.
  Result<AwsKeys> auth_keys() const;

  // Runs `python_code` with python3 (the one with boto3) after a preamble
  // that defines clients s3, ec2, ebs, iam for `endpoint` and `region`
  // (credentials test/test, one attempt, path-style S3), a function
  // client(service, endpoint=ENDPOINT, region=REGION, key=..., secret=...)
  // for others, and the names ENDPOINT, MOTO_URL, FAULT_ENDPOINT,
  // AUTH_ENDPOINT, AUTH_KEYS (dict), REGION. Returns stdout; a non-zero exit
  // is an error carrying the script's stderr tail.
  //
  // The preamble also defines these checks (modules base64, hashlib, json,
  // os, sys, time are imported):
  //   error_code(f)  calls f(): 'ok', or the AWS error code it raised.
  //   snapshot_block_digests(sid, e=ebs)  (block size, {index: sha256 hex})
  //       of every block of EBS snapshot sid, read through the direct APIs.
  //   file_block_digests(path, bs)  {index: sha256 hex} of the bs-byte
  //       blocks of path holding a non-zero byte (the last one zero-padded);
  //       holes are skipped unread (SEEK_DATA), so huge sparse files are cheap.
  //   compare_snapshot_with_file(sid, path, e=ebs)  {'block_size', 'blocks',
  //       'missing', 'extra', 'differ' (first 5 indexes of each), 'match'}:
  //       whether the snapshot holds exactly the file's non-zero blocks.
  Result<std::string> boto3(const std::string& python_code) const;
  // The same with ENDPOINT (and so s3, ec2, ebs, iam) set to `endpoint`.
  Result<std::string> boto3_at(const std::string& endpoint, const std::string& python_code) const;

  // Fault proxy: adds or replaces the rule `rule` (fault_proxy.py's JSON,
  // e.g. {"drop": 0.2, "seed": 3, "match": "s3:UploadPart " + bucket} or
  // {"sequence": ["throttle"], "match": "s3:PutObject " + bucket}). The proxy
  // is shared by tests running in parallel: name the rule after the test
  // (unique_name) and scope its "match" to the test's own bucket, image or
  // snapshot names.
  Status set_faults(const std::string& rule, const nlohmann::json& config) const;
  // Removes the rule.
  Status clear_faults(const std::string& rule) const;
  // {"requests", "faults", "faults_by_rule", "forwarded", "forwarded_targets",
  // "upstream_status"}: counts since the emulators started, shared by all
  // tests; assert on your own rule and targets.
  Result<nlohmann::json> fault_stats() const;

  // Gap proxy: the account's image block public access state in every region
  // ("block-new-sharing" or "unblocked"; tests that set it reset it).
  Status set_image_block_public_access(const std::string& state) const;
  // Gap proxy: DescribeImportSnapshotTasks calls until a task completes (default 2).
  Status set_import_polls(int polls) const;
};

// A fixture whose tests fail with a clear message when the emulators are
// not running, and otherwise see them through aws().
class AwsTest : public ::testing::Test {
 protected:
  void SetUp() override;
  const AwsTestEnv& aws() const { return env_; }

 private:
  AwsTestEnv env_;
};

// `text` as a Python string literal, for values put into boto3() code.
std::string py_literal(const std::string& text);

// Polls and retries shrink to milliseconds for this process
// (CLOUD_HELPER_POLL_SCALE=0.001 for clouds/poll.h,
// CLOUD_HELPER_RETRY_SCALE=0.01 for clouds/http/retry.h) unless the caller
// set them already. Call before making an AwsTestClient.
void use_fast_waits();

// Our AwsClient on `url` (AWS_ENDPOINT_URL: an emulator, or a scripted
// tests/test_http_server.h) with static credentials `keys` and no
// ~/.aws files. The emulators but auth_endpoint take any keys.
struct AwsTestClient {
  explicit AwsTestClient(const std::string& url, const AwsKeys& keys = {"test", "test"},
                         const RetryPolicy& retry = RetryPolicy::from_env());
  AwsTestClient(const AwsTestClient&) = delete;
  AwsTestClient& operator=(const AwsTestClient&) = delete;

  HttpClient http;
  std::unique_ptr<AwsCredentialProvider> credentials;
  std::unique_ptr<AwsClient> client;
};

// AwsTest plus our AwsClient on aws().endpoint (keys test/test, retries
// from the environment) with fast waits (use_fast_waits).
class AwsClientTest : public AwsTest {
 protected:
  void SetUp() override;
  AwsClient& client() { return *client_->client; }

 private:
  std::unique_ptr<AwsTestClient> client_;
};

// A name no other test of this or an earlier run against the same emulators
// uses: "<prefix>-<test name>-<unique suffix>", lowercase [a-z0-9-], at most
// 63 characters, valid as an S3 bucket, object key, AMI or tag value.
std::string unique_name(const std::string& prefix = "ch");

// One request, JSON body, with our HttpClient (no retries, 30 s limit) to
// an http:// URL: the emulators' control endpoints. Returns {status, body}
// of any status; a transport failure is an error naming the call.
struct LoopbackResponse {
  int status = 0;
  std::string body;
};
Result<LoopbackResponse> loopback_http(const std::string& method, const std::string& url,
                                       const std::string& body = "");

}  // namespace ch::test
