// Test-only (included by the clouds/aws EC2 and EBS tests): an AwsClient
// talking to moto or to a scripted server. CLOUD_HELPER_AWS_ENDPOINT, when set, names a shared harness
// (moto behind a proxy that fills moto's gaps: ImportSnapshot,
// DescribeImportSnapshotTasks, EnableImageDeprecation,
// GetImageBlockPublicAccessState); otherwise one moto_server is started on
// 127.0.0.1:47120 at first use and stopped when the test binary exits.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "clouds/aws/aws_client.h"
#include "clouds/aws/credentials.h"
#include "clouds/http/http_client.h"
#include "tests/test_util.h"

namespace ch::test {

// Polls and retries shrink to milliseconds (clouds/aws/poll.h,
// clouds/http/retry.h) unless the caller set their scales already.
inline void use_fast_waits() {
  ::setenv("CLOUD_HELPER_POLL_SCALE", "0.001", 0);
  ::setenv("CLOUD_HELPER_RETRY_SCALE", "0.01", 0);
}

class MotoEndpoint {
 public:
  static MotoEndpoint& get() {
    static MotoEndpoint instance;
    return instance;
  }
  // "" with error() set when no server could be had.
  const std::string& url() const { return url_; }
  const std::string& error() const { return error_; }
  // The shared harness (with the gap-filling proxy) is in use.
  bool harness() const { return harness_; }

  ~MotoEndpoint() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }

 private:
  static constexpr int kPort = 47120;

  MotoEndpoint() {
    use_fast_waits();
    if (const char* e = std::getenv("CLOUD_HELPER_AWS_ENDPOINT"); e != nullptr && *e != '\0') {
      url_ = e;
      harness_ = true;
      return;
    }
    const std::string url = "http://127.0.0.1:" + std::to_string(kPort);
    if (answers(url)) {  // already running (another run of these tests)
      url_ = url;
      return;
    }
    pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      // moto otherwise loads ~1,200 public AMIs per region: slow to start.
      ::setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false", 1);
      std::freopen("/dev/null", "w", stdout);
      std::freopen("/tmp/cloud_helper_ec2_moto.log", "w", stderr);
      ::execlp("moto_server", "moto_server", "-H", "127.0.0.1", "-p", std::to_string(kPort).c_str(),
               static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    if (pid < 0) {
      error_ = "fork failed";
      return;
    }
    pid_ = pid;
    for (int i = 0; i < 300; ++i) {  // moto takes a few seconds to import
      if (answers(url)) {
        url_ = url;
        return;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        error_ = "moto_server exited (is it on PATH? see /tmp/cloud_helper_ec2_moto.log)";
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    error_ = "moto_server did not answer on " + url + " within 30 s";
  }

  static bool answers(const std::string& url) {
    HttpClient http;
    auto req = request_from_url(url + "/moto-api/");
    if (!req.ok()) return false;
    auto out = http.send(*req);
    return out.ok() && out->status == 200;
  }

  std::string url_;
  std::string error_;
  bool harness_ = false;
  pid_t pid_ = -1;
};

// An AwsClient on URL (moto, or a scripted test server) with static
// test/test credentials.
struct AwsTestClient {
  AwsEnv env;
  HttpClient http;
  std::unique_ptr<AwsCredentialProvider> credentials;
  std::unique_ptr<AwsClient> client;

  explicit AwsTestClient(const std::string& url) {
    env.vars["AWS_ENDPOINT_URL"] = url;
    credentials = static_aws_credentials(AwsCredentials{"test", "test", ""}, "test");
    client = std::make_unique<AwsClient>(http, *credentials, env, RetryPolicy::from_env());
  }
};

// In a TEST body: fails the test when moto cannot be had (it is part of the
// test environment), else declares `aws` (AwsTestClient).
#define CH_REQUIRE_MOTO(aws)                                                   \
  auto& aws##_endpoint_ = ::ch::test::MotoEndpoint::get();                     \
  if (aws##_endpoint_.url().empty()) GTEST_FAIL() << aws##_endpoint_.error();  \
  ::ch::test::AwsTestClient aws(aws##_endpoint_.url())

}  // namespace ch::test
