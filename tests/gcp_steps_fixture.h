// What the end-to-end tests of `cloud_helper upload/import/publish/rollback`
// for cloud: gcp share (tests/gcp_steps_test.cc): the built binary run in a
// temporary directory with a hermetic environment against the fake Google
// Cloud (tests/gcp/fake_gcp.py: OAuth2 with the JWT signature checked,
// Cloud Storage JSON API, Compute images); results read back from the fake
// independently of the code under test (object bytes, images, IAM policies).
//
// Every test has its own bucket and image name (and, where faults are
// injected, its own project), so tests running in parallel never meet.
#pragma once

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "clouds/http/http_client.h"
#include "clouds/operations.h"
#include "metadata/image_metadata.h"
#include "tests/test_aws_env.h"
#include "tests/step_fixture.h"
#include "tests/test_util.h"

namespace ch::test::gcp_steps {

using nlohmann::json;

inline constexpr uint64_t kMiB = 1 << 20;

class GcpSteps : public ::testing::Test, protected StepFixture {
 protected:
  void SetUp() override {
    endpoint_ = env_or("CLOUD_HELPER_GCP_ENDPOINT");
    sa_json_ = env_or("CLOUD_HELPER_GCP_SA_JSON");
    if (endpoint_.empty() || sa_json_.empty())
      GTEST_SKIP() << "CLOUD_HELPER_GCP_ENDPOINT / CLOUD_HELPER_GCP_SA_JSON unset (run through ctest)";
    name_ = unique_name("img");
    bucket_ = unique_name("b");
    fake("POST", "/_fake/buckets", json{{"name", bucket_}}.dump());
  }

  // Nothing inherited but PATH: no developer credentials leak in. CREDS
  // replaces the service account (empty: none, for the metadata server).
  std::string env_text(const std::string& extra = "", const std::string& creds = "-") const {
    std::string c = creds == "-" ? sa_json_ : creds;
    return hermetic_env((c.empty() ? "" : "GOOGLE_APPLICATION_CREDENTIALS=" + shell_quote(c)) +
                        " STORAGE_EMULATOR_HOST=" + shell_quote(endpoint_) +
                        " CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE=" + shell_quote(endpoint_ + "/compute/v1/") +
                        " CLOUD_HELPER_RETRY_SCALE=0.01 CLOUD_HELPER_POLL_SCALE=0.02 " + extra);
  }
  std::string command(const std::string& args, const std::string& extra_env = "", const std::string& creds = "-") const {
    return command_with(env_text(extra_env, creds), args);
  }
  StepRun run(const std::string& args, const std::string& extra_env = "", const std::string& creds = "-") const {
    return run_with(env_text(extra_env, creds), args);
  }
  template <typename Ready>
  bool run_and_kill(const std::string& args, const std::string& yaml, Ready ready, int* code) {
    return kill_when(command(args), yaml, ready, code);
  }


  // A sparse raw disk with a few MiB of pseudo-random data (which gzip
  // cannot shrink, so the tarball has several upload chunks).
  void make_disk(const std::string& name, uint64_t size, uint64_t seed = 1) {
    std::vector<DataRun> runs = {{0, kMiB + 4096}, {size / 4 + 12345, 1500 * 1024}, {size / 2, 2 * kMiB, true},
                                 {size - kMiB - 777, kMiB}};
    Status s = make_sparse_file(dir_.file(name), size, runs, seed);
    ASSERT_TRUE(s.ok()) << s.message();
  }

  std::string yaml_inputs(const std::string& extra = "", const std::string& gcp_extra = "",
                          const std::string& project = "fake-project") const {
    return "name: " + name_ + "\ncloud: gcp\narch: x86_64\nfirmware: uefi\nrelease: 3.21.0-r1\n"
           "description: Alpine Linux 3.21\nlocal_image: disk.img\n"
           "storage_url: gs://" + bucket_ + "/images/\ntags: {Project: Example}\n" + extra +
           "gcp:\n  project: " + project + "\n  family: alpine-3-21\n  upload_chunk_size: 262144\n" + gcp_extra;
  }

  // Test controls of the fake (no auth).
  json fake(const std::string& method, const std::string& path, const std::string& body = "") {
    auto r = loopback_http(method, endpoint_ + path, body);
    EXPECT_TRUE(r.ok()) << r.message();
    if (!r.ok()) return nullptr;
    EXPECT_LT(r->status, 300) << path << ": " << r->body;
    return json::parse(r->body, nullptr, false);
  }
  json state() { return fake("GET", "/_fake/state"); }
  std::string object_bytes(const std::string& name) {
    auto r = loopback_http("GET", endpoint_ + "/_fake/object?bucket=" + bucket_ + "&name=" + name);
    EXPECT_TRUE(r.ok() && r->status == 200);
    return r.ok() ? r->body : "";
  }
  // A token of the test user (authorized_user refresh), for API reads and writes.
  std::string token() {
    HttpClient client;
    auto req = request_from_url(endpoint_ + "/token");
    req->method = "POST";
    req->headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    req->body = "grant_type=refresh_token&client_id=fake-client-id&client_secret=fake-client-secret"
                "&refresh_token=fake-refresh-token";
    auto t = client.send(*req);
    EXPECT_TRUE(t.ok() && t->status == 200);
    return t.ok() ? json::parse(t->body, nullptr, false).value("access_token", "") : "";
  }
  json api(const std::string& method, const std::string& path, const std::string& body = "") {
    HttpClient client;
    auto req = request_from_url(endpoint_ + path);
    req->method = method;
    req->headers = {{"Authorization", "Bearer " + token()}};
    if (!body.empty()) req->headers.push_back({"Content-Type", "application/json"});
    req->body = body;
    auto r = client.send(*req);
    EXPECT_TRUE(r.ok());
    if (!r.ok() || r->status == 404) return nullptr;
    EXPECT_EQ(r->status, 200) << path << ": " << r->body;
    return json::parse(r->body, nullptr, false);
  }
  std::string image_path(const std::string& project = "fake-project") const {
    return "/compute/v1/projects/" + project + "/global/images/" + name_;
  }

  std::string endpoint_, sa_json_, name_, bucket_;
};

}  // namespace ch::test::gcp_steps
