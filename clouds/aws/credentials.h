// AWS credentials, found in the AWS CLI's order and logged by source, never
// by value (https://docs.aws.amazon.com/sdkref/latest/guide/standardized-credentials.html):
//   1. environment: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN)
//   2. the profile (AWS_PROFILE, else "default") of ~/.aws/credentials and
//      ~/.aws/config (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE override
//      the paths; config sections are "[profile NAME]", "[default]"):
//      - role_arn + source_profile (chains allowed, cycles refused) or
//        credential_source = Environment | Ec2InstanceMetadata | EcsContainer:
//        STS AssumeRole (role_session_name, external_id, duration_seconds)
//      - role_arn + web_identity_token_file: AssumeRoleWithWebIdentity
//      - aws_access_key_id / aws_secret_access_key / aws_session_token
//      - credential_process: run it, read its JSON (Version 1)
//   3. web identity from the environment: AWS_WEB_IDENTITY_TOKEN_FILE +
//      AWS_ROLE_ARN (+ AWS_ROLE_SESSION_NAME)
//   4. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (host 169.254.170.2)
//      or AWS_CONTAINER_CREDENTIALS_FULL_URI, with
//      AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]
//   5. instance metadata, IMDSv2 (PUT /latest/api/token, then
//      /latest/meta-data/iam/security-credentials/ROLE), unless
//      AWS_EC2_METADATA_DISABLED=true; AWS_EC2_METADATA_SERVICE_ENDPOINT
//      overrides http://169.254.169.254 (tests point it at a local fake).
// Temporary credentials are refreshed five minutes before they expire.
// Every secret found is registered with the log redactor.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "base/result.h"
#include "clouds/aws/endpoints.h"
#include "clouds/http/http_client.h"
#include "clouds/signing/sigv4.h"

namespace ch {

class AwsCredentialProvider {
 public:
  virtual ~AwsCredentialProvider() = default;
  // Current credentials, refreshed when near expiry. Thread-safe.
  virtual Result<AwsCredentials> get() = 0;
  // Where they came from, for the log: "environment",
  // "profile 'ci' in /home/u/.aws/credentials", "assume-role
  // arn:aws:iam::1:role/x via profile 'base'", "web identity token file",
  // "container endpoint", "instance metadata (IMDSv2) role 'r'".
  virtual std::string source() const = 0;
};

// Finds the first source in the order above that has credentials. HTTP (STS,
// container) goes through CLIENT, which must outlive the provider; IMDS uses
// its own client with 1 s timeouts. REGION is used for the STS endpoint
// ("": default_aws_region, else us-east-1). The first credentials are
// fetched before returning, and the source is logged once at info level.
// Errors: none found ("no AWS credentials: set AWS_ACCESS_KEY_ID/..., or a
// profile in ~/.aws/credentials, ..."), a named profile that does not exist,
// a source that exists but fails (bad file, STS refusal with its message).
Result<std::unique_ptr<AwsCredentialProvider>> resolve_aws_credentials(
    HttpClient& client, const AwsEnv& env, std::string_view region);

// A fixed set (tests, and sources that never expire).
std::unique_ptr<AwsCredentialProvider> static_aws_credentials(AwsCredentials c, std::string source);

// The region when the YAML gives none: AWS_REGION, AWS_DEFAULT_REGION, the
// profile's region; "" when none.
std::string default_aws_region(const AwsEnv& env);

// The profile's endpoint_url, if any ("" otherwise).
std::string profile_endpoint_url(const AwsEnv& env);

}  // namespace ch
