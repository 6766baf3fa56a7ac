// OpenStack Identity (Keystone) v3: a token from a password or an
// application credential, and the service catalog it carries.
// https://docs.openstack.org/api-ref/identity/v3/ — POST /v3/auth/tokens
// answers 201 with the token in the X-Subject-Token header and
// {"token": {"expires_at", "project": {"id"}, "user": {"id"}, "catalog": [
//   {"type": "image", "endpoints": [{"interface", "region_id", "url"}]}]}}.
//
// The token, password and secret are add_secret()ed before any request, so
// no log line at any level shows them. Errors:
//   "Keystone POST https://k:5000/v3/auth/tokens (user alice, project demo):
//    HTTP 401 Unauthorized: The request you have made requires
//    authentication. (request id req-...)"
// and the OpenStack error helper below formats Glance's the same way.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "clouds/http/http_client.h"
#include "clouds/http/retry.h"
#include "clouds/openstack/os_auth_config.h"

namespace ch {

struct KeystoneToken {
  std::string token;  // X-Subject-Token: goes in X-Auth-Token
  std::string project_id, user_id;
  std::string expires_at;
  nlohmann::json catalog = nlohmann::json::array();
};

// The token request's JSON body for C (scoped to the project for a
// password; an application credential carries its own scope).
nlohmann::json keystone_auth_body(const OpenStackAuthConfig& c);

// "https://k:5000" or "https://k:5000/v3/" → "https://k:5000/v3/auth/tokens".
std::string keystone_tokens_url(std::string_view auth_url);

Result<KeystoneToken> keystone_authenticate(HttpClient& http, const RetryPolicy& policy,
                                            const OpenStackAuthConfig& c);

// The URL of service TYPE ("image") at INTERFACE in REGION, from a v3
// catalog; "" when absent.
std::string catalog_endpoint(const nlohmann::json& catalog, std::string_view type, std::string_view region,
                             std::string_view interface);
// Regions that have an endpoint of TYPE at INTERFACE, in catalog order.
std::vector<std::string> catalog_regions(const nlohmann::json& catalog, std::string_view type,
                                         std::string_view interface);

// "WHAT: HTTP 409 Conflict: message (request id R)" from an OpenStack error
// body: Keystone's {"error": {"code", "title", "message"}}, webob's JSON
// {"code": "409 Conflict", "title", "message"} (Glance), or text.
Error openstack_error(const std::string& what, const HttpResponse& response);

// Glance wraps a quota refusal (its LimitExceeded) in boilerplate: "The
// request returned a 413 Request Entity Too Large. This generally means
// that rate limiting or a quota threshold was breached. The response body:
// Project P is over a limit for [...]" → "Project P is over a limit for
// [...]". Other text is returned as it is.
std::string glance_limit_text(std::string text);

}  // namespace ch
