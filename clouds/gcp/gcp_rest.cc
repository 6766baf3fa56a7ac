#include "clouds/gcp/gcp_rest.h"

#include "clouds/http/http_url.h"

namespace ch {

namespace {

using json = nlohmann::json;

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

Error google_error(std::string_view what, const HttpResponse& r) {
  std::string code, message;
  json doc = json::parse(r.body, nullptr, false);
  if (doc.is_object()) {
    auto err = doc.find("error");
    if (err != doc.end() && err->is_object()) {
      message = str(*err, "message");
      auto errors = err->find("errors");
      if (errors != err->end() && errors->is_array() && !errors->empty() && (*errors)[0].is_object())
        code = str((*errors)[0], "reason");
      if (code.empty()) code = str(*err, "status");
    } else {
      code = str(doc, "error");
      message = str(doc, "error_description");
    }
  } else if (!r.body.empty() && r.body.front() != '<') {
    message = r.body;
  }
  message = message.substr(0, message.find_first_of("\r\n"));
  if (message.size() > 300) message = message.substr(0, 300) + "...";
  std::string line = std::string(what) + ": HTTP " + std::to_string(r.status);
  if (!code.empty()) line += " " + code;
  if (!message.empty()) line += ": " + message;
  if (!r.request_id.empty()) line += " (request id " + r.request_id + ")";
  return Error{line, code, r.status};
}

GcpRest::GcpRest(HttpClient& client, GoogleTokenProvider* tokens, RetryPolicy policy)
    : client_(client), tokens_(tokens), policy_(policy) {}

Result<std::vector<HttpHeader>> GcpRest::auth_headers() {
  if (!tokens_) return std::vector<HttpHeader>{};
  CH_ASSIGN(token, tokens_->token());
  return std::vector<HttpHeader>{{"Authorization", "Bearer " + token}};
}

Result<HttpResponse> GcpRest::send(std::string_view method, std::string_view url, std::string body,
                                   std::vector<HttpHeader> headers, const SendOptions& options) {
  CH_ASSIGN(base, request_from_url(url));
  base.method = std::string(method);
  if (!body.empty()) {
    bool has_type = false;
    for (const HttpHeader& h : headers) has_type |= h.name == "Content-Type";
    if (!has_type) headers.push_back({"Content-Type", "application/json; charset=UTF-8"});
  }
  base.headers = std::move(headers);
  base.body = std::move(body);
  SendOptions opts = options;
  if (opts.label.empty()) opts.label = std::string(method) + " " + redacted_url(base);
  // The token is taken per attempt: a long retry may outlive it.
  return send_with_retry(
      client_, policy_,
      [&](int) -> Result<HttpRequest> {
        HttpRequest req = base;
        CH_ASSIGN(auth, auth_headers());
        req.headers.insert(req.headers.end(), auth.begin(), auth.end());
        return req;
      },
      opts);
}

Result<std::optional<json>> GcpRest::call(std::string_view method, std::string_view url, const json* body,
                                          bool not_found_ok, std::string_view name) {
  CH_ASSIGN(r, send(method, url, body ? body->dump() : std::string()));
  std::string what = name.empty() ? std::string(method) + " " + redact_url_text(url) : std::string(name);
  if (r.status == 404 && not_found_ok) return std::optional<json>();
  if (r.status / 100 != 2) return google_error(what, r);
  if (r.body.empty()) return std::optional<json>(json::object());
  json doc = json::parse(r.body, nullptr, false);
  if (doc.is_discarded()) return Error{what + ": HTTP " + std::to_string(r.status) + " with a body that is not JSON"};
  return std::optional<json>(std::move(doc));
}

}  // namespace ch
