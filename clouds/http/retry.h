// One retry policy for every cloud: exponential backoff with full jitter on
// transport failures (clouds/http/http_client.h, except TLS/body-source/
// other), on 5xx, 429, 408, and on each cloud's throttling codes carried in
// a 400/403/503 body (AWS: Throttling, ThrottlingException,
// RequestLimitExceeded, SlowDown, RequestThrottled, PriorRequestNotComplete,
// TooManyRequestsException, InternalError, ServiceUnavailable, EC2ThrottledException,
// RequestTimeout, RequestTimeoutException; Azure: ServerBusy, OperationTimedOut;
// GCP: rateLimitExceeded, backendError; AliCloud: Throttling.User, ServiceUnavailable).
// A Retry-After header (seconds or HTTP date) replaces the computed delay
// when longer, capped at max_delay. The budget is both an attempt count and
// a total sleeping time; when it runs out, the last failure is returned.
// Everything else (4xx with a non-throttling code) fails at once.
//
// The request is rebuilt for every attempt (make_request), because signed
// requests carry the time and must be re-signed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>

#include "base/result.h"
#include "clouds/http/http_client.h"

namespace ch {

struct RetryPolicy {
  int max_attempts = 8;                                  // first try included
  std::chrono::milliseconds base_delay{200};             // attempt n sleeps U(0, min(max, base*2^n))
  std::chrono::milliseconds max_delay{20000};
  std::chrono::milliseconds max_total_sleep{120000};     // give up once slept this long
  // Tests shrink delays with CLOUD_HELPER_RETRY_SCALE (a factor, "0.01").
  static RetryPolicy from_env();
};

// Whether a response with this status and body is worth another attempt.
// BODY is the raw error document (XML or JSON); the code is looked for in
// <Code>..</Code>, "code":"..", "__type":"..#Code" or "error":{"code":..}.
bool is_retryable_response(long status, std::string_view body);
bool is_retryable_transport(TransportFailure kind);

// Seconds from a Retry-After value ("7" or an RFC 1123 date relative to
// NOW); -1 when absent or unparsable.
long retry_after_seconds(std::string_view value, std::chrono::system_clock::time_point now);

struct RetryStats {
  int attempts = 0;
  int retries = 0;
};

// Calls make_request(attempt) and sends it until a non-retryable answer or
// the budget runs out. The returned response may be any status (the caller
// turns a 4xx into its own error message); a transport failure that
// exhausted the budget is an Error "...: after N attempts: <last cause>".
// Each retry is logged at info level with its cause and delay.
// sleep_fn is for tests (default: std::this_thread::sleep_for).
Result<HttpResponse> send_with_retry(
    HttpClient& client, const RetryPolicy& policy,
    const std::function<Result<HttpRequest>(int attempt)>& make_request,
    const SendOptions& options = {}, RetryStats* stats = nullptr,
    const std::function<void(std::chrono::milliseconds)>& sleep_fn = {});

}  // namespace ch
