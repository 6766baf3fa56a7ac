// OCI request signing, "Signature Version 1"
// (https://docs.oracle.com/iaas/Content/API/Concepts/signingrequests.htm):
// draft-cavage-http-signatures-08 with rsa-sha256, keyId
// "TENANCY_OCID/USER_OCID/KEY_FINGERPRINT", in the Authorization header.
//
// Signed headers, in this order:
//   every request                 date (request-target) host
//   POST, PUT, PATCH with a body  + content-length content-type x-content-sha256
// except Object Storage PutObject and UploadPart, whose bodies (image
// parts, gigabytes) are exempt as in Oracle's SDKs: Content-MD5 protects
// them instead. x-content-sha256 is the base64 SHA-256 of the body (of ""
// for an empty one). (request-target) is the lowercase method, a space, and
// the path and query exactly as on the wire; host includes a non-default
// port, as libcurl sends it.
//
// A pure function: request, key and date in, headers out. The key is an
// OpenSSL RSA key loaded once (PEM, PKCS#1 or PKCS#8, optionally encrypted
// with the config's pass_phrase).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "clouds/http_request.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace ch {

using OciKey = std::shared_ptr<evp_pkey_st>;

// PEM text of an RSA private key; PASS_PHRASE for an encrypted one ("" if
// none). Errors never quote the key.
Result<OciKey> load_oci_key(std::string_view pem, const std::string& pass_phrase);

// RFC 7231 date, "Thu, 05 Jan 2014 21:31:40 GMT".
std::string oci_http_date(std::chrono::system_clock::time_point t);

struct OciSignature {
  std::string key_id;       // tenancy/user/fingerprint
  OciKey key;
};

// Whether the body of REQUEST goes unsigned: PUT of an object or a part
// (/n/NS/b/BUCKET/o/NAME, /n/NS/b/BUCKET/u/NAME).
bool oci_body_exempt(const HttpRequest& request);

// The signing string over HEADERS (lowercase names, "(request-target)"
// included) of REQUEST; headers are looked up case-insensitively.
std::string oci_signing_string(const HttpRequest& request, const std::vector<std::string>& headers);

// Signs REQUEST in place: sets date (DATE), and for a signed body
// content-length, content-type (application/json unless set) and
// x-content-sha256, then Authorization. EXEMPT_BODY: see oci_body_exempt.
Status oci_sign(HttpRequest& request, const OciSignature& signer, std::string_view date, bool exempt_body);

}  // namespace ch
