#include "clouds/http/http_log.h"

#include <vector>

#include "clouds/http/ascii_case.h"
#include "clouds/http/http_url.h"

namespace ch {

namespace {

void append_headers(std::string& line, const std::vector<HttpHeader>& headers) {
  for (const HttpHeader& h : headers) {
    line += " [";
    line += h.name;
    line += ": ";
    // A Location may carry a secret in its query (a GCS upload session).
    line += is_secret_header(h.name)            ? std::string("***")
            : ascii_iequals(h.name, "Location") ? redact_url_text(h.value)
                                                : h.value;
    line += ']';
  }
}

std::string stats_text(const HttpExchangeStats& s) {
  return std::to_string(s.elapsed.count()) + " ms, " + std::to_string(s.bytes_up) + " B up, " +
         std::to_string(s.bytes_down) + " B down";
}

}  // namespace

bool is_secret_header(std::string_view name) {
  for (std::string_view n :
       {"Authorization", "Proxy-Authorization", "X-Amz-Security-Token", "Cookie", "Set-Cookie",
        "X-Auth-Token", "X-Subject-Token", "Ocp-Apim-Subscription-Key", "x-ms-copy-source-authorization"})
    if (ascii_iequals(name, n)) return true;
  return ascii_istarts_with(name, "x-amz-server-side-encryption-customer-key") ||
         ascii_istarts_with(name, "x-amz-copy-source-server-side-encryption-customer-key");
}

std::string request_debug_line(const HttpRequest& request, uint64_t body_bytes) {
  std::string line = "http: " + request.method + " " + redacted_url(request);
  line += " (" + std::to_string(body_bytes) + " B body)";
  append_headers(line, request.headers);
  return line;
}

std::string response_debug_line(const HttpRequest& request, const HttpResponse& response,
                                const HttpExchangeStats& stats) {
  std::string line = "http: " + request.method + " " + redacted_url(request) + " -> " +
                     std::to_string(response.status) + " (" + stats_text(stats);
  if (!response.request_id.empty()) line += ", request id " + response.request_id;
  line += ')';
  append_headers(line, response.headers);
  return line;
}

std::string failure_debug_line(const HttpRequest& request, std::string_view cause,
                               const HttpExchangeStats& stats) {
  return "http: " + request.method + " " + redacted_url(request) + " -> failed (" +
         stats_text(stats) + "): " + std::string(cause);
}

}  // namespace ch
