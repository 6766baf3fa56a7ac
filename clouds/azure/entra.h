// Microsoft Entra ID (Azure AD) OAuth2 access tokens for Resource Manager
// and Storage, found in the order of the Azure SDKs' EnvironmentCredential /
// WorkloadIdentityCredential / ManagedIdentityCredential:
//   1. client secret:       AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET
//   2. client certificate:  AZURE_TENANT_ID + AZURE_CLIENT_ID +
//                           AZURE_CLIENT_CERTIFICATE_PATH (PEM with the private
//                           key and certificate; AZURE_CLIENT_CERTIFICATE_PASSWORD
//                           for an encrypted key): a JWT client assertion,
//                           RS256, header x5t#S256 (and x5t) of the certificate,
//                           claims aud = token endpoint, iss = sub = client id,
//                           jti, nbf, exp (10 min), signed with OpenSSL
//   3. workload identity:   AZURE_TENANT_ID + AZURE_CLIENT_ID +
//                           AZURE_FEDERATED_TOKEN_FILE (the file's JWT as
//                           client_assertion, re-read at every token request)
//   4. managed identity:    IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service,
//                           api-version 2019-08-01, header X-IDENTITY-HEADER),
//                           else IMDS http://169.254.169.254/metadata/identity/
//                           oauth2/token?api-version=2018-02-01&resource=R
//                           (header Metadata: true; AZURE_CLIENT_ID selects a
//                           user-assigned identity; 1 s connect timeout)
// 1-3 POST application/x-www-form-urlencoded to
//   {authority_host}/{tenant}/oauth2/v2.0/token
//   grant_type=client_credentials&client_id=..&scope=..&client_secret=..
//   (or client_assertion_type=urn:ietf:params:oauth:client-assertion-type:
//   jwt-bearer&client_assertion=JWT).
// Tokens are cached per scope until 5 minutes before expires_in/expires_on.
// Every secret (client secret, assertion, token) is registered with
// add_secret() so no log line can show it. Errors from Entra ("invalid_client",
// AADSTS codes) come back as one line: "Entra ID token for client C in tenant
// T: HTTP 401 invalid_client: AADSTS7000215: Invalid client secret provided."
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "clouds/azure/azure_env.h"
#include "clouds/http/http_client.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace ch {

class AzureTokenProvider {
 public:
  virtual ~AzureTokenProvider() = default;
  // A bearer token for SCOPE ("https://management.azure.com/.default"; for
  // managed identity the resource is SCOPE without "/.default"), from the
  // cache when still valid for 5 more minutes. Thread-safe.
  virtual Result<std::string> token(std::string_view scope) = 0;
  // "client secret of client C (tenant T)", "client certificate /p/c.pem of
  // client C (tenant T)", "workload identity (federated token file /p)",
  // "managed identity (IMDS)", "managed identity (App Service)".
  virtual std::string source() const = 0;
};

// The first source above that is configured; nothing is fetched yet (the
// first token() call does). CLIENT must outlive the provider. Logs the
// source once at info level. Errors: no source configured ("no Azure
// credentials: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET,
// or AZURE_CLIENT_CERTIFICATE_PATH, or AZURE_FEDERATED_TOKEN_FILE, or run
// where a managed identity is available"), an unreadable certificate file.
// Managed identity is only tried when nothing else is set and
// allow_managed_identity is true.
Result<std::unique_ptr<AzureTokenProvider>> resolve_azure_credentials(
    HttpClient& client, const AzureEnv& env, const AzureCloud& cloud,
    bool allow_managed_identity = true);

// A fixed token (tests).
std::unique_ptr<AzureTokenProvider> static_azure_token(std::string token, std::string source);

// Tokens are refreshed this long before they expire (the SDKs' margin).
inline constexpr std::chrono::minutes kAzureTokenRefreshMargin{5};

// The signing key and thumbprints of AZURE_CLIENT_CERTIFICATE_PATH: a PEM
// file holding the private key (PKCS#8, encrypted PKCS#8 or traditional RSA;
// PASSWORD decrypts it) and the certificate (the first whose public key
// matches the key), or a PKCS#12 file. Only RSA keys (RS256). Errors name
// the file, never the password.
class AzureClientCertificate {
 public:
  static Result<AzureClientCertificate> load(const std::string& path, const std::string& password);
  const std::string& x5t() const { return x5t_; }              // base64url SHA-1 of the DER cert
  const std::string& x5t_s256() const { return x5t_s256_; }    // base64url SHA-256 of the DER cert
  // The client assertion JWT: header {"alg":"RS256","typ":"JWT","x5t",
  // "x5t#S256"}, claims aud = TOKEN_URL, iss = sub = CLIENT_ID, jti (random
  // UUID), iat = nbf = NOW, exp = NOW + 10 min; base64url without padding,
  // RSASSA-PKCS1-v1_5 SHA-256 signature.
  Result<std::string> assertion(std::string_view client_id, std::string_view token_url,
                                std::chrono::sys_seconds now) const;

 private:
  std::shared_ptr<evp_pkey_st> key_;
  std::string x5t_;
  std::string x5t_s256_;
};

}  // namespace ch
