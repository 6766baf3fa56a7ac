// The one libcurl user. Sends an HttpRequest (clouds/http_request.h) and
// returns the status, headers and body, or an Error for a transport failure.
// Thread-safe: one HttpClient is shared by every worker of an action; it
// keeps a pool of connections (reused across requests to the same host) and
// lets at most Config::max_in_flight requests run at once (callers beyond
// that wait).
//
// Contract, for every cloud:
//  - TLS verification is always on (CURLOPT_SSL_VERIFYPEER/HOST); a CA file
//    may be given (AWS_CA_BUNDLE, REQUESTS_CA_BUNDLE, SSL_CERT_FILE).
//  - Redirects are never followed: a 3xx comes back as a response (signed
//    requests must not be replayed to another host).
//  - Timeouts: connect, and "stall" (fewer than stall_bytes_per_second over
//    stall_seconds, both directions); a whole-request limit only when asked.
//  - The cloud's request id is taken from the response headers
//    (x-amz-request-id, x-amzn-RequestId, x-ms-request-id,
//    x-guploader-uploadid, x-acs-request-id, opc-request-id,
//    x-openstack-request-id; the first present) so errors can quote it.
//  - At --log-level debug, one line per request and one per response
//    ("http: PUT https://host/path?k=v -> 200 (12 ms, 8388608 B up, 0 B
//    down, request id ...)"); header values of Authorization,
//    X-Amz-Security-Token, x-amz-server-side-encryption-customer-key*,
//    Cookie/Set-Cookie, X-Auth-Token, Ocp-Apim-Subscription-Key and query
//    values of X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, sig,
//    Signature, token are printed as "***" (full lists and line formats:
//    clouds/http/http_log.h, clouds/http/http_url.h). Bodies are never
//    logged. Transport errors name the call the same way, "PUT
//    https://host/path?X-Amz-Signature=***: <libcurl's message>".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "clouds/http_request.h"

namespace ch {

struct HttpResponse {
  long status = 0;
  std::vector<HttpHeader> headers;  // in received order, of the final response
  std::string body;                 // empty when SendOptions::body_sink took it
  std::string request_id;           // "" when the server sent none
  // The first header named NAME (case-insensitive), trimmed; "" if absent.
  std::string header(std::string_view name) const;
};

// Why a request got no HTTP response at all. Every kind but kOther and
// kTls is worth a retry (clouds/http/retry.h decides).
enum class TransportFailure {
  kNone,
  kResolve,     // host name did not resolve
  kConnect,     // refused, unreachable, connect timeout
  kTimeout,     // stall or whole-request limit
  kConnection,  // reset, closed early, partial response, send/recv error
  kTls,         // certificate or handshake problem: not retried
  kBodySource,  // reading the request body from disk failed: not retried
  kOther,       // anything else libcurl reports: not retried
};

// A transport failure as an Error message plus its kind, for the retry policy.
struct HttpError {
  TransportFailure kind = TransportFailure::kOther;
  std::string message;  // "PUT https://host/path: connection reset by peer"
};

// A body streamed from a file (uploads of image parts): LENGTH bytes from
// OFFSET of the open descriptor FD, read with pread (so many requests can
// share one descriptor). The caller keeps FD open until send() returns.
struct FileBody {
  int fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct SendOptions {
  // What the request is, for retry log lines ("EC2 DescribeImages
  // (us-east-1)"); "" : the method, host and path.
  std::string label;
  // When set, the request body comes from this file range and
  // HttpRequest::body must be empty. Content-Length is set from it.
  const FileBody* file_body = nullptr;
  // When set, response body bytes of a 2xx response are handed here as
  // they arrive instead of being kept in HttpResponse::body; returning false
  // aborts the transfer (reported as kOther "body sink refused"). The body
  // of any other status (an error document) stays in HttpResponse::body.
  // Called on the sending thread. A retried request (clouds/http/retry.h)
  // hands the body again from its first byte.
  std::function<bool(std::string_view chunk)> body_sink;
  // Bytes of the request body sent so far, called as they go (progress), on
  // the sending thread. When libcurl resends the body on a fresh connection
  // the bytes are not counted twice.
  std::function<void(uint64_t bytes_sent_delta)> on_upload_progress;
  // 0: Config::request_timeout_seconds.
  long request_timeout_seconds = 0;
  // HEAD-like requests whose response has no body (curl needs telling).
  // Implied by method HEAD; ignored for a request with a body.
  bool no_response_body = false;
};

// The standard reason phrase of STATUS ("Not Found"), or "" for one an
// error line need not spell out. Error lines quote it after the number.
std::string_view http_status_text(long status);

class HttpClient {
 public:
  struct Config {
    long connect_timeout_seconds = 20;
    long stall_seconds = 60;              // abort when slower than...
    long stall_bytes_per_second = 1;      // ...this, for stall_seconds
    long request_timeout_seconds = 0;     // 0: no whole-request limit
    int max_in_flight = 16;               // requests running at once, >= 1
    std::string ca_file;                  // "" : the system's store
    std::string user_agent;               // "" : "cloud_helper/VERSION"
  };

  // Default Config with ca_file from ca_file_from_env().
  HttpClient();
  explicit HttpClient(Config config);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends REQUEST once (no retries; see clouds/http/retry.h). A response of
  // any status is a success here; only transport failures are errors.
  // Adds no headers of its own except Host, Content-Length, User-Agent, and
  // an empty "Expect:" (no 100-continue round trip) — anything signed must
  // already be in REQUEST. In particular libcurl's default Accept and, for
  // POST, Content-Type are not sent: set Content-Type yourself. A
  // Content-Length in REQUEST must match the body (else a kOther error);
  // a User-Agent in REQUEST replaces the configured one. The path goes out
  // exactly as given (no dot-segment removal).
  Result<HttpResponse> send(const HttpRequest& request, const SendOptions& options = {});

  // Same, with the failure kind kept for the retry policy.
  struct Outcome {
    HttpResponse response;  // valid when error.kind == kNone
    HttpError error;
  };
  Outcome send_classified(const HttpRequest& request, const SendOptions& options = {});

  const Config& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses "http://host:port/path?query" into the fields of an HttpRequest
// (method GET, no headers). Query keys and values are percent-decoded ("+"
// stays "+"); the path stays in its encoded wire form; a fragment is
// dropped; user information ("user:pw@") is refused. Errors name the URL,
// with secret query values as "***". (Implemented in http_url.cc.)
Result<HttpRequest> request_from_url(std::string_view url);

// The CA file named by AWS_CA_BUNDLE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE or
// SSL_CERT_FILE (the first one set), or "" for the system's store.
std::string ca_file_from_env();

}  // namespace ch
