#include "clouds/azure/arm.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

#include "clouds/http/ascii_case.h"
#include "clouds/http/http_url.h"
#include "helper/output.h"

namespace ch {

namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// ARM: a poll without Retry-After waits this long (the SDKs' default).
constexpr milliseconds kDefaultPollDelay{2000};
constexpr milliseconds kMinPollDelay{10};
constexpr milliseconds kMaxPollDelay{60000};

// CLOUD_HELPER_RETRY_SCALE, read as RetryPolicy::from_env reads it, so the
// poll intervals shrink in tests together with the retry delays.
double retry_scale() {
  const char* text = std::getenv("CLOUD_HELPER_RETRY_SCALE");
  if (text == nullptr || *text == '\0') return 1.0;
  char* end = nullptr;
  double factor = std::strtod(text, &end);
  if (end == text || *end != '\0' || !std::isfinite(factor) || factor < 0) return 1.0;
  return factor;
}

// The wait before the next poll: the answer's Retry-After (seconds or a
// date), else the default; both scaled, then kept within [10 ms, 60 s].
milliseconds poll_delay(const HttpResponse& response) {
  long seconds = retry_after_seconds(response.header("Retry-After"), std::chrono::system_clock::now());
  milliseconds base = seconds >= 0 ? milliseconds(seconds * 1000) : kDefaultPollDelay;
  auto scaled = milliseconds(std::llround(static_cast<double>(base.count()) * retry_scale()));
  return std::clamp(scaled, kMinPollDelay, kMaxPollDelay);
}

std::string random_uuid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi = rng();
  uint64_t lo = rng();
  hi = (hi & ~0xF000ull) | 0x4000ull;                                  // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;           // RFC 4122 variant
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
  return buf;
}

std::string one_line(std::string_view text, size_t max = 300) {
  std::string out;
  for (char c : text) {
    if (out.size() >= max) break;
    out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  size_t first = out.find_first_not_of(' ');
  return first == std::string::npos ? "" : out.substr(first);
}

// Azure prefixes some documents with a UTF-8 byte order mark.
std::string_view strip_bom(std::string_view body) {
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  if (body.substr(0, kBom.size()) == kBom) body.remove_prefix(kBom.size());
  return body;
}

std::string string_field(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// ARM's error document: {"error": {"code", "message", "details": [...]}};
// a few services answer the inner object alone.
void error_fields(const json& doc, std::string* code, std::string* message) {
  const json* e = &doc;
  if (doc.is_object() && doc.contains("error") && doc["error"].is_object()) e = &doc["error"];
  *code = string_field(*e, "code");
  *message = string_field(*e, "message");
  if (message->empty() && e->is_object() && e->contains("details") && (*e)["details"].is_array() &&
      !(*e)["details"].empty())
    *message = string_field((*e)["details"][0], "message");
}

std::string request_id_of(const HttpResponse& response) {
  return !response.request_id.empty() ? response.request_id : response.header("x-ms-request-id");
}

// "WHAT: HTTP 409 Conflict: Code: message (request id R)".
Error arm_error(const std::string& what, const HttpResponse& response) {
  std::string_view body = strip_bom(response.body);
  std::string code;
  std::string text;
  json doc = json::parse(body, nullptr, false);
  if (!doc.is_discarded() && doc.is_object()) error_fields(doc, &code, &text);
  else text = one_line(body, 200);  // a proxy's page or plain text: quote its start
  std::string message = what + ": HTTP " + std::to_string(response.status);
  if (!http_status_text(response.status).empty()) message += " " + std::string(http_status_text(response.status));
  if (!code.empty()) message += ": " + code;
  text = one_line(text);
  if (!text.empty()) message += ": " + text;
  std::string rid = request_id_of(response);
  if (!rid.empty()) message += " (request id " + rid + ")";
  return Error{message, code, response.status};
}

// A 404 that means the resource (or its group) is gone, not that the
// subscription is wrong.
bool resource_missing(const HttpResponse& response) {
  return response.status == 404 &&
         !ascii_iequals(response_error_code(strip_bom(response.body)), "SubscriptionNotFound");
}

std::string provisioning_state(const json& resource) {
  if (!resource.is_object()) return "";
  auto props = resource.find("properties");
  return props == resource.end() ? "" : string_field(*props, "provisioningState");
}

bool is_terminal(std::string_view state) {
  return ascii_iequals(state, "Succeeded") || ascii_iequals(state, "Failed") ||
         ascii_iequals(state, "Canceled");
}

bool is_failure(std::string_view state) {
  return ascii_iequals(state, "Failed") || ascii_iequals(state, "Canceled");
}

// The part of a resource id worth a log label: "galleries/g/images/d" of
// "/subscriptions/S/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d".
std::string short_path(std::string_view path) {
  path = path.substr(0, path.find('?'));
  size_t providers = path.rfind("/providers/");
  if (providers != std::string_view::npos) {
    std::string_view rest = path.substr(providers + 11);
    size_t slash = rest.find('/');
    if (slash != std::string_view::npos) return std::string(rest.substr(slash + 1));
  }
  if (path.starts_with("/subscriptions/")) {
    size_t slash = path.find('/', 15);
    if (slash != std::string_view::npos) return std::string(path.substr(slash + 1));
  }
  return std::string(path.starts_with('/') ? path.substr(1) : path);
}

// ".../versions/1.2.3": the last two segments, for the completion line.
std::string tail_path(std::string_view path) {
  path = path.substr(0, path.find('?'));
  size_t last = path.rfind('/');
  if (last == std::string_view::npos || last == 0) return std::string(path);
  size_t before = path.rfind('/', last - 1);
  if (before == std::string_view::npos || before == 0) return std::string(path);
  return "..." + std::string(path.substr(before));
}

std::string origin(const HttpRequest& r) {
  std::string out = r.scheme + "://" + r.host;
  if (r.port != 0) out += ":" + std::to_string(r.port);
  return out;
}

uint16_t effective_port(const HttpRequest& r) {
  return r.port != 0 ? r.port : (r.scheme == "http" ? 80 : 443);
}

// One ARM call as the user sees it: "PUT /subscriptions/...".
struct Op {
  std::string method;
  std::string path;  // as given (may carry a query)
  std::string api;
  std::string what() const { return method + " " + path.substr(0, path.find('?')); }
  std::string label() const { return "ARM " + method + " " + short_path(path); }
};

// The client's state for the duration of one call (ArmClient keeps the
// members; the helpers live here so the header stays the contract).
struct Arm {
  HttpClient& http;
  AzureTokenProvider& tokens;
  const AzureCloud& cloud;
  const RetryPolicy& policy;

  // TARGET is a resource path (joined to resource_manager) or an absolute
  // URL ARM handed out (nextLink, Location, Azure-AsyncOperation), which
  // must be on the Resource Manager's own scheme, host and port: the bearer
  // token goes nowhere else. api-version is added when the URL has none.
  Result<HttpRequest> build(const std::string& method, const std::string& target,
                            const std::string& api, const std::string* body,
                            const std::string& client_request_id) {
    const bool absolute = ascii_istarts_with(target, "https://") || ascii_istarts_with(target, "http://");
    CH_ASSIGN(req, request_from_url(absolute ? target : cloud.resource_manager + target));
    CH_ASSIGN(home, request_from_url(cloud.resource_manager + "/"));
    if (!ascii_iequals(req.scheme, home.scheme) || !ascii_iequals(req.host, home.host) ||
        effective_port(req) != effective_port(home))
      return Error{method + " " + redacted_url(req) + ": refusing to send the Resource Manager token to " +
                   origin(req) + " (Resource Manager is " + origin(home) + ")"};
    bool has_api = std::any_of(req.query.begin(), req.query.end(),
                               [](const QueryParam& q) { return ascii_iequals(q.key, "api-version"); });
    if (!has_api) req.query.push_back({"api-version", api});
    req.method = method;
    // Fetched per attempt: the provider caches, and a long LRO outlives a token.
    CH_ASSIGN(token, tokens.token(cloud.arm_scope));
    req.headers.push_back({"Authorization", "Bearer " + token});
    req.headers.push_back({"Accept", "application/json"});
    req.headers.push_back({"x-ms-client-request-id", client_request_id});
    if (body != nullptr) {
      req.headers.push_back({"Content-Type", "application/json"});
      req.body = *body;
    }
    return req;
  }

  // One request with retries; any HTTP status comes back as a response.
  Result<HttpResponse> send(const std::string& method, const std::string& target,
                            const std::string& api, const std::string* body, std::string label) {
    const std::string client_request_id = random_uuid();  // the same for every attempt
    SendOptions options;
    options.label = std::move(label);
    return send_with_retry(
        http, policy,
        [&](int) { return build(method, target, api, body, client_request_id); }, options);
  }

  Result<json> parse(const std::string& what, const HttpResponse& response) {
    std::string_view body = strip_bom(response.body);
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return json::object();
    json doc = json::parse(body, nullptr, false);
    if (doc.is_discarded()) {
      std::string message = what + ": HTTP " + std::to_string(response.status) +
                            " answer is not JSON: " + one_line(body, 120);
      std::string rid = request_id_of(response);
      if (!rid.empty()) message += " (request id " + rid + ")";
      return Error{message, "", response.status};
    }
    return doc;
  }

  // GET of the resource after its PUT/PATCH finished.
  Result<json> read_back(const Op& op) {
    CH_ASSIGN(r, send("GET", op.path, op.api, nullptr, "ARM GET " + short_path(op.path)));
    if (r.status >= 300) return arm_error("GET " + op.path.substr(0, op.path.find('?')), r);
    return parse("GET " + op.path, r);
  }

  Result<json> call(const Op& op, const json* body, const LroOptions& lro);
  Result<json> follow(const Op& op, const HttpResponse& first, json first_body, const LroOptions& lro);
};

Result<json> Arm::call(const Op& op, const json* body, const LroOptions& lro) {
  std::string text;
  if (body != nullptr && !body->is_null()) text = body->dump();
  CH_ASSIGN(r, send(op.method, op.path, op.api, text.empty() ? nullptr : &text, op.label()));
  if (op.method == "DELETE" && resource_missing(r)) return json::object();
  if (r.status >= 300) return arm_error(op.what(), r);
  CH_ASSIGN(doc, parse(op.what(), r));
  return follow(op, r, std::move(doc), lro);
}

Result<json> Arm::follow(const Op& op, const HttpResponse& first, json first_body,
                         const LroOptions& lro) {
  const bool is_delete = op.method == "DELETE";
  const bool writes_resource = op.method == "PUT" || op.method == "PATCH";
  const std::string async_url = first.header("Azure-AsyncOperation");
  const std::string location = first.header("Location");
  std::string status = provisioning_state(first_body);
  const bool long_running = first.status == 201 || first.status == 202 ||
                            (first.status == 200 && !is_delete && !status.empty() && !is_terminal(status));
  if (!long_running) {
    if (!is_delete && is_failure(status))
      return Error{op.what() + ": provisioningState " + status, "", first.status};
    return first_body;
  }
  enum class Mode { kAsyncOperation, kLocation, kResource };
  const Mode mode = !async_url.empty() ? Mode::kAsyncOperation
                    : !location.empty() ? Mode::kLocation
                                        : Mode::kResource;
  // A POST answered 202 without a URL to follow has no resource to watch.
  if (mode == Mode::kResource && !writes_resource && !is_delete) return first_body;
  const std::string poll_url =
      mode == Mode::kAsyncOperation ? async_url : mode == Mode::kLocation ? location : op.path;
  const std::string poll_what = op.what() + ": polling " +
                                (mode == Mode::kAsyncOperation ? "the operation status"
                                 : mode == Mode::kLocation     ? "the operation location"
                                                               : "the resource");
  if (status.empty()) status = "InProgress";

  const auto start = steady_clock::now();
  const auto deadline = start + lro.timeout;
  HttpResponse last = first;
  json result;
  for (int poll = 1;; ++poll) {
    const auto now = steady_clock::now();
    if (now >= deadline) {
      auto waited = std::chrono::duration_cast<std::chrono::seconds>(now - start).count();
      return Error{op.what() + ": timed out after " + std::to_string(waited) +
                   " s waiting for the operation (last status: " + status + ")"};
    }
    const milliseconds delay = poll_delay(last);
    std::this_thread::sleep_for(std::min<steady_clock::duration>(delay, deadline - now));
    CH_ASSIGN(r, send("GET", poll_url, op.api, nullptr, op.label() + " (poll)"));
    last = r;
    if (is_delete && resource_missing(r)) {
      status = "Succeeded";
      result = json::object();
      break;
    }
    if (r.status >= 300) return arm_error(poll_what, r);
    CH_ASSIGN(doc, parse(poll_what, r));
    bool done = false;
    if (mode == Mode::kAsyncOperation) {
      status = string_field(doc, "status");
      if (status.empty()) status = "InProgress";
      if (is_failure(status)) {
        std::string code;
        std::string message;
        error_fields(doc, &code, &message);
        std::string line = op.what() + ": operation " + status;
        if (!code.empty()) line += ": " + code;
        if (!one_line(message).empty()) line += ": " + one_line(message);
        std::string rid = request_id_of(r);
        if (!rid.empty()) line += " (request id " + rid + ")";
        return Error{line, code, 0};
      }
      done = ascii_iequals(status, "Succeeded");
    } else if (mode == Mode::kLocation) {
      done = r.status != 202;
      status = done ? "Succeeded" : "InProgress";
      result = doc;
    } else {
      status = provisioning_state(doc);
      if (status.empty()) status = is_delete ? "Deleting" : "Succeeded";
      if (is_failure(status)) {
        std::string code;
        std::string message;
        error_fields(doc.is_object() && doc.contains("properties") ? doc["properties"] : json(), &code,
                     &message);
        std::string line = op.what() + ": provisioningState " + status;
        if (!code.empty()) line += ": " + code;
        if (!message.empty()) line += ": " + one_line(message);
        return Error{line, code, 0};
      }
      // A DELETE watched through its resource ends only with the 404 above.
      done = !is_delete && ascii_iequals(status, "Succeeded");
      result = doc;
    }
    log_debug("azure: " + op.what() + ": poll " + std::to_string(poll) + ": " + status);
    if (lro.on_poll) lro.on_poll(status);
    if (done) break;
  }
  auto took = std::chrono::duration_cast<std::chrono::seconds>(steady_clock::now() - start).count();
  log_info("azure: " + op.method + " " + tail_path(op.path) + ": " + status + " after " +
           std::to_string(took) + " s");
  if (writes_resource && mode != Mode::kResource) return read_back(op);
  if (mode == Mode::kAsyncOperation && !is_delete && !location.empty()) {
    // ARM: a POST's result is at its Location once the operation succeeded.
    CH_ASSIGN(r, send("GET", location, op.api, nullptr, op.label() + " (result)"));
    if (r.status >= 300) return arm_error(op.what() + ": reading the result", r);
    return parse(op.what() + ": reading the result", r);
  }
  if (result.is_null()) result = json::object();
  return result;
}

}  // namespace

ArmClient::ArmClient(HttpClient& client, AzureTokenProvider& tokens, AzureCloud cloud,
                     RetryPolicy policy)
    : client_(client), tokens_(tokens), cloud_(std::move(cloud)), policy_(policy) {}

Result<std::optional<json>> ArmClient::get(std::string_view resource_id, std::string_view api) {
  Arm arm{client_, tokens_, cloud_, policy_};
  Op op{"GET", std::string(resource_id), std::string(api)};
  CH_ASSIGN(r, arm.send(op.method, op.path, op.api, nullptr, op.label()));
  if (resource_missing(r)) return std::optional<json>();
  if (r.status >= 300) return arm_error(op.what(), r);
  CH_ASSIGN(doc, arm.parse(op.what(), r));
  return std::optional<json>(std::move(doc));
}

Result<std::vector<json>> ArmClient::list(std::string_view collection_id, std::string_view api) {
  Arm arm{client_, tokens_, cloud_, policy_};
  Op op{"GET", std::string(collection_id), std::string(api)};
  std::vector<json> items;
  std::string target = op.path;
  for (;;) {
    CH_ASSIGN(r, arm.send("GET", target, op.api, nullptr, op.label()));
    if (r.status >= 300) return arm_error(op.what(), r);
    CH_ASSIGN(doc, arm.parse(op.what(), r));
    if (doc.is_object() && doc.contains("value") && doc["value"].is_array())
      for (auto& item : doc["value"]) items.push_back(std::move(item));
    std::string next = string_field(doc, "nextLink");
    if (next.empty() || next == target) break;  // a repeated link would never end
    target = next;
  }
  return items;
}

Result<json> ArmClient::put(std::string_view resource_id, std::string_view api, const json& body,
                            const LroOptions& lro) {
  Arm arm{client_, tokens_, cloud_, policy_};
  return arm.call(Op{"PUT", std::string(resource_id), std::string(api)}, &body, lro);
}

Result<json> ArmClient::patch(std::string_view resource_id, std::string_view api, const json& body,
                              const LroOptions& lro) {
  Arm arm{client_, tokens_, cloud_, policy_};
  return arm.call(Op{"PATCH", std::string(resource_id), std::string(api)}, &body, lro);
}

Result<json> ArmClient::post(std::string_view action_path, std::string_view api, const json& body,
                             const LroOptions& lro) {
  Arm arm{client_, tokens_, cloud_, policy_};
  return arm.call(Op{"POST", std::string(action_path), std::string(api)}, &body, lro);
}

Status ArmClient::del(std::string_view resource_id, std::string_view api, const LroOptions& lro) {
  Arm arm{client_, tokens_, cloud_, policy_};
  CH_TRY(arm.call(Op{"DELETE", std::string(resource_id), std::string(api)}, nullptr, lro));
  return {};
}

Result<std::optional<json>> ArmClient::wait_provisioned(std::string_view resource_id,
                                                        std::string_view api, const LroOptions& lro) {
  Arm arm{client_, tokens_, cloud_, policy_};
  Op op{"GET", std::string(resource_id), std::string(api)};
  const auto start = steady_clock::now();
  const auto deadline = start + lro.timeout;
  for (int poll = 0;; ++poll) {
    CH_ASSIGN(r, arm.send("GET", op.path, op.api, nullptr, op.label()));
    if (resource_missing(r)) return std::optional<json>();
    if (r.status >= 300) return arm_error(op.what(), r);
    CH_ASSIGN(doc, arm.parse(op.what(), r));
    const std::string state = provisioning_state(doc);
    if (poll > 0 && lro.on_poll) lro.on_poll(state);
    if (state.empty() || is_terminal(state)) {
      if (poll > 0)
        log_info("azure: " + tail_path(op.path) + ": " + state + " after " +
                 std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                    steady_clock::now() - start).count()) + " s");
      return std::optional<json>(std::move(doc));
    }
    const auto now = steady_clock::now();
    if (now >= deadline) {
      auto waited = std::chrono::duration_cast<std::chrono::seconds>(now - start).count();
      return Error{op.what() + ": timed out after " + std::to_string(waited) +
                   " s waiting for a terminal provisioningState (last: " + state + ")"};
    }
    log_debug("azure: " + op.what() + ": provisioningState " + state + ", waiting");
    std::this_thread::sleep_for(std::min<steady_clock::duration>(poll_delay(r), deadline - now));
  }
}

}  // namespace ch
