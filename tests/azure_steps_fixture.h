// What the end-to-end tests of `cloud_helper upload/import/publish/rollback`
// for cloud: azure share (tests/azure_steps_*_test.cc): the built binary run
// in a temporary directory with a hermetic environment against Azurite
// (blobs, SharedKey checked) and the fake Resource Manager and Entra ID
// (tests/azure/fake_arm.py); results read back independently — the blob
// with the Azure SDK for JavaScript (tests/azure/blob_check.js), the
// gallery through the fake's REST API.
//
// Every test has its own resource group, gallery, container and image
// name, so tests running in parallel never see each other's state. They
// share one subscription and the storage account devstoreaccount1 (Azurite's
// only account; storage account names are global in Azure, and so in the
// fake), made once in resource group cloud-helper-storage.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "clouds/http/http_client.h"
#include "clouds/operations.h"
#include "metadata/image_metadata.h"
#include "tests/test_aws_env.h"
#include "tests/step_fixture.h"
#include "tests/test_util.h"

extern char** environ;

namespace ch::test::azure_steps {

using nlohmann::json;

inline constexpr char kAzuriteKey[] =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
// fake_arm.py's test identity.
inline constexpr char kTenant[] = "00000000-0000-0000-0000-0000000000aa";
inline constexpr char kClientId[] = "00000000-0000-0000-0000-0000000000cc";
inline constexpr char kClientSecret[] = "fake-arm-client-secret";

class AzureSteps : public ::testing::Test, protected StepFixture {
 protected:
  void SetUp() override {
    azurite_ = env_or("CLOUD_HELPER_AZURITE_URL");
    arm_ = env_or("CLOUD_HELPER_AZURE_ARM_ENDPOINT");
    node_dir_ = env_or("CLOUD_HELPER_AZURE_NODE_DIR");
    if (azurite_.empty() || arm_.empty())
      GTEST_SKIP() << "CLOUD_HELPER_AZURITE_URL / CLOUD_HELPER_AZURE_ARM_ENDPOINT unset (run through ctest)";
    blob_endpoint_ = azurite_;
    name_ = unique_name("img");
    container_ = unique_name("c");
    std::string h = digest_hex(name_, "sha256");
    subscription_ = "11111111-2222-3333-4444-555555555555";
    // Idempotent PUTs: parallel tests may race here, each gets 200 or 201.
    std::string storage_rg = "/subscriptions/" + subscription_ + "/resourceGroups/cloud-helper-storage";
    arm_send("PUT", storage_rg, "2021-04-01", R"({"location":"westeurope"})");
    arm_send("PUT", storage_rg + "/providers/Microsoft.Storage/storageAccounts/devstoreaccount1", "2023-01-01",
             R"({"location":"westeurope","kind":"StorageV2","sku":{"name":"Standard_LRS"}})");
    resource_group_ = "rg-" + name_;
    gallery_ = "g_" + h.substr(0, 12);
  }

  std::string connection_string() const {
    return "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + std::string(kAzuriteKey) +
           ";BlobEndpoint=" + blob_endpoint_ + ";";
  }

  // Nothing inherited but PATH: no developer credentials leak in.
  std::string env_text(const std::string& extra = "") const {
    return hermetic_env("AZURE_STORAGE_CONNECTION_STRING=" + shell_quote(connection_string()) +
                        " AZURE_TENANT_ID=" + kTenant + " AZURE_CLIENT_ID=" + kClientId +
                        " AZURE_CLIENT_SECRET=" + kClientSecret + " AZURE_AUTHORITY_HOST=" + shell_quote(arm_) +
                        " AZURE_RESOURCE_MANAGER_ENDPOINT=" + shell_quote(arm_) +
                        " AZURE_SUBSCRIPTION_ID=" + subscription_ + " CLOUD_HELPER_RETRY_SCALE=0.01 " + extra);
  }
  std::string command(const std::string& args, const std::string& extra_env = "") const {
    return command_with(env_text(extra_env), args);
  }
  StepRun run(const std::string& args, const std::string& extra_env = "") const {
    return run_with(env_text(extra_env), args);
  }

  // Starts `cloud_helper ARGS`, polls YAML every 5 ms until READY(meta)
  // holds, then SIGKILLs it. False when it ended first (exit code in *code).
  template <typename Ready>
  bool run_and_kill(const std::string& args, const std::string& yaml, Ready ready, int* code) {
    return kill_when(command(args), yaml, ready, code);
  }


  // A sparse raw disk: data runs scattered over SIZE bytes, one run of
  // written zeros (must not be sent), holes elsewhere.
  void make_disk(const std::string& name, uint64_t size, uint64_t seed = 1, uint64_t extra_data = 0) {
    const uint64_t MiB = 1 << 20;
    std::vector<DataRun> runs = {
        {0, MiB + 4096},
        {size / 4 + 12345, 700 * 1024},
        {size / 2, 5 * MiB, /*zeros=*/true},
        {size / 2 + 6 * MiB - 300 * 1024, 600 * 1024},
        {size - MiB - 777, MiB},
    };
    if (extra_data) runs.push_back({size / 8, extra_data});
    Status s = make_sparse_file(dir_.file(name), size, runs, seed);
    ASSERT_TRUE(s.ok()) << s.message();
  }

  // The inputs of an azure image; EXTRA is appended (more top-level keys),
  // AZURE_EXTRA inside the azure mapping (indented two spaces).
  std::string yaml_inputs(const std::string& extra = "", const std::string& azure_extra = "") const {
    return "name: " + name_ + "\ncloud: azure\narch: x86_64\nfirmware: uefi\nrelease: 3.21.0-r1\n"
           "local_image: disk.img\nimage_format: vhd\n"
           "storage_url: az://devstoreaccount1/" + container_ + "/\n" + extra +
           "azure:\n  resource_group: " + resource_group_ + "\n  location: westeurope\n  gallery: " + gallery_ +
           "\n  image_definition: alpine-3.21\n  publisher: alpinelinux\n  offer: alpine\n  sku: '3.21'\n"
           "  storage_resource_group: cloud-helper-storage\n"
           "  create: [resource_group, container, gallery]\n" + azure_extra;
  }

  // A bearer token of the test identity from the fake Entra ID.
  std::string token() {
    HttpClient client;
    auto tok = request_from_url(arm_ + "/" + kTenant + "/oauth2/v2.0/token");
    EXPECT_TRUE(tok.ok());
    tok->method = "POST";
    tok->headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    tok->body = std::string("grant_type=client_credentials&client_id=") + kClientId + "&client_secret=" +
                kClientSecret + "&scope=https%3A%2F%2Fmanagement.azure.com%2F.default";
    auto t = client.send(*tok);
    EXPECT_TRUE(t.ok() && t->status == 200) << (t.ok() ? t->body : t.message());
    if (!t.ok()) return nullptr;
    return json::parse(t->body, nullptr, false).value("access_token", "");
  }
  Result<HttpResponse> arm_send(const std::string& method, const std::string& path, const std::string& api,
                                const std::string& body = "") {
    HttpClient client;
    auto req = request_from_url(arm_ + path + (path.find('?') == std::string::npos ? "?" : "&") + "api-version=" + api);
    if (!req.ok()) return req.error();
    req->method = method;
    req->headers = {{"Authorization", "Bearer " + token()}};
    if (!body.empty()) req->headers.push_back({"Content-Type", "application/json"});
    req->body = body;
    return client.send(*req);
  }
  // An ARM GET through the fake with a token of the test identity: the
  // body, or null on 404.
  json arm_get(const std::string& path, const std::string& api = "2023-07-03") {
    auto r = arm_send("GET", path, api);
    EXPECT_TRUE(r.ok()) << r.message();
    if (!r.ok() || r->status == 404) return nullptr;
    EXPECT_EQ(r->status, 200) << path << ": " << r->body;
    return json::parse(r->body, nullptr, false);
  }
  // Every item of an ARM collection (following nextLink).
  std::vector<json> arm_list(const std::string& path) {
    std::vector<json> out;
    json page = arm_get(path);
    while (page.is_object()) {
      for (const json& v : page.value("value", json::array())) out.push_back(v);
      std::string next = page.value("nextLink", "");
      if (next.empty()) break;
      size_t at = next.find(arm_);
      page = arm_get(at == 0 ? next.substr(arm_.size()) : next);
    }
    return out;
  }
  std::string rg_path() const { return "/subscriptions/" + subscription_ + "/resourceGroups/" + resource_group_; }
  std::string gallery_path() const { return rg_path() + "/providers/Microsoft.Compute/galleries/" + gallery_; }

  // Test controls of the fake (no auth).
  json fake(const std::string& method, const std::string& path, const std::string& body = "") {
    auto r = loopback_http(method, arm_ + path, body);
    EXPECT_TRUE(r.ok()) << r.message();
    if (!r.ok()) return nullptr;
    EXPECT_LT(r->status, 300) << path << ": " << r->body;
    return json::parse(r->body, nullptr, false);
  }

  // The blob read back with @azure/storage-blob: {equal, size, contentMD5, pageRanges}.
  json blob_compare(const std::string& url, const std::string& local) {
    std::string out = dir_.file(".node");
    auto r = run_command("cd " + shell_quote(node_dir_) + " && AZURE_STORAGE_CONNECTION_STRING=" +
                         shell_quote("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" +
                                     std::string(kAzuriteKey) + ";BlobEndpoint=" + azurite_ + ";") +
                         " node blob_check.js compare " + shell_quote(url) + " " + shell_quote(local) + " >" +
                         shell_quote(out) + " 2>&1");
    std::string text = slurp(out);
    EXPECT_EQ(r.exit_code, 0) << text;
    json j = json::parse(text, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << text;
    return j;
  }

  std::string azurite_, arm_, node_dir_, blob_endpoint_;
  std::string name_, container_, subscription_, resource_group_, gallery_;
};

}  // namespace ch::test::azure_steps
