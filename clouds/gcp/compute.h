// Compute Engine's global images (https://cloud.google.com/compute/docs/reference/rest/v1/images)
// and global operations: insert, get, delete, deprecate and the image IAM
// policy. Writes answer with an Operation {name, status PENDING|RUNNING|
// DONE, error.errors[{code, message}]}, followed by GET
// .../global/operations/NAME until DONE. Creating calls carry a requestId
// (a UUID), which makes Compute answer a repeated call with the first
// call's operation instead of doing it twice.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "clouds/gcp/gcp_rest.h"

namespace ch {

// https://compute.googleapis.com/compute/v1/, or
// CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE (gcloud's; a URL ending in
// /compute/v1/, a "/" added when missing).
std::string compute_base_url(const GcpEnv& env);

// A UUID (version 5 style, from SHA-256) derived from TEXT: the same image
// and step always send the same requestId.
std::string request_id_for(std::string_view text);
// A requestId for one new call: TEXT, the time and a random number. Compute
// answers a requestId it has seen (a failed call's too) with that first
// operation, so a call made again on purpose needs a new one.
std::string new_request_id(std::string_view text);

class ComputeClient {
 public:
  ComputeClient(GcpRest& rest, std::string base, std::string project)
      : rest_(rest), base_(std::move(base)), project_(std::move(project)) {}

  std::string image_path(const std::string& name) const { return "projects/" + project_ + "/global/images/" + name; }
  const std::string& project() const { return project_; }

  Result<std::optional<nlohmann::json>> get_image(const std::string& name);
  // POST images; the operation.
  Result<nlohmann::json> insert_image(const nlohmann::json& body, const std::string& request_id);
  // DELETE; the operation, nullopt when the image is not there.
  Result<std::optional<nlohmann::json>> delete_image(const std::string& name, const std::string& request_id);
  Result<nlohmann::json> deprecate(const std::string& name, const nlohmann::json& status, const std::string& request_id);
  Result<nlohmann::json> get_iam_policy(const std::string& name);
  // setIamPolicy with the policy (its etag guards against lost updates).
  Result<nlohmann::json> set_iam_policy(const std::string& name, const nlohmann::json& policy);
  // nullopt when the operation is unknown (404).
  Result<std::optional<nlohmann::json>> get_operation(const std::string& name);
  // Polls OPERATION (a name) until DONE; its error as one line naming WHAT.
  Status wait(const std::string& operation, const std::string& what);

 private:
  std::string url(const std::string& path) const { return base_ + "projects/" + project_ + "/" + path; }
  GcpRest& rest_;
  std::string base_;
  std::string project_;
};

}  // namespace ch
