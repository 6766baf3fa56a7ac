#include "clouds/gcp/google_auth.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <sstream>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "base/env.h"
#include "clouds/gcp/gcp_rest.h"
#include "clouds/http/retry.h"
#include "clouds/signing/digest.h"
#include "clouds/signing/sigv4.h"
#include "helper/output.h"

namespace ch {

namespace {

using Clock = std::chrono::system_clock;
using json = nlohmann::json;

constexpr std::string_view kJwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer";
constexpr std::string_view kTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange";
constexpr std::string_view kAccessTokenType = "urn:ietf:params:oauth:token-type:access_token";

// Very short strings would garble every log line; no real secret is that short.
void secret(const std::string& s) {
  if (s.size() >= 8) add_secret(s);
}

std::string base64url(std::span<const uint8_t> bytes) {
  std::string s = base64_encode(bytes);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return s;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    out += aws_uri_encode(k, false) + "=" + aws_uri_encode(v, false);
  }
  return out;
}

Result<std::string> read_small_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{what + " " + path + ": cannot open"};
  std::ostringstream text;
  text << in.rdbuf();
  std::string s = std::move(text).str();
  if (s.size() > (1 << 20)) return Error{what + " " + path + ": larger than 1 MiB"};
  return s;
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

struct FetchedToken {
  std::string token;
  Clock::time_point expires;
};

// {"access_token", "expires_in"} (OAuth, STS, metadata server).
Result<FetchedToken> parse_oauth_answer(std::string_view body, const std::string& what) {
  json doc = json::parse(body, nullptr, false);
  if (!doc.is_object()) return Error{what + ": answer is not a JSON object"};
  FetchedToken t;
  t.token = str(doc, "access_token");
  if (t.token.empty()) return Error{what + ": answer has no access_token"};
  secret(t.token);
  long long in = 3600;
  auto it = doc.find("expires_in");
  if (it != doc.end() && it->is_number()) in = it->get<long long>();
  else if (it != doc.end() && it->is_string()) in = std::atoll(it->get<std::string>().c_str());
  t.expires = Clock::now() + std::chrono::seconds(in);
  return t;
}

// One token request: retried by the shared policy, errors as google_error.
Result<HttpResponse> token_request(HttpClient& client, const std::string& what, HttpRequest req,
                                   int max_attempts = 0) {
  RetryPolicy policy = RetryPolicy::from_env();
  if (max_attempts) policy.max_attempts = max_attempts;
  SendOptions options;
  options.label = what;
  auto r = send_with_retry(client, policy, [&](int) -> Result<HttpRequest> { return req; }, options);
  if (!r.ok()) return r.error().wrap(what);
  if (r->status / 100 != 2) return google_error(what, *r);
  return r;
}

Result<HttpRequest> form_post(const std::string& url, const std::vector<std::pair<std::string, std::string>>& fields) {
  CH_ASSIGN(req, request_from_url(url));
  req.method = "POST";
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
  req.body = form_encode(fields);
  return req;
}

using Fetch = std::function<Result<FetchedToken>()>;

class CachingProvider : public GoogleTokenProvider {
 public:
  CachingProvider(Fetch fetch, std::string source, std::function<Result<std::string>()> project)
      : fetch_(std::move(fetch)), source_(std::move(source)), project_(std::move(project)) {}

  Result<std::string> token() override {
    // One lock: concurrent callers wait for one fetch.
    std::lock_guard<std::mutex> lock(mu_);
    auto now = Clock::now();
    if (!cached_.token.empty() && now < cached_.expires - kGoogleTokenRefreshMargin) return cached_.token;
    CH_ASSIGN(fresh, fetch_());
    secret(fresh.token);
    log_debug("gcp: token from " + source_ + ", valid " +
              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(fresh.expires - now).count()) + " s");
    cached_ = fresh;
    return cached_.token;
  }
  std::string source() const override { return source_; }
  Result<std::string> project_id() override { return project_(); }

 private:
  Fetch fetch_;
  std::string source_;
  std::function<Result<std::string>()> project_;
  std::mutex mu_;
  FetchedToken cached_;
};

Result<std::string> read_subject_token(const GoogleCredentials& c) {
  CH_ASSIGN(text, read_small_file(c.subject_token_file, "external_account credential_source.file"));
  std::string token;
  if (c.subject_token_field.empty()) {
    token = text;
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  } else {
    json doc = json::parse(text, nullptr, false);
    token = doc.is_object() ? str(doc, c.subject_token_field.c_str()) : "";
    if (token.empty())
      return Error{"external_account credential_source.file " + c.subject_token_file + ": no string field '" +
                   c.subject_token_field + "'"};
  }
  if (token.empty()) return Error{"external_account credential_source.file " + c.subject_token_file + " is empty"};
  secret(token);
  return token;
}

Fetch file_fetch(HttpClient& client, const GoogleCredentials& c) {
  const std::string what_base = "Google token for " + c.describe();
  if (c.type == "service_account") {
    return [&client, c, what = what_base + " from " + c.token_uri]() -> Result<FetchedToken> {
      auto now = std::chrono::time_point_cast<std::chrono::seconds>(Clock::now());
      CH_ASSIGN(jwt, google_service_account_assertion(c, kGoogleCloudPlatformScope, now));
      CH_ASSIGN(req, form_post(c.token_uri, {{"grant_type", std::string(kJwtBearer)}, {"assertion", jwt}}));
      CH_ASSIGN(resp, token_request(client, what, req));
      return parse_oauth_answer(resp.body, what);
    };
  }
  if (c.type == "authorized_user") {
    return [&client, c, what = what_base + " from " + c.token_uri]() -> Result<FetchedToken> {
      CH_ASSIGN(req, form_post(c.token_uri, {{"grant_type", "refresh_token"},
                                             {"client_id", c.client_id},
                                             {"client_secret", c.client_secret},
                                             {"refresh_token", c.refresh_token}}));
      CH_ASSIGN(resp, token_request(client, what, req));
      return parse_oauth_answer(resp.body, what);
    };
  }
  // external_account
  return [&client, c, what_base]() -> Result<FetchedToken> {
    CH_ASSIGN(subject, read_subject_token(c));
    // Without impersonation the STS token itself needs the scope; with it,
    // the scope goes to generateAccessToken (the STS token gets IAM's).
    std::string what = what_base + " from " + c.token_url;
    CH_ASSIGN(req, form_post(c.token_url, {{"grant_type", std::string(kTokenExchange)},
                                           {"audience", c.audience},
                                           {"scope", std::string(kGoogleCloudPlatformScope)},
                                           {"requested_token_type", std::string(kAccessTokenType)},
                                           {"subject_token", subject},
                                           {"subject_token_type", c.subject_token_type}}));
    CH_ASSIGN(resp, token_request(client, what, req));
    CH_ASSIGN(sts, parse_oauth_answer(resp.body, what));
    if (c.impersonation_url.empty()) return sts;
    std::string iwhat = what_base + " impersonating through " + c.impersonation_url;
    CH_ASSIGN(ireq, request_from_url(c.impersonation_url));
    ireq.method = "POST";
    ireq.headers = {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + sts.token}};
    ireq.body = json{{"scope", json::array({std::string(kGoogleCloudPlatformScope)})}, {"lifetime", "3600s"}}.dump();
    CH_ASSIGN(iresp, token_request(client, iwhat, ireq));
    json doc = json::parse(iresp.body, nullptr, false);
    FetchedToken t;
    t.token = doc.is_object() ? str(doc, "accessToken") : "";
    if (t.token.empty()) return Error{iwhat + ": answer has no accessToken"};
    secret(t.token);
    auto until = parse_rfc3339(str(doc, "expireTime"));
    t.expires = until ? Clock::time_point(std::chrono::seconds(*until)) : Clock::now() + std::chrono::hours(1);
    return t;
  };
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

GcpEnv GcpEnv::from_process() {
  GcpEnv e;
  e.vars = process_environment();
  e.home = e.get("HOME");
  return e;
}

std::string GcpEnv::get(std::string_view name) const {
  auto it = vars.find(std::string(name));
  return it == vars.end() ? "" : it->second;
}

std::string GoogleCredentials::describe() const {
  if (type == "service_account") return "service account " + client_email;
  if (type == "authorized_user") return "authorized user (client " + client_id + ")";
  return "external account (audience " + audience + ")";
}

Result<GoogleCredentials> parse_google_credentials(std::string_view json_text, const std::string& origin) {
  json doc = json::parse(json_text, nullptr, false);
  if (!doc.is_object()) return Error{origin + ": not a JSON object"};
  GoogleCredentials c;
  c.origin = origin;
  c.type = str(doc, "type");
  c.project_id = str(doc, "project_id");
  c.token_uri = str(doc, "token_uri");
  auto need = [&](std::initializer_list<const char*> keys) -> Status {
    for (const char* k : keys)
      if (str(doc, k).empty()) return Error{origin + ": " + c.type + " credentials without \"" + k + "\""};
    return {};
  };
  if (c.type == "service_account") {
    CH_TRY(need({"client_email", "private_key"}));
    c.client_email = str(doc, "client_email");
    c.private_key = str(doc, "private_key");
    c.private_key_id = str(doc, "private_key_id");
    if (c.token_uri.empty()) c.token_uri = std::string(kGoogleTokenUri);
    secret(c.private_key);
  } else if (c.type == "authorized_user") {
    CH_TRY(need({"client_id", "client_secret", "refresh_token"}));
    c.client_id = str(doc, "client_id");
    c.client_secret = str(doc, "client_secret");
    c.refresh_token = str(doc, "refresh_token");
    c.quota_project_id = str(doc, "quota_project_id");
    if (c.token_uri.empty()) c.token_uri = std::string(kGoogleTokenUri);
    secret(c.client_secret);
    secret(c.refresh_token);
  } else if (c.type == "external_account") {
    CH_TRY(need({"audience", "subject_token_type", "token_url"}));
    c.audience = str(doc, "audience");
    c.subject_token_type = str(doc, "subject_token_type");
    c.token_url = str(doc, "token_url");
    c.impersonation_url = str(doc, "service_account_impersonation_url");
    c.quota_project_id = str(doc, "quota_project_id");
    auto src = doc.find("credential_source");
    if (src == doc.end() || !src->is_object() || str(*src, "file").empty())
      return Error{origin + ": external_account credentials need credential_source.file "
                            "(url, executable and AWS sources are not supported)"};
    c.subject_token_file = str(*src, "file");
    auto fmt = src->find("format");
    if (fmt != src->end() && fmt->is_object() && str(*fmt, "type") == "json") {
      c.subject_token_field = str(*fmt, "subject_token_field_name");
      if (c.subject_token_field.empty())
        return Error{origin + ": credential_source.format type json needs subject_token_field_name"};
    }
  } else if (c.type.empty()) {
    return Error{origin + ": no \"type\" (service_account, authorized_user or external_account)"};
  } else {
    return Error{origin + ": credentials of type '" + c.type +
                 "' are not supported (service_account, authorized_user, external_account)"};
  }
  return c;
}

Result<std::string> google_service_account_assertion(const GoogleCredentials& c, std::string_view scope,
                                                     std::chrono::sys_seconds now) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(c.private_key.data(), static_cast<int>(c.private_key.size())),
                                                BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr, EVP_PKEY_free);
  if (!key) return Error{c.origin + ": private_key of " + c.client_email + " is not a PEM private key"};
  if (EVP_PKEY_id(key.get()) != EVP_PKEY_RSA)
    return Error{c.origin + ": private_key of " + c.client_email + " is not an RSA key (RS256 needs one)"};
  json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  if (!c.private_key_id.empty()) header["kid"] = c.private_key_id;
  const long long iat = now.time_since_epoch().count();
  json claims = {{"iss", c.client_email}, {"scope", std::string(scope)}, {"aud", c.token_uri},
                 {"iat", iat}, {"exp", iat + 3600}};
  const std::string input = base64url(bytes_of(header.dump())) + "." + base64url(bytes_of(claims.dump()));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t len = 0;
  // RSA keys sign with PKCS#1 v1.5 padding unless told otherwise: RS256.
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
    return Error{"signing the JWT assertion of " + c.client_email + " failed"};
  std::vector<uint8_t> sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
    return Error{"signing the JWT assertion of " + c.client_email + " failed"};
  sig.resize(len);
  std::string jwt = input + "." + base64url(sig);
  secret(jwt);
  return jwt;
}

Result<std::unique_ptr<GoogleTokenProvider>> resolve_google_credentials(HttpClient& client, const GcpEnv& env) {
  std::string path, origin;
  if (std::string p = env.get("GOOGLE_APPLICATION_CREDENTIALS"); !p.empty()) {
    path = p;
    origin = "GOOGLE_APPLICATION_CREDENTIALS=" + p;
    if (!file_exists(p)) return Error{origin + ": no such file"};
  } else {
    std::string dir = env.get("CLOUDSDK_CONFIG");
    if (dir.empty() && !env.home.empty()) dir = env.home + "/.config/gcloud";
    std::string adc = dir + "/application_default_credentials.json";
    if (!dir.empty() && file_exists(adc)) {
      path = adc;
      origin = adc;
    }
  }
  if (!path.empty()) {
    CH_ASSIGN(text, read_small_file(path, "credentials file"));
    CH_ASSIGN(c, parse_google_credentials(text, origin));
    std::string project = c.project_id.empty() ? c.quota_project_id : c.project_id;
    std::string source = c.describe() + " (" + origin + ")";
    log_info("gcp: credentials: " + source);
    return std::unique_ptr<GoogleTokenProvider>(std::make_unique<CachingProvider>(
        file_fetch(client, c), source, [project]() -> Result<std::string> { return project; }));
  }
  // The metadata server: not probed here; the first token() says whether it answers.
  std::string host = env.get("GCE_METADATA_HOST");
  if (host.empty()) host = env.get("GCE_METADATA_IP");
  if (host.empty()) host = "169.254.169.254";
  const std::string base = "http://" + host + "/computeMetadata/v1/";
  std::string source = "metadata server (" + base.substr(0, base.size() - 1) + ")";
  log_info("gcp: credentials: no credentials file (GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC); using the " + source);
  auto get = [&client, base, source](const std::string& path) -> Result<HttpResponse> {
    CH_ASSIGN(req, request_from_url(base + path));
    req.headers = {{"Metadata-Flavor", "Google"}};
    std::string what = "no Google credentials file, and the " + source + " did not give " + path;
    // Off GCE nothing answers: give up after a few tries, not the full budget.
    return token_request(client, what, req, 3);
  };
  auto project = [get]() -> Result<std::string> {
    CH_ASSIGN(r, get("project/project-id"));
    return r.body;
  };
  Fetch fetch = [get]() -> Result<FetchedToken> {
    CH_ASSIGN(r, get("instance/service-accounts/default/token"));
    return parse_oauth_answer(r.body, "metadata server token");
  };
  return std::unique_ptr<GoogleTokenProvider>(std::make_unique<CachingProvider>(fetch, source, project));
}

}  // namespace ch
