// One retry policy for every cloud: exponential backoff with full jitter on
// transport failures (clouds/http/http_client.h, except TLS/body-source/
// other), on 5xx but 501, 429, 408, and on each cloud's throttling codes
// carried in a 4xx body (AWS: Throttling, ThrottlingException,
// ThrottledException, RequestThrottledException, RequestLimitExceeded,
// SlowDown, RequestThrottled, PriorRequestNotComplete,
// TooManyRequestsException, InternalError, ServiceUnavailable,
// EC2ThrottledException, RequestTimeout, RequestTimeoutException; Azure:
// ServerBusy, OperationTimedOut;
// GCP: rateLimitExceeded, userRateLimitExceeded, backendError; AliCloud:
// Throttling.*, ServiceUnavailable; OCI and Azure Resource Manager: TooManyRequests).
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
  // Retry n (0, 1, ...) sleeps U(0, min(max_delay, base_delay * 2^n)).
  std::chrono::milliseconds base_delay{200};
  std::chrono::milliseconds max_delay{20000};
  std::chrono::milliseconds max_total_sleep{120000};     // give up once slept this long
  // Tests shrink delays with CLOUD_HELPER_RETRY_SCALE (a factor, "0.01"):
  // it multiplies the three durations above (an unparsable or negative
  // value is ignored). Retry-After is capped by the scaled max_delay.
  static RetryPolicy from_env();
};

// Whether a response with this status and body is worth another attempt.
// BODY is the raw error document (XML or JSON); the code is looked for in
// <Code>..</Code>, "code":"..", "__type":"..#Code" or "error":{"code":..}.
// 501 (Not Implemented) is the one 5xx not retried: it never changes.
// A 2xx is never retried, whatever its body (S3's CompleteMultipartUpload
// "200 with <Error>" is for the S3 layer to recognise).
bool is_retryable_response(long status, std::string_view body);
bool is_retryable_transport(TransportFailure kind);

// The service's error code in an error document, "" when none: the first
// <Code> element of XML (AWS, Azure, AliCloud); of JSON, "__type" (after
// its last "#", before any ":"), "code"/"Code" when a string, "error" when
// a string (OAuth), or error.code when a string (Azure Resource Manager),
// else error.errors[0].reason (GCP).
std::string response_error_code(std::string_view body);

// Seconds from a Retry-After value ("7" or an RFC 1123 date relative to
// NOW); -1 when absent or unparsable.
long retry_after_seconds(std::string_view value, std::chrono::system_clock::time_point now);

struct RetryStats {
  int attempts = 0;
  int retries = 0;
};

// Calls make_request(attempt) (attempt = 1, 2, ...) and sends it until a
// non-retryable answer or the budget runs out: no attempt after
// max_attempts, and no retry whose sleep would take the total past
// max_total_sleep. An error from make_request is returned as is. The
// returned response may be any status (the caller turns a 4xx into its own
// error message); a transport failure that
// exhausted the budget is an Error "...: after N attempts: <last cause>".
// Each retry is logged at info level with its cause and delay.
// sleep_fn is for tests (default: std::this_thread::sleep_for).
Result<HttpResponse> send_with_retry(
    HttpClient& client, const RetryPolicy& policy,
    const std::function<Result<HttpRequest>(int attempt)>& make_request,
    const SendOptions& options = {}, RetryStats* stats = nullptr,
    const std::function<void(std::chrono::milliseconds)>& sleep_fn = {});

}  // namespace ch
