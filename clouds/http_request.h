// One HTTP request as a plain value: what the request signers (SigV4, and
// later the others) take and return, and what the HTTP client sends. No
// behaviour lives here; serialisation rules belong to whoever consumes it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ch {

struct HttpHeader {
  std::string name;   // as sent ("Content-Type"); compared case-insensitively
  std::string value;  // as sent, untrimmed
};

struct QueryParam {
  std::string key;    // decoded (raw bytes); encoded when a URL is built
  std::string value;  // decoded; "" for both "?a" and "?a="
};

struct HttpRequest {
  std::string method = "GET";
  std::string scheme = "https";  // "https" | "http"
  std::string host;              // "bucket.s3.eu-west-2.amazonaws.com", no port
  uint16_t port = 0;             // 0: the scheme's default (443, 80)
  // The path exactly as it goes on the request line: already URI-encoded,
  // "/" when empty. (Signers need the wire form: SigV4 for S3 signs it as
  // is, other AWS services sign it encoded once more.)
  std::string path = "/";
  std::vector<QueryParam> query;    // in URL order
  std::vector<HttpHeader> headers;  // in send order; a name may repeat
  // Bodies that fit in memory (API calls, small XML documents). Streamed
  // uploads leave it empty and hand the signer a precomputed payload hash.
  std::string body;
};

}  // namespace ch
