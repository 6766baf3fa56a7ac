// Azure Resource Manager REST client: bearer-token requests with
// api-version, long-running operations followed to their end, errors as one
// line. Every call goes through the shared retry policy (429 with
// Retry-After, 5xx, dropped connections).
//
// Long-running operations (https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations):
//  - PUT/PATCH/DELETE/POST answered 201 or 202 (or 200 whose body has
//    properties.provisioningState not terminal) are followed: the
//    Azure-AsyncOperation URL when given (GET until "status" is Succeeded,
//    Failed or Canceled), else the Location URL (GET until not 202), else
//    the resource itself (GET until provisioningState is terminal). Each
//    poll waits Retry-After seconds (default 2 × CLOUD_HELPER_RETRY_SCALE,
//    at least 10 ms; capped at 60 s), up to LroOptions::timeout.
//  - A Failed/Canceled operation is an Error with the operation's
//    error.code and error.message.
//  - After a PUT/PATCH completes, the resource is read back with GET and
//    that body returned.
// Error format: "PUT /subscriptions/S/resourceGroups/rg/providers/
// Microsoft.Compute/galleries/g: HTTP 409 Conflict: <message>
// (request id R)"; Error::code = the ARM error code, http_status set.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "clouds/azure/azure_env.h"
#include "clouds/azure/entra.h"
#include "clouds/http/http_client.h"
#include "clouds/http/retry.h"

namespace ch {

struct LroOptions {
  std::chrono::seconds timeout{3600};
  // Called with each poll's status ("InProgress", provisioningState ...),
  // for progress lines.
  std::function<void(const std::string& status)> on_poll;
};

class ArmClient {
 public:
  // CLIENT and TOKENS must outlive this. CLOUD gives the endpoint and scope.
  ArmClient(HttpClient& client, AzureTokenProvider& tokens, AzureCloud cloud,
            RetryPolicy policy = RetryPolicy::from_env());

  // RESOURCE_ID is a path ("/subscriptions/S/resourceGroups/rg"); API is the
  // api-version. GET; nullopt on 404 (ResourceNotFound, ResourceGroupNotFound,
  // NotFound, ...).
  Result<std::optional<nlohmann::json>> get(std::string_view resource_id, std::string_view api);
  // GET of a collection, following nextLink; the "value" items.
  Result<std::vector<nlohmann::json>> list(std::string_view collection_id, std::string_view api);
  // PUT BODY and wait for the operation; the resource as read back.
  Result<nlohmann::json> put(std::string_view resource_id, std::string_view api,
                             const nlohmann::json& body, const LroOptions& lro = {});
  // PATCH BODY and wait; the resource as read back.
  Result<nlohmann::json> patch(std::string_view resource_id, std::string_view api,
                               const nlohmann::json& body, const LroOptions& lro = {});
  // POST an action ("/…/galleries/g/share") and wait; the final body
  // (possibly empty object).
  Result<nlohmann::json> post(std::string_view action_path, std::string_view api,
                              const nlohmann::json& body, const LroOptions& lro = {});
  // DELETE and wait; a missing resource (404, or 204 straight away) is success.
  Status del(std::string_view resource_id, std::string_view api, const LroOptions& lro = {});
  // Waits until the resource's properties.provisioningState is terminal
  // (a re-run finding a resource a killed run left "Creating"); returns it,
  // nullopt when it is gone. Failed is returned (not an error): the caller decides.
  Result<std::optional<nlohmann::json>> wait_provisioned(std::string_view resource_id,
                                                         std::string_view api,
                                                         const LroOptions& lro = {});

  const AzureCloud& cloud() const { return cloud_; }

 private:
  HttpClient& client_;
  AzureTokenProvider& tokens_;
  AzureCloud cloud_;
  RetryPolicy policy_;
};

// API versions used (documented REST API versions).
inline constexpr std::string_view kArmApiResources = "2021-04-01";       // resource groups
inline constexpr std::string_view kArmApiSubscriptions = "2022-12-01";   // locations
inline constexpr std::string_view kArmApiStorage = "2023-01-01";         // storage accounts
inline constexpr std::string_view kArmApiCompute = "2023-09-01";         // managed images
inline constexpr std::string_view kArmApiGallery = "2023-07-03";         // galleries, images, versions, share

}  // namespace ch
