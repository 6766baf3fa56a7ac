// URLs of HttpRequests (clouds/http_request.h): the one on the wire, and the
// one that may be printed, with the values of secret query parameters
// (presigned URLs, SAS tokens) replaced by "***". request_from_url, the
// parser, is declared in clouds/http/http_client.h and lives here too.
#pragma once

#include <string>
#include <string_view>

#include "clouds/http_request.h"

namespace ch {

// scheme://host[:port]path[?k=v&...]: the port only when not the scheme's
// default, an IPv6 host in brackets, keys and values percent-encoded with
// the RFC 3986 rule SigV4 uses (all but A-Z a-z 0-9 - . _ ~), "=" always
// written (servers and signers treat "?a" and "?a=" alike).
std::string wire_url(const HttpRequest& request);

// wire_url with the value of every secret query parameter printed as "***".
std::string redacted_url(const HttpRequest& request);

// "host[:port]/path", no scheme and no query: names a call in retry logs.
std::string host_and_path(const HttpRequest& request);

// Query keys whose values are credentials, case-insensitive: X-Amz-Signature,
// X-Amz-Credential, X-Amz-Security-Token, X-Goog-Signature, X-Goog-Credential,
// sig, Signature, token, access_token, upload_id (a GCS resumable session:
// whoever has its URL can write the object).
bool is_secret_query_key(std::string_view key);

// URL text as given (not parsed) with the values of secret query parameters
// replaced by "***", for messages about URLs that failed to parse.
std::string redact_url_text(std::string_view url);

// Percent-decodes S into OUT; false on a malformed escape. "+" stays "+":
// these are URLs, not HTML form bodies.
bool percent_decode(std::string_view s, std::string* out);

}  // namespace ch
