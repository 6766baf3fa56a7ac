// The credential sources that fetch temporary credentials (STS, the
// container endpoint, instance metadata, credential_process) and the
// provider that caches them and refreshes them before they expire. The
// chain in credentials.cc picks and combines them; tests call them directly.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "clouds/aws/credentials.h"
#include "clouds/aws/endpoints.h"
#include "clouds/http/http_client.h"
#include "clouds/signing/sigv4.h"

namespace ch {

struct TimedAwsCredentials {
  AwsCredentials credentials;
  std::optional<std::chrono::sys_seconds> expiration;  // nullopt: never expires
};
using AwsCredentialFetch = std::function<Result<TimedAwsCredentials>()>;

// Refresh this long before Expiration (the AWS SDKs' margin).
inline constexpr std::chrono::minutes kAwsRefreshMargin{5};

// A provider that calls FETCH on the first get() and again once the cached
// credentials are within kAwsRefreshMargin of expiry; concurrent callers
// wait for one fetch. A failed refresh while the old credentials are still
// valid logs the failure and hands out the old ones. Every secret and
// token fetched is registered with the log redactor.
std::unique_ptr<AwsCredentialProvider> refreshing_aws_credentials(AwsCredentialFetch fetch,
                                                                  std::string source);

// add_secret (helper/output.h) for credential material. Strings shorter
// than 8 bytes are skipped: no real AWS secret (40 characters) or token is
// that short, and redacting "s" from every log line would garble them all.
void add_aws_secret(const std::string& secret);

// "2011-07-15T23:28:33.359Z", "2019-11-01T19:54:58Z", "...+02:00" → UTC
// seconds (fractions dropped).
Result<std::chrono::sys_seconds> parse_aws_time(std::string_view text);

// STS query API, version 2011-06-15, at resolve_aws_endpoint(kSts, region).
struct AssumeRoleParams {
  std::string role_arn;
  std::string session_name;       // "" : "cloud_helper-<unix time>"
  std::string external_id;        // AssumeRole only; "" : none
  long duration_seconds = 0;      // 0: STS default (1 hour)
  std::string region;             // STS region ("" : us-east-1)
};
// AssumeRole signed with SOURCE's credentials.
Result<TimedAwsCredentials> sts_assume_role(HttpClient& client, const AwsEnv& env,
                                            AwsCredentialProvider& source,
                                            const AssumeRoleParams& params);
// AssumeRoleWithWebIdentity (unsigned) with the token read from TOKEN_FILE
// on every call (Kubernetes rotates it).
Result<TimedAwsCredentials> sts_assume_role_with_web_identity(HttpClient& client,
                                                              const AwsEnv& env,
                                                              const AssumeRoleParams& params,
                                                              const std::string& token_file);
// <Credentials> of an AssumeRole* response.
Result<TimedAwsCredentials> parse_sts_credentials(std::string_view xml);

// The container endpoint (ECS task role, EKS Pod Identity): GET of
// AWS_CONTAINER_CREDENTIALS_FULL_URI, or http://169.254.170.2 +
// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, with Authorization from
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read per call) or
// AWS_CONTAINER_AUTHORIZATION_TOKEN. A plain-http full URI must point at a
// loopback address or the ECS/EKS link-local agents, as the SDKs require.
Result<TimedAwsCredentials> fetch_container_credentials(HttpClient& client, const AwsEnv& env);
// The URL fetch_container_credentials uses; errors for a disallowed one.
Result<std::string> container_credentials_url(const AwsEnv& env);

// IMDSv2 at AWS_EC2_METADATA_SERVICE_ENDPOINT (default http://169.254.169.254;
// AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6: http://[fd00:ec2::254]).
// CLIENT should use imds_http_config(). *ROLE receives the role name.
Result<TimedAwsCredentials> fetch_imds_credentials(HttpClient& client, const AwsEnv& env,
                                                   std::string* role);
// Off-EC2 the metadata address does not answer: fail fast (1 s connect).
HttpClient::Config imds_http_config();

// Runs COMMAND with /bin/sh -c and reads its stdout as the credential_process
// JSON (Version 1, AccessKeyId, SecretAccessKey, SessionToken, Expiration).
// Its stderr goes to ours. Errors never quote its output.
Result<TimedAwsCredentials> run_credential_process(const std::string& command);

}  // namespace ch
