// The debug lines of the HTTP client (clouds/http/http_client.h): one per
// request, one per response or failure. Built only when debug logging is on;
// pure functions so that their redaction is testable without a server.
//
//   http: PUT https://host/k?X-Amz-Signature=*** (8388608 B body) [Authorization: ***]
//   http: PUT https://host/k?X-Amz-Signature=*** -> 200 (12 ms, 8388608 B up, 0 B down,
//         request id 7F..) [ETag: "..."]
//   http: PUT https://host/k?X-Amz-Signature=*** -> failed (20001 ms, 65536 B up, 0 B down):
//         Operation timed out ...
// (each one line; wrapped here).
//
// Header values of secret headers (is_secret_header) and query values of
// secret parameters (clouds/http/http_url.h) print as "***". Bodies are
// never printed.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "clouds/http/http_client.h"
#include "clouds/http_request.h"

namespace ch {

// Headers whose values are credentials, case-insensitive: Authorization,
// Proxy-Authorization, X-Amz-Security-Token, x-amz-server-side-encryption-
// customer-key* and x-amz-copy-source-server-side-encryption-customer-key*,
// Cookie, Set-Cookie, X-Auth-Token, Ocp-Apim-Subscription-Key,
// x-ms-copy-source-authorization.
bool is_secret_header(std::string_view name);

struct HttpExchangeStats {
  std::chrono::milliseconds elapsed{0};
  uint64_t bytes_up = 0;    // request body bytes sent
  uint64_t bytes_down = 0;  // response body bytes received
};

std::string request_debug_line(const HttpRequest& request, uint64_t body_bytes);
std::string response_debug_line(const HttpRequest& request, const HttpResponse& response,
                                const HttpExchangeStats& stats);
// CAUSE: what went wrong, without the method and URL ("Empty reply from server").
std::string failure_debug_line(const HttpRequest& request, std::string_view cause,
                               const HttpExchangeStats& stats);

}  // namespace ch
