// What the end-to-end tests of cloud: openstack share
// (tests/openstack_steps_test.cc): the built binary run in a temporary
// directory with a hermetic environment against Debian's real Keystone and
// three real glance-api servers (tests/openstack/emulators.py); results read
// back independently with plain HTTP requests to Keystone and Glance (a
// token of their own, GET /v2/images/ID, GET /v2/images/ID/file).
//
// Every test has its own image name, so tests running in parallel against
// the shared services never see each other's images.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "clouds/http/http_client.h"
#include "clouds/operations.h"
#include "metadata/image_metadata.h"
#include "tests/test_aws_env.h"
#include "tests/step_fixture.h"
#include "tests/test_util.h"

namespace ch::test::openstack_steps {

using nlohmann::json;

class OpenStackSteps : public ::testing::Test, protected StepFixture {
 protected:
  void SetUp() override {
    const char* env_file = std::getenv("CLOUD_HELPER_OS_ENV_FILE");
    if (!env_file) GTEST_SKIP() << "CLOUD_HELPER_OS_ENV_FILE unset (run through ctest)";
    std::istringstream lines(slurp(env_file));
    for (std::string line; std::getline(lines, line);)
      if (size_t eq = line.find('='); eq != std::string::npos) env_[line.substr(0, eq)] = line.substr(eq + 1);
    if (env_["CLOUD_HELPER_OS_AUTH_URL"].empty()) GTEST_SKIP() << env_file << " has no CLOUD_HELPER_OS_AUTH_URL";
    name_ = unique_name("os");
  }

  std::string auth_url() { return env_["CLOUD_HELPER_OS_AUTH_URL"]; }
  std::string password() { return env_["CLOUD_HELPER_OS_PASSWORD"]; }

  // Password credentials as an openrc file sets them.
  std::string password_env(const std::string& region = "RegionOne", const std::string& project = "admin") {
    return "OS_AUTH_URL=" + shell_quote(auth_url()) + " OS_USERNAME=admin OS_PASSWORD=" + shell_quote(password()) +
           " OS_PROJECT_NAME=" + project + " OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default" +
           (region.empty() ? "" : " OS_REGION_NAME=" + region);
  }

  // Nothing inherited but PATH: no developer credentials leak in.
  std::string command(const std::string& args, const std::string& os_env) const {
    return command_with(hermetic_env("CLOUD_HELPER_RETRY_SCALE=0.01 " + os_env), args);
  }
  StepRun run(const std::string& args, const std::string& os_env) const {
    return run_with(hermetic_env("CLOUD_HELPER_RETRY_SCALE=0.01 " + os_env), args);
  }

  // A sparse raw disk with data runs over SIZE bytes.
  void make_disk(const std::string& name, uint64_t size, uint64_t seed = 1) {
    const uint64_t MiB = 1 << 20;
    std::vector<DataRun> runs = {{0, MiB + 4096}, {size / 4 + 12345, 700 * 1024}, {size / 2, 2 * MiB, true},
                                 {size - MiB - 777, MiB}};
    Status s = make_sparse_file(dir_.file(name), size, runs, seed);
    ASSERT_TRUE(s.ok()) << s.message();
  }

  std::string yaml_inputs(const std::string& extra = "", const std::string& firmware = "uefi") const {
    return "name: " + name_ + "\ncloud: openstack\narch: x86_64\nfirmware: " + firmware + "\nrelease: 3.21.0\n"
           "local_image: disk.img\n" + extra;
  }

  // Keystone's answer to the test user's password login scoped to PROJECT
  // (a Keystone project reference: {"name", "domain"} or {"id"}).
  Result<HttpResponse> password_login(const json& project) {
    auto req = request_from_url(auth_url() + "/auth/tokens");
    if (!req.ok()) return req.error();
    req->method = "POST";
    req->headers = {{"Content-Type", "application/json"}};
    req->body = json{{"auth",
                      {{"identity",
                        {{"methods", {"password"}},
                         {"password",
                          {{"user", {{"name", "admin"}, {"domain", {{"name", "Default"}}}, {"password", password()}}}}}}},
                       {"scope", {{"project", project}}}}}}
                    .dump();
    return client_.send(*req);
  }
  // A token of the test user, straight from Keystone.
  const std::string& token() {
    if (!token_.empty()) return token_;
    auto r = password_login({{"name", "admin"}, {"domain", {{"name", "Default"}}}});
    EXPECT_TRUE(r.ok() && r->status == 201) << (r.ok() ? r->body : r.message());
    if (r.ok()) {
      token_ = r->header("X-Subject-Token");
      json doc = json::parse(r->body, nullptr, false);
      for (const json& svc : doc["token"]["catalog"])
        if (svc["type"] == "image")
          for (const json& e : svc["endpoints"])
            if (e["interface"] == "public") glance_[e["region_id"].get<std::string>()] = e["url"];
    }
    return token_;
  }
  std::string glance_url(const std::string& region) {
    token();
    return glance_[region];
  }
  Result<HttpResponse> glance(const std::string& method, const std::string& region, const std::string& path,
                              const std::string& body = "", const std::string& content_type = "") {
    auto req = request_from_url(glance_url(region) + path);
    if (!req.ok()) return req.error();
    req->method = method;
    req->headers = {{"X-Auth-Token", token()}};
    if (!content_type.empty()) req->headers.push_back({"Content-Type", content_type});
    req->body = body;
    return client_.send(*req);
  }
  // A Keystone API call with the test's token (limits, projects).
  Result<HttpResponse> keystone(const std::string& method, const std::string& path, const std::string& body = "") {
    auto req = request_from_url(auth_url() + path);
    if (!req.ok()) return req.error();
    req->method = method;
    req->headers = {{"X-Auth-Token", token()}, {"Content-Type", "application/json"}};
    req->body = body;
    return client_.send(*req);
  }
  // Sets PROJECT's (name and id) limit on RESOURCE in RegionQuota to VALUE
  // and returns the limit's id. A limit left by an earlier run of the test
  // (409) is found with a token of that project (Keystone lists a
  // project-scoped token only its own project's limits) and replaced.
  std::string set_quota_limit(const std::string& project_name, const std::string& project_id,
                              const std::string& resource, int value) {
    json limit = {{"limits",
                   {{{"service_id", env_["CLOUD_HELPER_OS_IMAGE_SERVICE"]}, {"project_id", project_id},
                     {"region_id", "RegionQuota"}, {"resource_name", resource}, {"resource_limit", value}}}}};
    auto made = keystone("POST", "/limits", limit.dump());
    EXPECT_TRUE(made.ok() && (made->status == 201 || made->status == 409)) << (made.ok() ? made->body : made.message());
    if (made.ok() && made->status == 201) return json::parse(made->body)["limits"][0]["id"];
    auto tok = password_login({{"id", project_id}});
    EXPECT_TRUE(tok.ok() && tok->status == 201);
    if (!tok.ok()) return "";
    auto list = request_from_url(auth_url() + "/limits?region_id=RegionQuota&resource_name=" + resource);
    list->headers = {{"X-Auth-Token", tok->header("X-Subject-Token")}};
    auto found = client_.send(*list);
    EXPECT_TRUE(found.ok() && found->status == 200);
    json limits = found.ok() ? json::parse(found->body, nullptr, false).value("limits", json::array()) : json::array();
    EXPECT_EQ(limits.size(), 1u) << (found.ok() ? found->body : "");
    if (limits.empty()) return "";
    // Deleted and made again: Keystone 22 ignores a PATCH to 0.
    auto gone = keystone("DELETE", "/limits/" + limits[0]["id"].get<std::string>());
    EXPECT_TRUE(gone.ok() && gone->status == 204);
    auto again = keystone("POST", "/limits", limit.dump());
    EXPECT_TRUE(again.ok() && again->status == 201) << (again.ok() ? again->body : again.message());
    return again.ok() && again->status == 201 ? json::parse(again->body)["limits"][0]["id"].get<std::string>() : "";
  }
  // The lines of a run's stderr that are not progress (info or debug) lines.
  static int error_lines(const std::string& err) {
    int n = 0;
    std::istringstream in(err);
    for (std::string line; std::getline(in, line);)
      n += line.rfind("cloud_helper: openstack: ", 0) != 0 && line.rfind("cloud_helper: http: ", 0) != 0;
    return n;
  }

  // Tags and member ids of image ID, sorted.
  std::vector<std::string> tags(const std::string& region, const std::string& id) {
    std::vector<std::string> out;
    for (const json& t : image(region, id).value("tags", json::array())) out.push_back(t);
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<std::string> members(const std::string& region, const std::string& id) {
    auto r = glance("GET", region, "/v2/images/" + id + "/members");
    EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.message());
    std::vector<std::string> out;
    if (r.ok())
      for (const json& m : json::parse(r->body, nullptr, false).value("members", json::array()))
        out.push_back(m["member_id"]);
    std::sort(out.begin(), out.end());
    return out;
  }

  // GET /v2/images/ID: the image, or null on 404.
  json image(const std::string& region, const std::string& id) {
    auto r = glance("GET", region, "/v2/images/" + id);
    EXPECT_TRUE(r.ok()) << r.message();
    if (!r.ok() || r->status == 404) return nullptr;
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body, nullptr, false);
  }
  // Every image of this test's name in REGION (any status but deleted).
  std::vector<json> images_named(const std::string& region) {
    auto r = glance("GET", region, "/v2/images?name=" + name_);
    EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.message());
    std::vector<json> out;
    if (r.ok())
      for (const json& i : json::parse(r->body, nullptr, false).value("images", json::array())) out.push_back(i);
    return out;
  }
  std::string image_bytes(const std::string& region, const std::string& id) {
    auto r = glance("GET", region, "/v2/images/" + id + "/file");
    EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? std::to_string(r->status) : r.message());
    return r.ok() ? r->body : "";
  }
  // The fault proxy in front of RegionOne's Glance (region RegionFault).
  json fault(const std::string& method, const std::string& path, const std::string& body = "") {
    auto r = loopback_http(method, env_["CLOUD_HELPER_OS_FAULT_URL"] + path, body);
    EXPECT_TRUE(r.ok()) << r.message();
    if (!r.ok()) return nullptr;
    return json::parse(r->body, nullptr, false);
  }

  HttpClient client_;
  std::map<std::string, std::string> env_, glance_;
  std::string name_, token_;
};

}  // namespace ch::test::openstack_steps
