// Entra ID token sources. Each source is a fetch function (scope in, token
// and expiry out, no state); one caching provider wraps them all, so the
// cache, the refresh margin and the locking exist once.
//
// Protocols:
//  - client credentials grant, Microsoft identity platform v2.0
//    (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow),
//    with a secret or a signed assertion
//    (https://learn.microsoft.com/entra/identity-platform/certificate-credentials);
//  - App Service / Functions managed identity, api-version 2019-08-01
//    (https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference);
//  - the VM Instance Metadata Service token endpoint, api-version 2018-02-01
//    (https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token).
#include "clouds/azure/entra.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <nlohmann/json.hpp>

#include <cctype>
#include <charconv>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "clouds/http/retry.h"
#include "clouds/signing/digest.h"
#include "helper/output.h"

namespace ch {

namespace {

using Clock = std::chrono::system_clock;

constexpr std::string_view kNoCredentials =
    "no Azure credentials: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, "
    "or AZURE_CLIENT_CERTIFICATE_PATH, or AZURE_FEDERATED_TOKEN_FILE, or run where a managed "
    "identity is available";
constexpr std::string_view kAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
constexpr std::string_view kImdsDefault = "http://169.254.169.254";
constexpr std::chrono::seconds kAssertionLifetime{600};

// Redacting very short strings would garble every log line; no real
// secret, assertion or token is that short.
void add_azure_secret(const std::string& secret) {
  if (secret.size() >= 8) add_secret(secret);
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string base64url(std::span<const uint8_t> bytes) {
  std::string s = base64_encode(bytes);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return s;
}

// application/x-www-form-urlencoded with every byte but RFC 3986's
// unreserved ones percent-encoded (what every OAuth server accepts).
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  auto put = [&](std::string_view s) {
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
        out += static_cast<char>(c);
      } else {
        out += '%';
        out += kHex[c >> 4];
        out += kHex[c & 15];
      }
    }
  };
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    put(k);
    out += '=';
    put(v);
  }
  return out;
}

Result<std::string> read_small_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{what + " " + path + ": cannot open"};
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error{what + " " + path + ": read error"};
  std::string s = std::move(text).str();
  if (s.size() > (1 << 20)) return Error{what + " " + path + ": larger than 1 MiB"};
  return s;
}

// ---- client certificate -------------------------------------------------

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct Pkcs12Free {
  void operator()(PKCS12* p) const { PKCS12_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

std::shared_ptr<EVP_PKEY> own_key(EVP_PKEY* k) { return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free); }

BioPtr memory_bio(const std::string& data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// PEM password callback: U is the password (possibly empty).
int pem_password(char* buf, int size, int, void* u) {
  const std::string& password = *static_cast<const std::string*>(u);
  if (password.size() > static_cast<size_t>(size)) return -1;
  std::copy(password.begin(), password.end(), buf);
  return static_cast<int>(password.size());
}

std::string uuid4() {
  uint8_t b[16];
  CH_CHECK(RAND_bytes(b, sizeof b) == 1);
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string h = hex_encode(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" +
         h.substr(20);
}

// ---- token answers and errors -------------------------------------------

struct FetchedToken {
  std::string token;
  Clock::time_point expires;
};

std::optional<long long> json_seconds(const nlohmann::json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end()) return std::nullopt;
  if (it->is_number_integer()) return it->get<long long>();
  if (it->is_number()) return static_cast<long long>(it->get<double>());
  if (!it->is_string()) return std::nullopt;
  const std::string& s = it->get_ref<const std::string&>();
  long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// {"access_token", "expires_in" (seconds from now, number or string)} from
// Entra; managed identity endpoints send "expires_on" (unix seconds, a
// string) and IMDS also expires_in. expires_in is preferred: it does not
// depend on our clock agreeing with the server's.
Result<FetchedToken> parse_token_answer(std::string_view body, const std::string& what) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Error{what + ": answer is not a JSON object"};
  auto it = doc.find("access_token");
  if (it == doc.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
    return Error{what + ": answer has no access_token"};
  FetchedToken out;
  out.token = it->get<std::string>();
  add_azure_secret(out.token);
  if (auto in = json_seconds(doc, "expires_in")) {
    out.expires = Clock::now() + std::chrono::seconds(*in);
  } else if (auto on = json_seconds(doc, "expires_on")) {
    out.expires = Clock::time_point(std::chrono::seconds(*on));
  } else {
    return Error{what + ": answer has neither expires_in nor expires_on"};
  }
  return out;
}

std::string first_line(std::string_view s) {
  std::string line = trim(s.substr(0, s.find_first_of("\r\n")));
  if (line.size() > 300) line = line.substr(0, 300) + "...";
  return line;
}

// "WHAT: HTTP 401 invalid_client: AADSTS7000215: Invalid client secret
// provided. (request id R)". OAuth errors carry error + error_description
// (whose first line is the AADSTS message; the rest repeats trace ids);
// App Service and IMDS may answer {"error":{"code","message"}} or
// {"message"} instead.
Error token_error(const std::string& what, const HttpResponse& response) {
  std::string code, message, request_id = response.request_id;
  nlohmann::json doc = nlohmann::json::parse(response.body, nullptr, false);
  auto text = [](const nlohmann::json& obj, const char* key) -> std::string {
    auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (doc.is_object()) {
    auto err = doc.find("error");
    if (err != doc.end() && err->is_object()) {
      code = text(*err, "code");
      message = text(*err, "message");
    } else {
      code = text(doc, "error");
      message = text(doc, "error_description");
    }
    if (message.empty()) message = text(doc, "message");
    if (message.empty()) message = text(doc, "Message");
    if (request_id.empty()) request_id = text(doc, "trace_id");
  } else if (!response.body.empty() && response.body.front() != '<') {
    message = response.body;  // plain text; HTML error pages say nothing useful
  }
  message = first_line(message);
  std::string line = what + ": HTTP " + std::to_string(response.status);
  if (!code.empty()) line += " " + code;
  if (!message.empty()) line += ": " + message;
  if (!request_id.empty()) line += " (request id " + request_id + ")";
  return Error{line, code, response.status};
}

Result<FetchedToken> send_token_request(HttpClient& client, const RetryPolicy& policy,
                                        const std::string& what,
                                        const std::function<Result<HttpRequest>()>& make_request) {
  SendOptions options;
  options.label = what;
  auto response = send_with_retry(client, policy, [&](int) { return make_request(); }, options);
  if (!response.ok()) return response.error().wrap(what);
  if (response->status != 200) return token_error(what, *response);
  return parse_token_answer(response->body, what);
}

// ---- the provider -------------------------------------------------------

using TokenFetch = std::function<Result<FetchedToken>(const std::string& scope)>;

class CachingProvider : public AzureTokenProvider {
 public:
  CachingProvider(TokenFetch fetch, std::string source, std::shared_ptr<void> keep_alive = {})
      : fetch_(std::move(fetch)), source_(std::move(source)), keep_alive_(std::move(keep_alive)) {}

  Result<std::string> token(std::string_view scope_view) override {
    const std::string scope(scope_view);
    // One lock for all scopes: concurrent callers wait for one fetch
    // instead of each asking Entra for the same token.
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = Clock::now();
    auto it = cache_.find(scope);
    if (it != cache_.end() && now < it->second.expires - kAzureTokenRefreshMargin) return it->second.token;
    auto fresh = fetch_(scope);
    if (!fresh.ok()) {
      if (it != cache_.end() && now < it->second.expires) {
        log_info("azure: refreshing the token for " + scope + " from " + source_ + " failed (" +
                 fresh.message() + "); using the current one until it expires");
        return it->second.token;
      }
      return fresh.error();
    }
    add_azure_secret(fresh->token);
    log_debug("azure: token for " + scope + " from " + source_ + ", valid " +
              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(fresh->expires - now).count()) +
              " s");
    cache_[scope] = *fresh;
    return fresh->token;
  }
  std::string source() const override { return source_; }

 private:
  TokenFetch fetch_;
  std::string source_;
  std::shared_ptr<void> keep_alive_;  // what FETCH refers to (the IMDS client)
  std::mutex mu_;
  std::map<std::string, FetchedToken> cache_;
};

class StaticProvider : public AzureTokenProvider {
 public:
  StaticProvider(std::string token, std::string source)
      : token_(std::move(token)), source_(std::move(source)) {}
  Result<std::string> token(std::string_view) override { return token_; }
  std::string source() const override { return source_; }

 private:
  std::string token_;
  std::string source_;
};

// Managed identity wants a resource, not a scope.
std::string scope_to_resource(std::string_view scope) {
  constexpr std::string_view kSuffix = "/.default";
  if (scope.size() > kSuffix.size() && scope.substr(scope.size() - kSuffix.size()) == kSuffix)
    scope.remove_suffix(kSuffix.size());
  return std::string(scope);
}

// Tenant ids go into the token URL's path: a GUID or a domain name.
bool valid_tenant(std::string_view tenant) {
  if (tenant.empty() || tenant.size() > 256) return false;
  for (char c : tenant)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') return false;
  return true;
}

// Off Azure nothing answers at the IMDS address: fail within seconds.
HttpClient::Config managed_identity_http_config() {
  HttpClient::Config config;
  config.connect_timeout_seconds = 1;
  config.request_timeout_seconds = 10;
  config.stall_seconds = 10;
  config.max_in_flight = 2;
  return config;
}

}  // namespace

// ---- AzureClientCertificate ---------------------------------------------

Result<AzureClientCertificate> AzureClientCertificate::load(const std::string& path,
                                                            const std::string& password) {
  const std::string what = "client certificate " + path;
  CH_ASSIGN(data, read_small_file(path, "client certificate"));
  std::shared_ptr<EVP_PKEY> key;
  X509Ptr cert;
  if (data.find("-----BEGIN") != std::string::npos) {
    {
      BioPtr bio = memory_bio(data);
      std::string pw = password;
      EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, pem_password, &pw);
      if (k == nullptr)
        return Error{what + ": no private key could be read" +
                     (password.empty() ? std::string(" (encrypted? set AZURE_CLIENT_CERTIFICATE_PASSWORD)")
                                       : std::string(" (wrong AZURE_CLIENT_CERTIFICATE_PASSWORD?)"))};
      key = own_key(k);
    }
    // The file may hold a chain: the leaf is the one matching the key.
    BioPtr bio = memory_bio(data);
    while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      X509Ptr candidate(x);
      if (X509_check_private_key(candidate.get(), key.get()) == 1) {
        cert = std::move(candidate);
        break;
      }
    }
    if (!cert) return Error{what + ": no certificate matching the private key"};
  } else {
    BioPtr bio = memory_bio(data);
    std::unique_ptr<PKCS12, Pkcs12Free> p12(d2i_PKCS12_bio(bio.get(), nullptr));
    if (!p12) return Error{what + ": neither PEM nor PKCS#12"};
    EVP_PKEY* k = nullptr;
    X509* x = nullptr;
    if (PKCS12_parse(p12.get(), password.c_str(), &k, &x, nullptr) != 1 || k == nullptr || x == nullptr) {
      EVP_PKEY_free(k);
      X509_free(x);
      return Error{what + ": cannot read the PKCS#12 key and certificate (wrong password?)"};
    }
    key = own_key(k);
    cert.reset(x);
  }
  ERR_clear_error();
  if (EVP_PKEY_id(key.get()) != EVP_PKEY_RSA)
    return Error{what + ": the private key is not RSA (Entra ID client assertions are RS256)"};
  unsigned char* der = nullptr;
  int der_len = i2d_X509(cert.get(), &der);
  if (der_len <= 0) return Error{what + ": cannot encode the certificate"};
  std::string der_bytes(reinterpret_cast<char*>(der), static_cast<size_t>(der_len));
  OPENSSL_free(der);
  uint8_t sha1[EVP_MAX_MD_SIZE];
  unsigned int sha1_len = 0;
  CH_CHECK(EVP_Digest(der_bytes.data(), der_bytes.size(), sha1, &sha1_len, EVP_sha1(), nullptr) == 1);
  AzureClientCertificate out;
  out.key_ = std::move(key);
  out.x5t_ = base64url({sha1, sha1_len});
  out.x5t_s256_ = base64url(sha256(der_bytes));
  return out;
}

Result<std::string> AzureClientCertificate::assertion(std::string_view client_id,
                                                      std::string_view token_url,
                                                      std::chrono::sys_seconds now) const {
  const long long t = now.time_since_epoch().count();
  nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}, {"x5t", x5t_}, {"x5t#S256", x5t_s256_}};
  nlohmann::json claims = {{"aud", token_url},
                           {"iss", client_id},
                           {"sub", client_id},
                           {"jti", uuid4()},
                           {"nbf", t},
                           {"iat", t},
                           {"exp", t + kAssertionLifetime.count()}};
  const std::string h = header.dump(), c = claims.dump();
  const std::string signing_input = base64url(bytes_of(h)) + "." + base64url(bytes_of(c));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  size_t sig_len = 0;
  // RSA keys sign with PKCS#1 v1.5 padding unless told otherwise: RS256.
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &sig_len,
                     reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) != 1)
    return Error{"signing the client assertion failed"};
  std::vector<uint8_t> sig(sig_len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &sig_len,
                     reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) != 1)
    return Error{"signing the client assertion failed"};
  sig.resize(sig_len);
  std::string jwt = signing_input + "." + base64url(sig);
  add_azure_secret(jwt);
  return jwt;
}

// ---- resolution ---------------------------------------------------------

std::unique_ptr<AzureTokenProvider> static_azure_token(std::string token, std::string source) {
  add_azure_secret(token);
  return std::make_unique<StaticProvider>(std::move(token), std::move(source));
}

Result<std::unique_ptr<AzureTokenProvider>> resolve_azure_credentials(
    HttpClient& client, const AzureEnv& env, const AzureCloud& cloud, bool allow_managed_identity) {
  const std::string tenant = env.get("AZURE_TENANT_ID");
  const std::string client_id = env.get("AZURE_CLIENT_ID");
  const std::string secret = env.get("AZURE_CLIENT_SECRET");
  const std::string cert_path = env.get("AZURE_CLIENT_CERTIFICATE_PATH");
  const std::string password = env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD");
  const std::string token_file = env.get("AZURE_FEDERATED_TOKEN_FILE");
  add_azure_secret(secret);
  add_azure_secret(password);

  std::unique_ptr<AzureTokenProvider> provider;
  const char* chosen = !secret.empty()      ? "AZURE_CLIENT_SECRET"
                       : !cert_path.empty() ? "AZURE_CLIENT_CERTIFICATE_PATH"
                       : !token_file.empty() ? "AZURE_FEDERATED_TOKEN_FILE"
                                             : nullptr;
  if (chosen != nullptr) {
    // A half-configured service principal is a mistake to report, not a
    // reason to fall through to managed identity (which would then fail
    // with a confusing timeout, or worse, act as a different identity).
    if (tenant.empty() || client_id.empty())
      return Error{std::string(chosen) + " is set but " +
                   (tenant.empty() && client_id.empty() ? "AZURE_TENANT_ID and AZURE_CLIENT_ID are not"
                    : tenant.empty()                    ? "AZURE_TENANT_ID is not"
                                                        : "AZURE_CLIENT_ID is not")};
    if (!valid_tenant(tenant))
      return Error{"AZURE_TENANT_ID='" + tenant + "': not a tenant id or domain name"};
    const std::string token_url = cloud.authority_host + "/" + tenant + "/oauth2/v2.0/token";
    const std::string what = "Entra ID token for client " + client_id + " in tenant " + tenant;
    const std::string who = "client " + client_id + " (tenant " + tenant + ")";
    HttpClient* http = &client;
    // Every grant: client credentials, form-encoded, the credential fields
    // from CREDENTIAL (called per attempt: assertions are fresh each time).
    auto fetch_with = [=](std::function<Result<std::vector<std::pair<std::string, std::string>>>()> credential) {
      return [=](const std::string& scope) -> Result<FetchedToken> {
        CH_ASSIGN(fields, credential());
        return send_token_request(*http, RetryPolicy::from_env(), what, [&]() -> Result<HttpRequest> {
          CH_ASSIGN(request, request_from_url(token_url));
          request.method = "POST";
          request.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
          request.headers.push_back({"Accept", "application/json"});
          std::vector<std::pair<std::string, std::string>> form = {
              {"grant_type", "client_credentials"}, {"client_id", client_id}, {"scope", scope}};
          form.insert(form.end(), fields.begin(), fields.end());
          request.body = form_encode(form);
          return request;
        });
      };
    };
    CH_TRY(request_from_url(token_url));  // a bad authority host fails now, not at first use
    if (!secret.empty()) {
      provider = std::make_unique<CachingProvider>(
          fetch_with([=]() -> Result<std::vector<std::pair<std::string, std::string>>> {
            return std::vector<std::pair<std::string, std::string>>{{"client_secret", secret}};
          }),
          "client secret of " + who);
    } else if (!cert_path.empty()) {
      CH_ASSIGN(cert, AzureClientCertificate::load(cert_path, password));
      auto shared_cert = std::make_shared<AzureClientCertificate>(std::move(cert));
      provider = std::make_unique<CachingProvider>(
          fetch_with([=]() -> Result<std::vector<std::pair<std::string, std::string>>> {
            CH_ASSIGN(jwt, shared_cert->assertion(client_id, token_url,
                                                  std::chrono::floor<std::chrono::seconds>(Clock::now())));
            return std::vector<std::pair<std::string, std::string>>{
                {"client_assertion_type", std::string(kAssertionType)}, {"client_assertion", jwt}};
          }),
          "client certificate " + cert_path + " of " + who);
    } else {
      // Kubernetes rotates the projected token: read it for every request.
      provider = std::make_unique<CachingProvider>(
          fetch_with([=]() -> Result<std::vector<std::pair<std::string, std::string>>> {
            auto text = read_small_file(token_file, "federated token file");
            if (!text.ok()) return text.error().wrap(what);
            std::string jwt = trim(*text);
            if (jwt.empty()) return Error{what + ": federated token file " + token_file + " is empty"};
            add_azure_secret(jwt);
            return std::vector<std::pair<std::string, std::string>>{
                {"client_assertion_type", std::string(kAssertionType)}, {"client_assertion", jwt}};
          }),
          "workload identity (federated token file " + token_file + ")");
    }
  } else if (!allow_managed_identity) {
    return Error{std::string(kNoCredentials)};
  } else {
    auto mi_client = std::make_shared<HttpClient>(managed_identity_http_config());
    HttpClient* http = mi_client.get();
    const std::string endpoint = env.get("IDENTITY_ENDPOINT");
    const std::string identity_header = env.get("IDENTITY_HEADER");
    if (!endpoint.empty() && !identity_header.empty()) {
      add_azure_secret(identity_header);
      CH_TRY(request_from_url(endpoint));
      provider = std::make_unique<CachingProvider>(
          [=](const std::string& scope) -> Result<FetchedToken> {
            const std::string resource = scope_to_resource(scope);
            return send_token_request(
                *http, RetryPolicy::from_env(), "managed identity (App Service) token for " + resource,
                [&]() -> Result<HttpRequest> {
                  CH_ASSIGN(request, request_from_url(endpoint));
                  request.query.push_back({"api-version", "2019-08-01"});
                  request.query.push_back({"resource", resource});
                  if (!client_id.empty()) request.query.push_back({"client_id", client_id});
                  request.headers.push_back({"X-IDENTITY-HEADER", identity_header});
                  return request;
                });
          },
          "managed identity (App Service)", mi_client);
    } else {
      std::string base = env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST");
      if (base.empty()) base = std::string(kImdsDefault);
      while (!base.empty() && base.back() == '/') base.pop_back();
      const std::string url = base + "/metadata/identity/oauth2/token";
      CH_TRY(request_from_url(url));
      provider = std::make_unique<CachingProvider>(
          [=](const std::string& scope) -> Result<FetchedToken> {
            const std::string resource = scope_to_resource(scope);
            RetryPolicy policy = RetryPolicy::from_env();
            policy.max_attempts = 3;  // off Azure nothing answers; do not hang
            SendOptions options;
            const std::string what = "managed identity (IMDS) token for " + resource;
            options.label = what;
            auto response = send_with_retry(
                *http, policy,
                [&](int) -> Result<HttpRequest> {
                  CH_ASSIGN(request, request_from_url(url));
                  request.query.push_back({"api-version", "2018-02-01"});
                  request.query.push_back({"resource", resource});
                  if (!client_id.empty()) request.query.push_back({"client_id", client_id});
                  request.headers.push_back({"Metadata", "true"});
                  return request;
                },
                options);
            // No answer at all: this is not an Azure VM (or IMDS is
            // blocked), so say what could have been configured instead.
            if (!response.ok())
              return Error{std::string(kNoCredentials) + " (managed identity (IMDS) at " + base +
                           " did not answer: " + response.message() + ")"};
            if (response->status != 200) return token_error(what, *response);
            return parse_token_answer(response->body, what);
          },
          "managed identity (IMDS)", mi_client);
    }
  }
  log_info("azure: credentials from " + provider->source());
  return provider;
}

}  // namespace ch
