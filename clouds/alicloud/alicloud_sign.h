// Request signatures of Alibaba Cloud, as pure functions (request,
// credentials and the time in; headers or a signature out):
//
//  - OSS V4 (OSS4-HMAC-SHA256, the current scheme,
//    https://www.alibabacloud.com/help/en/oss/developer-reference/recommend-to-use-signature-version-4):
//    canonical request = METHOD \n /BUCKET/KEY (RFC 3986, "/" kept) \n
//    sorted encoded query ("k=v", or "k" when v is empty) \n "name:value\n"
//    for every x-oss-*, content-type and content-md5 header (lowercase,
//    sorted, values trimmed) \n additional headers (none here) \n
//    UNSIGNED-PAYLOAD; string to sign = OSS4-HMAC-SHA256 \n x-oss-date \n
//    DATE/REGION/oss/aliyun_v4_request \n hex SHA-256(canonical request);
//    key = HMAC-SHA256 chain "aliyun_v4"+secret -> date -> region -> "oss"
//    -> "aliyun_v4_request"; signature in lowercase hex.
//  - OSS V1 ("OSS AK:base64(HMAC-SHA1(secret, VERB\nContent-MD5\n
//    Content-Type\nDate\n + x-oss-* headers + /BUCKET/KEY?subresources))").
//  - RPC (ECS and every other RPC-style API, SignatureVersion 1.0): the
//    parameters sorted by name, each name and value percent-encoded (RFC
//    3986 unreserved kept, so space is %20, "*" %2A, "~" stays), joined
//    with "&"; string to sign = METHOD & %2F & percent-encode(that);
//    Signature = base64(HMAC-SHA1(secret + "&", string to sign)).
// Known answers from Alibaba's documentation and SDK tests are in
// alicloud_sign_test.cc.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clouds/http_request.h"

namespace ch {

struct AliCredentials {
  std::string access_key_id;
  std::string access_key_secret;
  std::string security_token;  // STS; "" for a long-term AccessKey
  std::string source;          // where they came from, for logs ("environment", "~/.aliyun/config.json profile default")
};

enum class OssSignature { kV4, kV1 };

// RFC 3986 percent-encoding (A-Z a-z 0-9 - . _ ~ stay; %XX uppercase),
// with "/" kept when KEEP_SLASH: OSS V4 canonical URIs and query, RPC.
std::string ali_percent_encode(std::string_view s, bool keep_slash = false);

// OSS V4. Sets x-oss-date (from NOW), x-oss-content-sha256:
// UNSIGNED-PAYLOAD, x-oss-security-token when the credentials carry one,
// and Authorization on REQUEST. KEY is the object key as stored (not
// encoded); "" for a bucket request. REQUEST.query holds decoded values.
void oss_sign_v4(HttpRequest& request, const AliCredentials& credentials, std::string_view region,
                 std::string_view bucket, std::string_view key, std::chrono::sys_seconds now);
// The canonical request and string to sign V4 uses (tests, and the text
// OSS returns in a SignatureDoesNotMatch error for comparison).
std::string oss_v4_canonical_request(const HttpRequest& request, std::string_view bucket, std::string_view key);
std::string oss_v4_string_to_sign(const HttpRequest& request, std::string_view region, std::string_view bucket,
                                  std::string_view key);

// OSS V1. Sets Date (from NOW) unless REQUEST has an x-oss-date header,
// x-oss-security-token when needed, and Authorization.
void oss_sign_v1(HttpRequest& request, const AliCredentials& credentials, std::string_view bucket,
                 std::string_view key, std::chrono::sys_seconds now);
std::string oss_v1_string_to_sign(const HttpRequest& request, std::string_view bucket, std::string_view key);

// "Tue, 03 Dec 2026 17:16:26 GMT"
std::string http_date(std::chrono::sys_seconds t);

// RPC: the string to sign for PARAMS (every parameter but Signature) sent
// with METHOD ("GET" or "POST"), and its signature (base64).
std::string rpc_string_to_sign(std::string_view method, std::vector<std::pair<std::string, std::string>> params);
std::string rpc_signature(std::string_view method, const std::vector<std::pair<std::string, std::string>>& params,
                          std::string_view access_key_secret);

}  // namespace ch
