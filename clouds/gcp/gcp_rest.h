// Google REST calls (Compute, Cloud Storage JSON API, IAM, OAuth): a bearer
// token on every request, the shared retry policy, and errors as one line:
// "POST https://compute.googleapis.com/compute/v1/projects/p/global/images:
// HTTP 409 alreadyExists: The resource 'projects/p/global/images/x' already
// exists (request id R)". Google's JSON error document is
// {"error": {"code", "message", "status", "errors": [{"reason", "message"}]}};
// OAuth servers answer {"error": "invalid_grant", "error_description"}.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "clouds/gcp/google_auth.h"
#include "clouds/http/http_client.h"
#include "clouds/http/retry.h"

namespace ch {

// "WHAT: HTTP 409 alreadyExists: message (request id R)"; Error::code is the
// reason (errors[0].reason, else status, else the OAuth error), http_status set.
Error google_error(std::string_view what, const HttpResponse& r);

class GcpRest {
 public:
  // TOKENS may be null (a dry run never gets here; tests of public data).
  GcpRest(HttpClient& client, GoogleTokenProvider* tokens, RetryPolicy policy = RetryPolicy::from_env());

  // Sends METHOD URL with BODY (Content-Type when BODY is non-empty) and
  // the bearer token, retried by the shared policy; any status comes back.
  Result<HttpResponse> send(std::string_view method, std::string_view url, std::string body = "",
                            std::vector<HttpHeader> headers = {}, const SendOptions& options = {});
  // A JSON call: the parsed 2xx body (an empty body is {}); nullopt on 404
  // when NOT_FOUND_OK; any other status is google_error, named WHAT (by
  // default "METHOD URL").
  Result<std::optional<nlohmann::json>> call(std::string_view method, std::string_view url,
                                             const nlohmann::json* body = nullptr, bool not_found_ok = false,
                                             std::string_view what = {});

  HttpClient& http() { return client_; }
  const RetryPolicy& policy() const { return policy_; }
  Result<std::vector<HttpHeader>> auth_headers();

 private:
  HttpClient& client_;
  GoogleTokenProvider* tokens_;
  RetryPolicy policy_;
};

}  // namespace ch
