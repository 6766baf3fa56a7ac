// AWS Signature Version 4 as a pure function: request + credentials + scope
// + time in, signed request out. No clock, no environment, no I/O; the same
// inputs always give the same bytes, which is what makes the published
// known-answer suites usable as tests.
//
// Spec: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv4.html
// (create-signed-request) and, for S3's variants,
// https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html
//
// Two placements of the signature:
//  - headers: adds X-Amz-Security-Token (with a session token), X-Amz-Date,
//    x-amz-content-sha256 (when asked) and Authorization, in that order, after
//    the request's own headers.
//  - query (presigned URL): adds X-Amz-Algorithm, X-Amz-Credential,
//    X-Amz-Date, X-Amz-SignedHeaders, X-Amz-Expires, X-Amz-Security-Token,
//    X-Amz-Signature, in that order, after the request's own parameters
//    (the order aws-c-auth uses; the order does not affect the signature).
//
// The canonical request and the string to sign come back for tests and for
// `--log-level debug`. Neither holds the secret key or the derived signing
// key (those exist only inside the signature computation and are wiped
// after), but the canonical request does hold the session token when one is
// signed: redact it before logging.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "clouds/http_request.h"
#include "clouds/signing/digest.h"  // sha256_hex, the payload hash

namespace ch {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty: long-term keys
};

enum class SignatureLocation { kHeaders, kQuery };

enum class PayloadHash {
  kBody,      // SHA-256 of request.body (empty body: e3b0c442...)
  kUnsigned,  // the literal UNSIGNED-PAYLOAD (S3 only)
  kGiven,     // SigningOptions::payload_sha256, for bodies streamed from disk
};

struct SigningOptions {
  SignatureLocation location = SignatureLocation::kHeaders;
  // Remove "." and ".." segments and collapse repeated slashes before
  // signing. S3: off (an object key may contain "//" or "..").
  bool normalize_path = true;
  // Encode the (already encoded) wire path once more for the canonical
  // request. S3: off (it signs the wire path as is).
  bool double_encode_path = true;
  PayloadHash payload = PayloadHash::kBody;
  std::string payload_sha256;  // lowercase hex, 64 digits; kGiven only
  // Add and sign x-amz-content-sha256 (S3 requires it). Header form only:
  // a presigned URL carries no headers of its own.
  bool add_content_sha256_header = false;
  // X-Amz-Expires of a presigned URL, in seconds: 1..604800 (7 days).
  uint64_t expires_seconds = 3600;
  // false: the session token is added after signing, outside the signature
  // (AWS IoT's convention; aws-c-auth's omit_session_token).
  bool sign_session_token = true;
};

// Options for S3: no path normalisation, no double encoding, payload hash
// header added.
SigningOptions s3_signing_options(SignatureLocation location = SignatureLocation::kHeaders);

struct SignedRequest {
  HttpRequest request;            // the input plus the signing headers/parameters
  std::string canonical_request;  // may contain the session token (see above)
  std::string string_to_sign;
  std::string signature;          // lowercase hex
};

// Signs REQUEST for REGION and SERVICE at TIME (UTC). Headers named
// User-Agent, Expect, Connection, Transfer-Encoding and X-Amzn-Trace-Id are
// sent but not signed: libcurl and proxies add or rewrite them. Errors
// (nothing is signed): empty access key id, secret, region, service or host;
// "/" in the region or service; a header name that is not an HTTP token; a
// given payload hash that is not 64 lowercase hex digits; expiry outside
// 1..604800; a time outside years 1970..9999; a request that already carries
// what the signer adds (Authorization, X-Amz-Date, X-Amz-Security-Token,
// x-amz-content-sha256 when asked; X-Amz-* signing parameters in query form).
Result<SignedRequest> sign_request(const HttpRequest& request, const AwsCredentials& credentials,
                                   std::string_view region, std::string_view service,
                                   std::chrono::sys_seconds time, const SigningOptions& options);

// RFC 3986 percent-encoding as SigV4 defines it: unreserved characters
// (A-Z a-z 0-9 - . _ ~) stay, every other byte becomes %XX (uppercase hex);
// with keep_slash, "/" stays too.
std::string aws_uri_encode(std::string_view bytes, bool keep_slash);

// A wire path from a raw one: "/" + object key, say. Same as
// aws_uri_encode(raw, true); what S3 expects for keys.
inline std::string aws_encode_path(std::string_view raw_path) { return aws_uri_encode(raw_path, true); }

// scheme://host[:port]path[?k=v&...] with keys and values encoded as above;
// the port only when not the scheme's default. For a query-signed request
// this is the presigned URL.
std::string request_url(const HttpRequest& request);

// "20150830T123600Z"; empty outside years 1970..9999.
std::string amz_date(std::chrono::sys_seconds time);

}  // namespace ch
