// Signed calls to Alibaba Cloud: OSS (REST, V4 or V1 signatures, XML
// errors) and ECS (RPC, Version 2014-05-26, JSON), with credentials,
// endpoints, retries and error messages in one place.
//
// Credentials, in the order the Alibaba Cloud CLI and SDKs use:
//   1. ALIBABA_CLOUD_ACCESS_KEY_ID + ALIBABA_CLOUD_ACCESS_KEY_SECRET
//      (+ ALIBABA_CLOUD_SECURITY_TOKEN for STS);
//   2. ~/.aliyun/config.json (the aliyun CLI's): the profile named by
//      ALIBABA_CLOUD_PROFILE, else the file's "current", mode AK
//      (access_key_id, access_key_secret) or StsToken (+ sts_token).
// Endpoints: https://oss-REGION.aliyuncs.com (virtual-hosted: the bucket
// is the first label of the Host) and https://ecs.REGION.aliyuncs.com, or
// https://ecs.aliyuncs.com for the regions ECS serves there. For tests,
// ALIBABA_CLOUD_OSS_ENDPOINT and ALIBABA_CLOUD_ECS_ENDPOINT (URLs) replace
// where requests go. OSS requests to an override still carry the real
// virtual-hosted Host header (BUCKET.oss-REGION.aliyuncs.com): libcurl
// sends a Host header given with the request instead of its own, so the
// request on the wire is byte for byte what OSS itself would get, only the
// TCP peer differs (path style is deprecated on OSS and refused for
// buckets made after 2020).
//
// Errors read "OSS UploadPart 3 of oss://b/k: HTTP 403 SignatureDoesNotMatch:
// The request signature ... (request id 5F..)" and "ECS ImportImage
// (cn-hangzhou): HTTP 400 InvalidParameter: ... (request id ..)", with
// Error::code and http_status set; "after N attempts" joins the request id
// when retries came first. Retried (clouds/http/retry.h): ECS's Throttling,
// Throttling.User, Throttling.Api (HTTP 400) and every 5xx but 501 (ECS
// ServiceUnavailable, OSS TotalQpsLimitExceeded and the other 503 flow
// controls). Never retried: quota refusals such as ECS QuotaExceed.Image
// (HTTP 403), whose message then names the region whose quota is used up.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "clouds/alicloud/alicloud_sign.h"
#include "clouds/http/http_client.h"
#include "clouds/http/retry.h"

namespace ch {

using AliEnv = std::map<std::string, std::string>;

// The credentials of the order above. HOME is the directory holding .aliyun.
Result<AliCredentials> resolve_alicloud_credentials(const AliEnv& env, const std::string& home);

// "oss-cn-hangzhou.aliyuncs.com", "ecs.aliyuncs.com", "ecs.eu-central-1.aliyuncs.com".
std::string oss_host(const std::string& region);
std::string ecs_host(const std::string& region);

// Where requests go when the environment overrides the endpoints.
struct AliEndpoints {
  std::optional<HttpRequest> oss;  // scheme, host, port (and a path prefix) of ALIBABA_CLOUD_OSS_ENDPOINT
  std::optional<HttpRequest> ecs;
};
// Parses the two override variables; a malformed URL is an error naming it.
Result<AliEndpoints> alicloud_endpoints(const AliEnv& env);

// One OSS request. KEY is the object key as stored ("" for the bucket).
struct OssCall {
  std::string what;    // "OSS UploadPart 3 of": the object URL is appended for messages
  std::string method;
  std::string region;  // the bucket's
  std::string bucket;
  std::string key;
  std::vector<QueryParam> query;
  std::vector<HttpHeader> headers;
  std::string body;
  const FileBody* file_body = nullptr;
  std::function<void(uint64_t)> progress;
  std::vector<long> accept;  // non-2xx statuses returned as responses (404 of a HEAD)
};

class AliClient {
 public:
  AliClient(HttpClient& http, AliCredentials credentials, AliEndpoints endpoints,
            OssSignature oss_signature = OssSignature::kV4, RetryPolicy retry = RetryPolicy::from_env());

  // Sends CALL (signed anew for every attempt); a non-2xx status not in
  // ACCEPT is an error.
  Result<HttpResponse> oss(const OssCall& call);

  // ECS RPC ACTION in REGION (RegionId is added unless PARAMS has one);
  // the response's JSON on 2xx.
  Result<nlohmann::json> ecs(const std::string& region, const std::string& action,
                             std::vector<std::pair<std::string, std::string>> params);

  const AliCredentials& credentials() const { return credentials_; }

 private:
  HttpClient& http_;
  AliCredentials credentials_;
  AliEndpoints endpoints_;
  OssSignature oss_signature_;
  RetryPolicy retry_;
};

}  // namespace ch
