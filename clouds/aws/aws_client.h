// Signed calls to AWS services: endpoint resolution, SigV4, retries and
// error documents in one place, for S3 (REST-XML), EBS direct (REST-JSON)
// and EC2 (query protocol, API version 2016-11-15). The service modules
// (s3.h, ebs.h, ec2.h) are thin layers over these three verbs.
//
// Errors carry the service's code and HTTP status (base/result.h Error::code,
// http_status) and read "EC2 RegisterImage (eu-west-2): HTTP 400
// InvalidAMIName.Duplicate: AMI name x is already in use (request id 7f..)".
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "clouds/aws/credentials.h"
#include "clouds/aws/endpoints.h"
#include "clouds/http/http_client.h"
#include "clouds/http/retry.h"

namespace ch {

class AwsClient {
 public:
  // All three are borrowed and must outlive the client.
  AwsClient(HttpClient& http, AwsCredentialProvider& credentials, AwsEnv env,
            RetryPolicy retry = RetryPolicy::from_env());

  // EC2 query API: POST form body "Action=A&Version=2016-11-15&k=v..."
  // (params in the given order; list params spelled by the caller, e.g.
  // "Filter.1.Name"). Returns the response XML on 2xx.
  Result<std::string> ec2(const std::string& region, const std::string& action,
                          const std::vector<std::pair<std::string, std::string>>& params);

  // Any query-protocol service, as ec2() is for EC2: STS AssumeRole is
  // query(kSts, region, "AssumeRole", "2011-06-15", {...}). Messages name
  // the call as "STS AssumeRole (us-east-1)".
  Result<std::string> query(AwsService service, const std::string& region,
                            const std::string& action, const std::string& version,
                            const std::vector<std::pair<std::string, std::string>>& params);

  // A REST call to S3 or EBS. REQUEST holds method, raw path (unencoded, the
  // client encodes it: for S3 the object key after "/BUCKET" or on the
  // bucket host), query and headers; scheme/host/port are filled from the
  // endpoint. For S3, BUCKET selects the host/path style. A FileBody in
  // OPTIONS is hashed per attempt unless payload_sha256 is given (S3 may use
  // UNSIGNED-PAYLOAD over TLS; never over plain http). Non-2xx answers become
  // errors unless their status is in ACCEPT (e.g. 404 for a HEAD probe).
  struct RestCall {
    AwsService service = AwsService::kS3;
    std::string region;
    std::string bucket;            // S3 only
    std::string raw_path;          // "/KEY" for S3 (after the bucket), "/snapshots/ID/blocks/N" for EBS
    HttpRequest request;           // method, query, headers, body
    std::string payload_sha256;    // hex; "" = hash body / file range
    bool unsigned_payload = false; // S3 over https only
    std::vector<long> accept;      // non-2xx statuses returned as responses
    std::string what;              // "S3 UploadPart 17" for messages
  };
  Result<HttpResponse> rest(const RestCall& call, const SendOptions& options = {});

  const AwsEnv& env() const { return env_; }
  HttpClient& http() { return http_; }
  AwsCredentialProvider& credentials() { return credentials_; }

 private:
  HttpClient& http_;
  AwsCredentialProvider& credentials_;
  AwsEnv env_;
  RetryPolicy retry_;
  std::string profile_endpoint_url_;  // the profile's endpoint_url, read once
};

// "<Code>X</Code>" / JSON "__type"/"code"/"message" → Error with code,
// status and request id; WHAT names the call.
Error aws_error(const std::string& what, const HttpResponse& response);

// The form body of a query-protocol call: "Action=A&Version=V&k=v..." with
// keys and values encoded by aws_uri_encode.
std::string aws_query_body(const std::string& action, const std::string& version,
                           const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace ch
