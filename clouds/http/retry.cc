// Backoff as in "Exponential Backoff And Jitter" (AWS Architecture Blog,
// 2015): full jitter, sleep = U(0, min(cap, base * 2^n)), which spreads
// retries of many workers hit by the same throttling burst.
#include "clouds/http/retry.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "clouds/http/http_url.h"
#include "helper/output.h"

namespace ch {

namespace {

using std::chrono::milliseconds;

// Error codes that mean "slow down" or "try again", whatever the status.
constexpr std::string_view kRetryableCodes[] = {
    // AWS
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "ConcurrentLimitExceededException",  // EBS direct APIs
    "RequestLimitExceeded",
    "SlowDown",
    "RequestThrottled",
    "PriorRequestNotComplete",
    "TooManyRequestsException",
    "InternalError",
    "ServiceUnavailable",
    "EC2ThrottledException",
    "RequestTimeout",
    "RequestTimeoutException",
    // Azure
    "ServerBusy",
    "OperationTimedOut",
    // GCP (error.errors[].reason)
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "backendError",
    // OCI, Azure Resource Manager
    "TooManyRequests",
};

// AliCloud: Throttling.User, Throttling.Api, ...
constexpr std::string_view kRetryableCodePrefix = "Throttling.";

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

bool is_retryable_code(std::string_view code) {
  for (std::string_view c : kRetryableCodes)
    if (code == c) return true;
  return code.size() > kRetryableCodePrefix.size() &&
         code.substr(0, kRetryableCodePrefix.size()) == kRetryableCodePrefix;
}

std::string xml_code(std::string_view body) {
  size_t open = body.find("<Code>");
  if (open == std::string_view::npos) return "";
  size_t start = open + 6;
  size_t close = body.find("</Code>", start);
  if (close == std::string_view::npos) return "";
  return std::string(trim(body.substr(start, close - start)));
}

std::string json_string(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

std::string json_code(std::string_view body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return "";
  // AWS JSON protocols: "com.amazonaws.ebs#ThrottlingException", and in
  // some services "ThrottlingException:http://internal.amazon.com/...".
  std::string type = json_string(j, "__type");
  if (!type.empty()) {
    if (size_t hash = type.rfind('#'); hash != std::string::npos) type.erase(0, hash + 1);
    if (size_t colon = type.find(':'); colon != std::string::npos) type.erase(colon);
    return type;
  }
  for (const char* key : {"code", "Code"}) {
    std::string code = json_string(j, key);
    if (!code.empty()) return code;
  }
  auto error = j.find("error");
  if (error == j.end()) return "";
  if (error->is_string()) return error->get<std::string>();
  if (!error->is_object()) return "";
  std::string code = json_string(*error, "code");
  if (!code.empty()) return code;
  auto errors = error->find("errors");
  if (errors != error->end() && errors->is_array() && !errors->empty() &&
      errors->front().is_object())
    return json_string(errors->front(), "reason");
  return "";
}

std::mt19937& random_engine() {
  thread_local std::mt19937 engine{std::random_device{}()};
  return engine;
}

// Full jitter for retry N (0-based).
milliseconds backoff(const RetryPolicy& policy, int n) {
  int64_t cap = std::max<int64_t>(0, policy.base_delay.count());
  const int64_t max = std::max<int64_t>(0, policy.max_delay.count());
  for (int i = 0; i < n && cap < max; ++i) cap *= 2;
  cap = std::min(cap, max);
  if (cap == 0) return milliseconds(0);
  return milliseconds(std::uniform_int_distribution<int64_t>(0, cap)(random_engine()));
}

std::chrono::sys_days to_days(int y, unsigned m, unsigned d, bool* ok) {
  std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
  *ok = ymd.ok();
  return std::chrono::sys_days{ymd};
}

// IMF-fixdate (RFC 9110 5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
bool parse_http_date(std::string_view text, std::chrono::system_clock::time_point* out) {
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (text.size() != 29 || text[3] != ',' || text.substr(25) != " GMT") return false;
  std::string s(text);
  char month_name[4] = {};
  int day = 0, year = 0, hour = 0, minute = 0, second = 0, consumed = 0;
  if (std::sscanf(s.c_str() + 5, "%2d %3c %4d %2d:%2d:%2d%n", &day, month_name, &year, &hour,
                  &minute, &second, &consumed) != 6 ||
      consumed != 20)
    return false;
  unsigned month = 0;
  for (unsigned i = 0; i < 12; ++i)
    if (std::string_view(month_name, 3) == kMonths[i]) month = i + 1;
  if (month == 0 || hour > 23 || minute > 59 || second > 60) return false;
  bool ok = false;
  std::chrono::sys_days date = to_days(year, month, static_cast<unsigned>(day), &ok);
  if (!ok) return false;
  *out =
      date + std::chrono::hours(hour) + std::chrono::minutes(minute) + std::chrono::seconds(second);
  return true;
}

// "HTTP 503 SlowDown", or "HTTP 503" without a code.
std::string response_cause(const HttpResponse& response) {
  std::string cause = "HTTP " + std::to_string(response.status);
  std::string code = response_error_code(response.body);
  if (!code.empty()) cause += " " + code;
  return cause;
}

// The transport error message without its "METHOD URL: " prefix.
std::string transport_cause(const HttpRequest& request, const std::string& message) {
  std::string prefix = request.method + " " + redacted_url(request) + ": ";
  if (message.compare(0, prefix.size(), prefix) == 0) return message.substr(prefix.size());
  return message;
}

}  // namespace

RetryPolicy RetryPolicy::from_env() {
  RetryPolicy policy;
  const char* text = std::getenv("CLOUD_HELPER_RETRY_SCALE");
  if (text == nullptr || *text == '\0') return policy;
  char* end = nullptr;
  double factor = std::strtod(text, &end);
  if (end == text || *end != '\0' || !std::isfinite(factor) || factor < 0) return policy;
  auto scale = [factor](milliseconds d) {
    return milliseconds(
        static_cast<int64_t>(std::llround(static_cast<double>(d.count()) * factor)));
  };
  policy.base_delay = scale(policy.base_delay);
  policy.max_delay = scale(policy.max_delay);
  policy.max_total_sleep = scale(policy.max_total_sleep);
  return policy;
}

std::string response_error_code(std::string_view body) {
  constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";  // Azure prefixes its documents with one
  if (body.substr(0, kUtf8Bom.size()) == kUtf8Bom) body.remove_prefix(kUtf8Bom.size());
  std::string_view t = trim(body);
  if (t.empty()) return "";
  if (t.front() == '{') return json_code(t);
  return xml_code(t);
}

bool is_retryable_response(long status, std::string_view body) {
  if (status >= 500 && status != 501) return true;
  if (status == 429 || status == 408) return true;
  if (status >= 400 && status < 500) return is_retryable_code(response_error_code(body));
  return false;
}

bool is_retryable_transport(TransportFailure kind) {
  switch (kind) {
    case TransportFailure::kResolve:
    case TransportFailure::kConnect:
    case TransportFailure::kTimeout:
    case TransportFailure::kConnection:
      return true;
    case TransportFailure::kNone:
    case TransportFailure::kTls:
    case TransportFailure::kBodySource:
    case TransportFailure::kOther:
      return false;
  }
  return false;
}

long retry_after_seconds(std::string_view value, std::chrono::system_clock::time_point now) {
  std::string_view v = trim(value);
  if (v.empty()) return -1;
  if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (v.size() > 9) return 999999999;  // absurd, but a number: max_delay caps it
    return std::stol(std::string(v));
  }
  std::chrono::system_clock::time_point when;
  if (!parse_http_date(v, &when)) return -1;
  if (when <= now) return 0;
  auto seconds = std::chrono::ceil<std::chrono::seconds>(when - now);
  return static_cast<long>(seconds.count());
}

Result<HttpResponse> send_with_retry(
    HttpClient& client, const RetryPolicy& policy,
    const std::function<Result<HttpRequest>(int attempt)>& make_request, const SendOptions& options,
    RetryStats* stats, const std::function<void(std::chrono::milliseconds)>& sleep_fn) {
  RetryStats local;
  RetryStats& st = stats != nullptr ? *stats : local;
  st = RetryStats{};
  const int max_attempts = std::max(1, policy.max_attempts);
  milliseconds slept{0};
  for (int attempt = 1;; ++attempt) {
    Result<HttpRequest> request = make_request(attempt);
    if (!request.ok()) return request.error();
    st.attempts = attempt;
    HttpClient::Outcome out = client.send_classified(*request, options);

    std::string cause;
    long retry_after = -1;
    if (out.error.kind == TransportFailure::kNone) {
      // EBS names its errors in a header, not the body.
      std::string header_code = out.response.header("x-amzn-ErrorType");
      header_code = header_code.substr(0, header_code.find(':'));
      bool retry = is_retryable_response(out.response.status, out.response.body) ||
                   (out.response.status >= 400 && out.response.status < 500 &&
                    is_retryable_code(header_code));
      if (!retry) return std::move(out.response);
      cause = response_cause(out.response);
      retry_after =
          retry_after_seconds(out.response.header("Retry-After"), std::chrono::system_clock::now());
    } else {
      if (!is_retryable_transport(out.error.kind)) return Error{out.error.message};
      cause = transport_cause(*request, out.error.message);
    }
    auto give_up = [&]() -> Result<HttpResponse> {
      if (out.error.kind == TransportFailure::kNone) return std::move(out.response);
      return Error{request->method + " " + redacted_url(*request) + ": after " +
                   std::to_string(attempt) + (attempt == 1 ? " attempt: " : " attempts: ") + cause};
    };
    if (attempt >= max_attempts) return give_up();

    milliseconds delay = backoff(policy, attempt - 1);
    if (retry_after >= 0) {
      // Compared in seconds first: a huge value must not overflow.
      const long max_seconds = static_cast<long>(policy.max_delay.count() / 1000 + 1);
      milliseconds asked = std::chrono::seconds(std::min(retry_after, max_seconds));
      if (asked > delay) delay = std::min(asked, policy.max_delay);
    }
    if (slept + delay > policy.max_total_sleep) return give_up();

    log_info("retrying " + (options.label.empty() ? request->method + " " + host_and_path(*request) : options.label) + " after " + cause +
             " (attempt " + std::to_string(attempt + 1) + " of " + std::to_string(max_attempts) +
             ", in " + std::to_string(delay.count()) + " ms)");
    if (sleep_fn) {
      sleep_fn(delay);
    } else {
      std::this_thread::sleep_for(delay);
    }
    slept += delay;
    ++st.retries;
  }
}

}  // namespace ch
