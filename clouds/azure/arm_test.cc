// ArmClient against a scripted loopback "Resource Manager": request shape,
// error lines, and each way ARM reports a long-running operation.
#include "clouds/azure/arm.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "tests/test_http_server.h"

namespace ch {
namespace {

using nlohmann::json;
using test::ReceivedRequest;
using test::ScriptedResponse;

constexpr const char* kImage =
    "/subscriptions/S/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d";
constexpr const char* kApi = "2023-07-03";

// Test-only: a fixed token, and how often it was asked for.
class FixedToken : public AzureTokenProvider {
 public:
  Result<std::string> token(std::string_view scope) override {
    scopes.emplace_back(scope);
    return std::string("arm-token-5c1d");
  }
  std::string source() const override { return "fixed token"; }
  std::vector<std::string> scopes;
};

class ArmTest : public ::testing::Test {
 protected:
  ArmTest() {
    const char* old = std::getenv("CLOUD_HELPER_RETRY_SCALE");
    if (old != nullptr) old_scale_ = old;
    had_scale_ = old != nullptr;
    setenv("CLOUD_HELPER_RETRY_SCALE", "0.01", 1);  // polls 20 ms apart, retries in ms
    cloud_.name = "AzureCloud";
    cloud_.authority_host = "https://login.microsoftonline.com";
    cloud_.resource_manager = server_.url("");
    cloud_.arm_scope = "https://management.azure.com/.default";
    cloud_.storage_suffix = "core.windows.net";
    cloud_.storage_scope = "https://storage.azure.com/.default";
    HttpClient::Config config;
    config.connect_timeout_seconds = 2;
    config.stall_seconds = 5;
    http_ = std::make_unique<HttpClient>(config);
    arm_ = std::make_unique<ArmClient>(*http_, tokens_, cloud_);
  }
  ~ArmTest() override {
    if (had_scale_) setenv("CLOUD_HELPER_RETRY_SCALE", old_scale_.c_str(), 1);
    else unsetenv("CLOUD_HELPER_RETRY_SCALE");
  }

  static std::string target(const std::string& path) { return path + "?api-version=" + kApi; }
  std::vector<ReceivedRequest> requests() const { return server_.requests(); }

  test::HttpTestServer server_;
  AzureCloud cloud_;
  FixedToken tokens_;
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<ArmClient> arm_;
  std::string old_scale_;
  bool had_scale_ = false;
};

std::string resource(const std::string& state) {
  return json{{"name", "d"}, {"properties", {{"provisioningState", state}}}}.dump();
}

TEST_F(ArmTest, PutFollowsAzureAsyncOperationThenReadsBack) {
  const std::string op = server_.url("/subscriptions/S/providers/Microsoft.Compute/locations/x/"
                                     "operations/op1?api-version=2023-07-03&monitor=true");
  server_.enqueue({.status = 201,
                   .headers = {{"Azure-AsyncOperation", op}, {"Retry-After", "1"}},
                   .body = resource("Creating")});
  server_.enqueue({.status = 200, .body = R"({"status":"InProgress"})"});
  server_.enqueue({.status = 200, .body = R"({"status":"InProgress"})"});
  server_.enqueue({.status = 200, .body = R"({"status":"Succeeded"})"});
  server_.enqueue({.status = 200, .body = resource("Succeeded")});
  std::vector<std::string> polls;
  LroOptions lro;
  lro.on_poll = [&](const std::string& s) { polls.push_back(s); };
  Result<json> r = arm_->put(kImage, kApi, json{{"location", "westeurope"}}, lro);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ((*r)["properties"]["provisioningState"], "Succeeded");
  EXPECT_EQ(polls, (std::vector<std::string>{"InProgress", "InProgress", "Succeeded"}));

  auto reqs = requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].target, target(kImage));
  EXPECT_EQ(reqs[0].header("Authorization"), "Bearer arm-token-5c1d");
  EXPECT_EQ(reqs[0].header("Accept"), "application/json");
  EXPECT_EQ(reqs[0].header("Content-Type"), "application/json");
  EXPECT_EQ(json::parse(reqs[0].body), (json{{"location", "westeurope"}}));
  EXPECT_EQ(reqs[0].header("x-ms-client-request-id").size(), 36u);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(reqs[i].method, "GET");
    // The operation URL's own query is kept as ARM gave it.
    EXPECT_EQ(reqs[i].target,
              "/subscriptions/S/providers/Microsoft.Compute/locations/x/operations/op1"
              "?api-version=2023-07-03&monitor=true");
    EXPECT_EQ(reqs[i].header("Authorization"), "Bearer arm-token-5c1d");
    EXPECT_TRUE(reqs[i].header("Content-Type").empty());
  }
  EXPECT_EQ(reqs[4].method, "GET");
  EXPECT_EQ(reqs[4].target, target(kImage));
  for (const auto& s : tokens_.scopes) EXPECT_EQ(s, "https://management.azure.com/.default");
}

TEST_F(ArmTest, FailedOperationIsAnErrorWithItsCodeAndMessage) {
  server_.enqueue({.status = 201, .headers = {{"Azure-AsyncOperation", server_.url("/op/2")}}});
  server_.enqueue({.status = 200,
                   .headers = {{"x-ms-request-id", "rid-77"}},
                   .body = R"({"status":"Failed","error":{"code":"InvalidParameter",)"
                           R"("message":"The source blob is not a VHD."}})"});
  Result<json> r = arm_->put(kImage, kApi, json::object());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "InvalidParameter");
  EXPECT_EQ(r.message(), std::string("PUT ") + kImage +
                             ": operation Failed: InvalidParameter: The source blob is not a VHD."
                             " (request id rid-77)");
  EXPECT_EQ(requests().size(), 2u);  // no read-back of a failed resource
}

TEST_F(ArmTest, PutFollowsLocationUntilNot202) {
  server_.enqueue({.status = 202, .headers = {{"Location", server_.url("/loc/3?api-version=2023-07-03")}}});
  server_.enqueue({.status = 202, .headers = {{"Retry-After", "0"}}});
  server_.enqueue({.status = 200, .body = "{}"});
  server_.enqueue({.status = 200, .body = resource("Succeeded")});
  Result<json> r = arm_->put(kImage, kApi, json::object());
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ((*r)["name"], "d");
  auto reqs = requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[1].target, "/loc/3?api-version=2023-07-03");
  EXPECT_EQ(reqs[2].target, "/loc/3?api-version=2023-07-03");
  EXPECT_EQ(reqs[3].target, target(kImage));
}

TEST_F(ArmTest, PostResultComesFromLocation) {
  const std::string share = std::string("/subscriptions/S/resourceGroups/rg/providers/"
                                        "Microsoft.Compute/galleries/g/share");
  server_.enqueue({.status = 202, .headers = {{"Location", server_.url("/loc/4")}}});
  server_.enqueue({.status = 200, .body = R"({"shared":true})"});
  Result<json> r = arm_->post(share, kApi, json{{"operationType", "Add"}});
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(*r, (json{{"shared", true}}));
  auto reqs = requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].target, "/loc/4?api-version=2023-07-03");  // added when the URL has none
}

TEST_F(ArmTest, PutPollsProvisioningStateWithoutOperationHeaders) {
  server_.enqueue({.status = 200, .body = resource("Creating")});
  server_.enqueue({.status = 200, .body = resource("Updating")});
  server_.enqueue({.status = 200, .body = resource("Succeeded")});
  Result<json> r = arm_->put(kImage, kApi, json::object());
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ((*r)["properties"]["provisioningState"], "Succeeded");
  auto reqs = requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[1].method, "GET");
  EXPECT_EQ(reqs[1].target, target(kImage));
}

TEST_F(ArmTest, ProvisioningStateFailedIsAnError) {
  server_.enqueue({.status = 201, .body = resource("Creating")});
  server_.enqueue({.status = 200, .body = resource("Failed")});
  Result<json> r = arm_->put(kImage, kApi, json::object());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), std::string("PUT ") + kImage + ": provisioningState Failed");
}

TEST_F(ArmTest, SynchronousPutReturnsTheBody) {
  server_.enqueue({.status = 200, .body = resource("Succeeded")});
  Result<json> r = arm_->put(kImage, kApi, json::object());
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(requests().size(), 1u);
}

TEST_F(ArmTest, ThrottledThenSucceeds) {
  server_.enqueue({.status = 429,
                   .headers = {{"Retry-After", "1"}},
                   .body = R"({"error":{"code":"TooManyRequests","message":"slow down"}})"});
  server_.enqueue({.status = 200, .body = resource("Succeeded")});
  Result<std::optional<json>> r = arm_->get(kImage, kApi);
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_TRUE(r->has_value());
  auto reqs = requests();
  ASSERT_EQ(reqs.size(), 2u);
  // One logical request: the same client request id on every attempt.
  EXPECT_EQ(reqs[0].header("x-ms-client-request-id"), reqs[1].header("x-ms-client-request-id"));
}

TEST_F(ArmTest, ErrorLineNamesCallStatusCodeMessageAndRequestId) {
  server_.enqueue({.status = 409,
                   .headers = {{"x-ms-request-id", "8f1e-aa"}},
                   .body = "\xEF\xBB\xBF" R"({"error":{"code":"OperationNotAllowed",)"
                           R"("message":"Gallery image version is being replicated."}})"});
  Result<json> r = arm_->put(kImage, kApi, json::object());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), std::string("PUT ") + kImage +
                             ": HTTP 409 Conflict: OperationNotAllowed: Gallery image version is"
                             " being replicated. (request id 8f1e-aa)");
  EXPECT_EQ(r.error().code, "OperationNotAllowed");
  EXPECT_EQ(r.error().http_status, 409);
  EXPECT_EQ(r.message().find("arm-token"), std::string::npos);
}

TEST_F(ArmTest, GetMissingIsNullopt) {
  server_.enqueue({.status = 404,
                   .body = R"({"error":{"code":"ResourceNotFound","message":"not found"}})"});
  Result<std::optional<json>> r = arm_->get(kImage, kApi);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FALSE(r->has_value());
  // A wrong subscription is not "missing".
  server_.enqueue({.status = 404,
                   .body = R"({"error":{"code":"SubscriptionNotFound","message":"no S"}})"});
  r = arm_->get(kImage, kApi);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "SubscriptionNotFound");
}

TEST_F(ArmTest, DeleteFollowsLocationTo204) {
  server_.enqueue({.status = 202, .headers = {{"Location", server_.url("/loc/del")}}});
  server_.enqueue({.status = 202});
  server_.enqueue({.status = 204});
  Status s = arm_->del(kImage, kApi);
  ASSERT_TRUE(s.ok()) << s.message();
  auto reqs = requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].method, "DELETE");
  EXPECT_TRUE(reqs[0].body.empty());
  EXPECT_TRUE(reqs[0].header("Content-Type").empty());
}

TEST_F(ArmTest, DeleteOfMissingResourceSucceeds) {
  server_.enqueue({.status = 404, .body = R"({"error":{"code":"ResourceGroupNotFound"}})"});
  EXPECT_TRUE(arm_->del(kImage, kApi).ok());
  // ...and so does a 404 while polling.
  server_.enqueue({.status = 202, .headers = {{"Azure-AsyncOperation", server_.url("/op/del")}}});
  server_.enqueue({.status = 404});
  EXPECT_TRUE(arm_->del(kImage, kApi).ok());
  EXPECT_EQ(requests().size(), 3u);
}

TEST_F(ArmTest, ListFollowsNextLink) {
  const std::string images = "/subscriptions/S/resourceGroups/rg/providers/Microsoft.Compute/"
                             "galleries/g/images";
  server_.enqueue({.status = 200,
                   .body = json{{"value", {{{"name", "a"}}, {{"name", "b"}}}},
                                {"nextLink", server_.url(images + "?api-version=2023-07-03&$skiptoken=X1")}}
                               .dump()});
  server_.enqueue({.status = 200, .body = json{{"value", {{{"name", "c"}}}}}.dump()});
  Result<std::vector<json>> r = arm_->list(images, kApi);
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[2]["name"], "c");
  auto reqs = requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].target, target(images));
  EXPECT_EQ(reqs[1].target, images + "?api-version=2023-07-03&%24skiptoken=X1");
}

TEST_F(ArmTest, RefusesToSendTheTokenToAnotherHost) {
  server_.enqueue({.status = 202,
                   .headers = {{"Azure-AsyncOperation", "https://evil.example/op?api-version=1"}}});
  Result<json> r = arm_->put(kImage, kApi, json::object());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("refusing to send the Resource Manager token to https://evil.example"),
            std::string::npos)
      << r.message();
  EXPECT_EQ(requests().size(), 1u);

  // Same host, another port is another origin too.
  server_.enqueue({.status = 200,
                   .body = json{{"value", json::array()}, {"nextLink", "http://127.0.0.1:1/next"}}.dump()});
  Result<std::vector<json>> l = arm_->list("/subscriptions/S/resourceGroups", kApi);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.message().find("refusing"), std::string::npos) << l.message();
  EXPECT_EQ(requests().size(), 2u);
}

TEST_F(ArmTest, OperationTimesOut) {
  server_.set_handler([this](const ReceivedRequest& r) -> ScriptedResponse {
    if (r.method == "PUT")
      return {.status = 201, .headers = {{"Azure-AsyncOperation", server_.url("/op/slow")}}};
    return {.status = 200, .body = R"({"status":"InProgress"})"};
  });
  LroOptions lro;
  lro.timeout = std::chrono::seconds(1);
  auto start = std::chrono::steady_clock::now();
  Result<json> r = arm_->put(kImage, kApi, json::object(), lro);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), std::string("PUT ") + kImage +
                             ": timed out after 1 s waiting for the operation (last status: InProgress)");
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST_F(ArmTest, PollRetriesTransientFailures) {
  server_.enqueue({.status = 201, .headers = {{"Azure-AsyncOperation", server_.url("/op/5")}}});
  server_.enqueue({.status = 503});
  server_.enqueue({.fault = ScriptedResponse::Fault::kCloseWithoutResponse});
  server_.enqueue({.status = 200, .body = R"({"status":"Succeeded"})"});
  server_.enqueue({.status = 200, .body = resource("Succeeded")});
  Result<json> r = arm_->put(kImage, kApi, json::object());
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(requests().size(), 5u);
}

TEST_F(ArmTest, WaitProvisioned) {
  server_.enqueue({.status = 200, .body = resource("Creating")});
  server_.enqueue({.status = 200, .body = resource("Failed")});
  Result<std::optional<json>> r = arm_->wait_provisioned(kImage, kApi);
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((**r)["properties"]["provisioningState"], "Failed");  // for the caller to judge

  server_.enqueue({.status = 404, .body = R"({"error":{"code":"ResourceNotFound"}})"});
  r = arm_->wait_provisioned(kImage, kApi);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FALSE(r->has_value());
}

}  // namespace
}  // namespace ch
