#include "clouds/gcp/compute.h"

#include <random>

#include "clouds/poll.h"
#include "clouds/signing/digest.h"
#include "clouds/signing/sigv4.h"
#include "metadata/image_metadata.h"

namespace ch {

namespace {

using json = nlohmann::json;

Result<json> required(Result<std::optional<json>> r, const std::string& what) {
  if (!r.ok()) return r.error();
  if (!*r) return Error{what + ": not found"};
  return std::move(**r);
}

}  // namespace

std::string compute_base_url(const GcpEnv& env) {
  std::string url = env.get("CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE");
  if (url.empty()) return "https://compute.googleapis.com/compute/v1/";
  if (url.back() != '/') url += '/';
  return url;
}

std::string request_id_for(std::string_view text) {
  std::string h = sha256_hex(text);
  // 8-4-4-4-12, version 5 and the RFC 4122 variant bits set.
  h[12] = '5';
  h[16] = "89ab"[std::stoi(h.substr(16, 1), nullptr, 16) & 3];
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20, 12);
}

std::string new_request_id(std::string_view text) {
  return request_id_for(std::string(text) + " " + utc_now_iso8601() + " " + std::to_string(std::random_device{}()));
}

Result<std::optional<json>> ComputeClient::get_image(const std::string& name) {
  return rest_.call("GET", url("global/images/" + name), nullptr, true);
}

Result<json> ComputeClient::insert_image(const json& body, const std::string& request_id) {
  // Named like the step's other lines: "images.insert projects/P/global/images/N: HTTP 403
  // quotaExceeded: Quota 'IMAGES' exceeded.  Limit: 5.0 globally."
  std::string what = "images.insert " + image_path(body.value("name", ""));
  return required(rest_.call("POST", url("global/images?requestId=" + request_id), &body, false, what), what);
}

Result<std::optional<json>> ComputeClient::delete_image(const std::string& name, const std::string& request_id) {
  return rest_.call("DELETE", url("global/images/" + name + "?requestId=" + request_id), nullptr, true);
}

Result<json> ComputeClient::deprecate(const std::string& name, const json& status, const std::string& request_id) {
  return required(rest_.call("POST", url("global/images/" + name + "/deprecate?requestId=" + request_id), &status),
                  "images.deprecate " + name);
}

Result<json> ComputeClient::get_iam_policy(const std::string& name) {
  // Version 3 so that conditional bindings, if any, come back whole.
  return required(rest_.call("GET", url("global/images/" + name + "/getIamPolicy?optionsRequestedPolicyVersion=3")),
                  "images.getIamPolicy " + name);
}

Result<json> ComputeClient::set_iam_policy(const std::string& name, const json& policy) {
  json body = {{"policy", policy}};
  return required(rest_.call("POST", url("global/images/" + name + "/setIamPolicy"), &body),
                  "images.setIamPolicy " + name);
}

Result<std::optional<json>> ComputeClient::get_operation(const std::string& name) {
  return rest_.call("GET", url("global/operations/" + name), nullptr, true);
}

Status ComputeClient::wait(const std::string& operation, const std::string& what) {
  PollOptions options;
  options.initial = std::chrono::milliseconds(2000);
  options.max = std::chrono::milliseconds(10000);
  options.factor = 1.5;
  options.timeout = std::chrono::seconds(3600);
  return poll_until("operation " + operation + " (" + what + ")", options.scaled(), [&](std::string* state) -> Result<bool> {
    CH_ASSIGN(op, get_operation(operation));
    if (!op) return Error{what + ": operation " + operation + " is unknown to Compute"};
    *state = op->value("status", "?");
    if (op->contains("progress")) *state += " " + std::to_string(op->value("progress", 0)) + "%";
    if (op->value("status", "") != "DONE") return false;
    const json* errors = nullptr;
    if (op->contains("error") && (*op)["error"].contains("errors")) errors = &(*op)["error"]["errors"];
    if (errors && errors->is_array() && !errors->empty()) {
      const json& e = (*errors)[0];
      std::string line = what + ": operation " + operation + " failed";
      if (op->contains("httpErrorStatusCode")) line += " (HTTP " + std::to_string(op->value("httpErrorStatusCode", 0)) + ")";
      line += ": " + e.value("code", "") + ": " + e.value("message", "");
      return Error{line, e.value("code", ""), op->value("httpErrorStatusCode", 0L)};
    }
    return true;
  });
}

}  // namespace ch
