// Google OAuth2 access tokens, found as Google's client libraries find
// Application Default Credentials (https://google.aip.dev/auth/4110):
//   1. GOOGLE_APPLICATION_CREDENTIALS: a JSON credentials file
//   2. the gcloud ADC file: $CLOUDSDK_CONFIG/application_default_credentials.json
//      (CLOUDSDK_CONFIG defaults to ~/.config/gcloud)
//   3. the metadata server: http://$GCE_METADATA_HOST (169.254.169.254)
//      /computeMetadata/v1/instance/service-accounts/default/token, header
//      Metadata-Flavor: Google
// Credentials file types:
//   service_account   a JWT assertion (RS256 with private_key, kid =
//                     private_key_id; iss = client_email, scope, aud =
//                     token_uri, iat, exp = iat + 1 h) POSTed to token_uri:
//                     grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer
//   authorized_user   grant_type=refresh_token with client_id, client_secret,
//                     refresh_token to token_uri (default Google's)
//   external_account  workload identity federation: the subject token from
//                     credential_source.file (text, or JSON with
//                     format.subject_token_field_name) exchanged at token_url
//                     (STS, RFC 8693 token-exchange); with
//                     service_account_impersonation_url the STS token then
//                     buys a service account's token (IAM Credentials
//                     generateAccessToken)
// Tokens are cached until 5 minutes before they expire. Every secret (key,
// client secret, refresh token, assertion, subject token, token) is given to
// add_secret(). Errors are one line naming the credential and the endpoint:
// "Google token for service account sa@p.iam.gserviceaccount.com from
// https://oauth2.googleapis.com/token: HTTP 400 invalid_grant: Invalid JWT Signature."
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/time.h"
#include "clouds/http/http_client.h"

namespace ch {

inline constexpr std::string_view kGoogleCloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform";
inline constexpr std::string_view kGoogleTokenUri = "https://oauth2.googleapis.com/token";
inline constexpr std::chrono::minutes kGoogleTokenRefreshMargin{5};

// The environment as the Google libraries read it; tests hand in any map.
struct GcpEnv {
  std::map<std::string, std::string> vars;
  std::string home;
  static GcpEnv from_process();
  std::string get(std::string_view name) const;  // "" when unset
};

// A parsed credentials file.
struct GoogleCredentials {
  std::string type;    // service_account | authorized_user | external_account
  std::string origin;  // where it came from: "GOOGLE_APPLICATION_CREDENTIALS=/p/sa.json"
  std::string project_id;
  // service_account
  std::string client_email, private_key, private_key_id;
  std::string token_uri;  // also authorized_user's (Google's default when absent)
  // authorized_user
  std::string client_id, client_secret, refresh_token, quota_project_id;
  // external_account
  std::string audience, subject_token_type, token_url, impersonation_url;
  std::string subject_token_file;   // credential_source.file
  std::string subject_token_field;  // credential_source.format.subject_token_field_name ("" : text)
  // "service account sa@p.iam", "authorized user (client C)", "external account (audience A)"
  std::string describe() const;
};

// Parses a credentials JSON document (ORIGIN names it in errors). Checks
// the fields each type needs; other types (impersonated_service_account,
// gdch_service_account) are refused by name. Registers the secrets.
Result<GoogleCredentials> parse_google_credentials(std::string_view json_text, const std::string& origin);

// The signed JWT a service account trades for a token (see above). NOW is
// the issue time. Errors: an unreadable or non-RSA private_key.
Result<std::string> google_service_account_assertion(const GoogleCredentials& c, std::string_view scope,
                                                     std::chrono::sys_seconds now);

class GoogleTokenProvider {
 public:
  virtual ~GoogleTokenProvider() = default;
  // A bearer token for the cloud-platform scope, cached. Thread-safe.
  virtual Result<std::string> token() = 0;
  // "service account sa@... (GOOGLE_APPLICATION_CREDENTIALS=/p)", "metadata server (http://h)".
  virtual std::string source() const = 0;
  // The project the credentials name ("" if none); for the metadata server
  // it is asked for (project/project-id).
  virtual Result<std::string> project_id() = 0;
};

// The first source of the ADC order that exists; nothing is fetched yet.
// Errors: an unreadable or invalid credentials file (a missing
// GOOGLE_APPLICATION_CREDENTIALS file is an error, as in the libraries).
Result<std::unique_ptr<GoogleTokenProvider>> resolve_google_credentials(HttpClient& client, const GcpEnv& env);

}  // namespace ch
