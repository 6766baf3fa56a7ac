// What every cloud: oci step starts from: the credentials (clouds/oci/
// oci_config.h), the API key, the region's endpoints, one HTTP client, and
// signed calls through the shared retry policy (429 TooManyRequests, 5xx,
// dropped connections; every attempt re-signed with a fresh date).
//
// Errors are one line: "OCI CreateImage (POST /20160918/images): HTTP 404
// NotAuthorizedOrNotFound: Authorization failed or requested resource not
// found. (opc-request-id R)"; Error::code is OCI's code, http_status set.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "clouds/http/http_client.h"
#include "clouds/http/retry.h"
#include "clouds/oci/oci_config.h"
#include "clouds/oci/oci_signer.h"

namespace ch {

struct OciCall {
  OciCall(std::string label_, std::string method_, std::string url_, std::vector<QueryParam> query_ = {},
          std::string body_ = {}, std::vector<HttpHeader> headers_ = {}, const FileBody* file_body_ = nullptr)
      : label(std::move(label_)), method(std::move(method_)), url(std::move(url_)), query(std::move(query_)),
        body(std::move(body_)), headers(std::move(headers_)), file_body(file_body_) {}
  std::string label;             // the operation, "CreateImage"
  std::string method = "GET";
  std::string url;               // endpoint + encoded path
  std::vector<QueryParam> query;
  std::string body;              // JSON (signed); empty for none
  std::vector<HttpHeader> headers;
  const FileBody* file_body = nullptr;  // an exempt upload body instead
  std::function<void(uint64_t)> on_upload_progress;
};

class OciClient {
 public:
  OciClient(HttpClient& http, OciSignature signer, RetryPolicy policy = RetryPolicy::from_env());
  // Sends CALL (retrying what is worth it); any final status is returned.
  Result<HttpResponse> send(const OciCall& call);
  // Same, but a status outside 2xx is an Error (see the header comment).
  Result<HttpResponse> call(const OciCall& call);
  // call() and its body parsed as JSON (null for an empty body).
  Result<nlohmann::json> call_json(const OciCall& call);

 private:
  HttpClient& http_;
  OciSignature signer_;
  RetryPolicy policy_;
};

// The one-line error of a non-2xx answer.
Error oci_error(const OciCall& call, const HttpResponse& response);

struct OciSession {
  OciEnv env;
  OciCredentials creds;
  std::string region;
  OciEndpoints endpoints;
  std::unique_ptr<HttpClient> http;
  std::unique_ptr<OciClient> client;
};

// Credentials and region only (validation, dry runs): no key read, no I/O
// but the config file. REGION: the YAML's home region, "" for the config's.
Result<OciCredentials> oci_credentials_from_process(OciEnv* env_out = nullptr);
// Reads the key and builds the session for REGION ("" : the config's).
Result<std::unique_ptr<OciSession>> open_oci_session(const std::string& region);

// RFC 3986 percent-encoding of one path segment ("/" encoded too).
std::string oci_segment(std::string_view raw);

}  // namespace ch

namespace ch {

// An Object Storage object: namespace, bucket, name (decoded).
struct OciObjectRef {
  std::string namespace_name, bucket, object;
  // oci://BUCKET@NAMESPACE/OBJECT, as lines and the YAML name it.
  std::string url() const { return "oci://" + bucket + "@" + namespace_name + "/" + object; }
};
// The object of an upload_url (ENDPOINT/n/NS/b/BUCKET/o/NAME, NAME encoded).
Result<OciObjectRef> parse_oci_object_url(const std::string& url);

}  // namespace ch
