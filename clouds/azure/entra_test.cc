// Entra ID token sources against a scripted loopback token endpoint, and
// the client certificate assertion checked with OpenSSL against a key and
// certificate made by the openssl command at test time.
#include "clouds/azure/entra.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "helper/output.h"
#include "tests/test_http_server.h"
#include "tests/test_util.h"

namespace ch {
namespace {

using test::ReceivedRequest;
using test::ScriptedResponse;

constexpr const char* kTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
constexpr const char* kClient = "0d1e2f3a-aaaa-bbbb-cccc-123456789abc";
constexpr const char* kSecret = "entra-test-client-secret-Q8~xk2";
constexpr const char* kArmScope = "https://management.azure.com/.default";
constexpr const char* kStorageScope = "https://storage.azure.com/.default";

int hex_value(char c) {
  return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_form(std::string_view body) {
  std::map<std::string, std::string> out;
  while (!body.empty()) {
    size_t amp = body.find('&');
    std::string_view pair = body.substr(0, amp);
    size_t eq = pair.find('=');
    out[percent_decode(pair.substr(0, eq))] =
        eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
    body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
  }
  return out;
}

std::string base64url_decode(std::string s) {
  for (char& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (s.size() % 4 != 0) s += '=';
  std::string out(s.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  EXPECT_GE(n, 0);
  size_t pad = 0;
  for (size_t i = s.size(); i > 0 && s[i - 1] == '='; --i) ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::vector<std::string> split_jwt(const std::string& jwt) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t dot = jwt.find('.', start);
    parts.push_back(jwt.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

ScriptedResponse token_answer(const std::string& token, const std::string& expires_in_json = "3599") {
  return {.status = 200,
          .headers = {{"Content-Type", "application/json; charset=utf-8"}},
          .body = R"({"token_type":"Bearer","expires_in":)" + expires_in_json +
                  R"(,"ext_expires_in":3599,"access_token":")" + token + "\"}"};
}

class EntraTest : public ::testing::Test {
 protected:
  EntraTest() {
    ::setenv("CLOUD_HELPER_RETRY_SCALE", "0.01", 1);
    cloud_ = *azure_cloud(AzureEnv{});
    cloud_.authority_host = server_.url("");
    env_.home = dir_.path();
  }
  ~EntraTest() override { ::unsetenv("CLOUD_HELPER_RETRY_SCALE"); }

  void service_principal() {
    env_.vars["AZURE_TENANT_ID"] = kTenant;
    env_.vars["AZURE_CLIENT_ID"] = kClient;
  }
  std::string token_path() const { return std::string("/") + kTenant + "/oauth2/v2.0/token"; }

  std::unique_ptr<AzureTokenProvider> resolve(bool allow_mi = true) {
    auto p = resolve_azure_credentials(http_, env_, cloud_, allow_mi);
    EXPECT_TRUE(p.ok()) << p.message();
    return p.ok() ? std::move(*p) : nullptr;
  }

  test::TempDir dir_;
  test::HttpTestServer server_;
  HttpClient http_;
  AzureEnv env_;
  AzureCloud cloud_;
};

TEST_F(EntraTest, ClientSecretFormBodyAndSourceLoggedOnce) {
  service_principal();
  env_.vars["AZURE_CLIENT_SECRET"] = kSecret;
  server_.enqueue(token_answer("arm-access-token-0001"));
  ::testing::internal::CaptureStderr();
  auto p = resolve();
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->source(), std::string("client secret of client ") + kClient + " (tenant " + kTenant + ")");
  EXPECT_EQ(log, "cloud_helper: azure: credentials from " + p->source() + "\n");
  EXPECT_TRUE(server_.requests().empty());  // nothing fetched before token()

  auto t = p->token(kArmScope);
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ(*t, "arm-access-token-0001");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, token_path());
  EXPECT_EQ(reqs[0].header("Content-Type"), "application/x-www-form-urlencoded");
  auto form = parse_form(reqs[0].body);
  EXPECT_EQ(form, (std::map<std::string, std::string>{{"grant_type", "client_credentials"},
                                                      {"client_id", kClient},
                                                      {"scope", kArmScope},
                                                      {"client_secret", kSecret}}));
  // Secret and token never reach a log line.
  EXPECT_EQ(redact(std::string(kSecret) + " arm-access-token-0001"), "*** ***");
}

TEST_F(EntraTest, TokensAreCachedPerScope) {
  service_principal();
  env_.vars["AZURE_CLIENT_SECRET"] = kSecret;
  server_.enqueue(token_answer("arm-access-token-0002"));
  server_.enqueue(token_answer("storage-access-token-03", "\"3599\""));  // expires_in as a string
  auto p = resolve();
  ASSERT_TRUE(p);
  EXPECT_EQ(*p->token(kArmScope), "arm-access-token-0002");
  EXPECT_EQ(*p->token(kArmScope), "arm-access-token-0002");
  EXPECT_EQ(*p->token(kStorageScope), "storage-access-token-03");
  EXPECT_EQ(*p->token(kStorageScope), "storage-access-token-03");
  EXPECT_EQ(*p->token(kArmScope), "arm-access-token-0002");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(parse_form(reqs[1].body)["scope"], kStorageScope);
}

TEST_F(EntraTest, ConcurrentCallersShareOneFetch) {
  service_principal();
  env_.vars["AZURE_CLIENT_SECRET"] = kSecret;
  server_.set_handler([](const ReceivedRequest&) {
    ScriptedResponse r = token_answer("shared-access-token-04");
    r.delay = std::chrono::milliseconds(50);
    return r;
  });
  auto p = resolve();
  ASSERT_TRUE(p);
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] { good += p->token(kArmScope).ok() ? 1 : 0; });
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 8);
  EXPECT_EQ(server_.requests().size(), 1u);
}

TEST_F(EntraTest, RefreshedWhenWithinFiveMinutesOfExpiry) {
  service_principal();
  env_.vars["AZURE_CLIENT_SECRET"] = kSecret;
  server_.enqueue(token_answer("short-lived-token-0001", "240"));
  server_.enqueue(token_answer("short-lived-token-0002", "240"));
  auto p = resolve();
  ASSERT_TRUE(p);
  EXPECT_EQ(*p->token(kArmScope), "short-lived-token-0001");
  EXPECT_EQ(*p->token(kArmScope), "short-lived-token-0002");
  EXPECT_EQ(server_.requests().size(), 2u);
}

TEST_F(EntraTest, FailedRefreshKeepsTheStillValidToken) {
  service_principal();
  env_.vars["AZURE_CLIENT_SECRET"] = kSecret;
  server_.enqueue(token_answer("short-lived-token-0003", "240"));
  server_.enqueue({.status = 400, .body = R"({"error":"invalid_request","error_description":"AADSTS90000: x"})"});
  auto p = resolve();
  ASSERT_TRUE(p);
  EXPECT_EQ(*p->token(kArmScope), "short-lived-token-0003");
  auto again = p->token(kArmScope);
  ASSERT_TRUE(again.ok()) << again.message();
  EXPECT_EQ(*again, "short-lived-token-0003");
}

TEST_F(EntraTest, InvalidClientIsOneLineWithAadstsAndRequestId) {
  service_principal();
  env_.vars["AZURE_CLIENT_SECRET"] = kSecret;
  server_.enqueue(
      {.status = 401,
       .headers = {{"x-ms-request-id", "5a1c0a3e-44a5-4c1a-9e1f-6b0e2a7f1200"}},
       .body = R"({"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.\r\nTrace ID: 5a1c0a3e-44a5-4c1a-9e1f-6b0e2a7f1200\r\nCorrelation ID: 8b6d\r\nTimestamp: 2024-05-01 10:00:00Z","error_codes":[7000215],"trace_id":"5a1c0a3e-44a5-4c1a-9e1f-6b0e2a7f1200"})"});
  auto p = resolve();
  ASSERT_TRUE(p);
  auto t = p->token(kArmScope);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.message(), std::string("Entra ID token for client ") + kClient + " in tenant " + kTenant +
                             ": HTTP 401 invalid_client: AADSTS7000215: Invalid client secret provided. "
                             "Ensure the secret being sent in the request is the client secret value. "
                             "(request id 5a1c0a3e-44a5-4c1a-9e1f-6b0e2a7f1200)");
  EXPECT_EQ(t.error().code, "invalid_client");
  EXPECT_EQ(t.error().http_status, 401);
  EXPECT_EQ(t.message().find(kSecret), std::string::npos);
  EXPECT_EQ(server_.requests().size(), 1u);  // a 4xx is not retried
}

TEST_F(EntraTest, ThrottlingAndServerErrorsAreRetried) {
  service_principal();
  env_.vars["AZURE_CLIENT_SECRET"] = kSecret;
  server_.enqueue({.status = 429, .headers = {{"Retry-After", "0"}}});
  server_.enqueue({.status = 503, .body = "busy"});
  server_.enqueue(token_answer("after-retries-token-01"));
  auto p = resolve();
  ASSERT_TRUE(p);
  auto t = p->token(kArmScope);
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ(*t, "after-retries-token-01");
  EXPECT_EQ(server_.requests().size(), 3u);
}

TEST_F(EntraTest, MalformedAnswersAreErrors) {
  service_principal();
  env_.vars["AZURE_CLIENT_SECRET"] = kSecret;
  server_.enqueue({.status = 200, .body = "<html>"});
  server_.enqueue({.status = 200, .body = R"({"token_type":"Bearer","expires_in":3599})"});
  server_.enqueue({.status = 200, .body = R"({"access_token":"no-expiry-token-00001"})"});
  auto p = resolve();
  ASSERT_TRUE(p);
  const std::string what = std::string("Entra ID token for client ") + kClient + " in tenant " + kTenant;
  EXPECT_EQ(p->token(kArmScope).message(), what + ": answer is not a JSON object");
  EXPECT_EQ(p->token(kArmScope).message(), what + ": answer has no access_token");
  EXPECT_EQ(p->token(kArmScope).message(), what + ": answer has neither expires_in nor expires_on");
}

TEST_F(EntraTest, FederatedTokenFileIsReadForEveryRequest) {
  service_principal();
  const std::string file = dir_ / "azure-identity-token";
  env_.vars["AZURE_FEDERATED_TOKEN_FILE"] = file;
  std::ofstream(file) << "eyJhbGciOiJSUzI1NiJ9.federated-one.sig\n";
  server_.enqueue(token_answer("workload-token-000001", "60"));
  server_.enqueue(token_answer("workload-token-000002", "60"));
  auto p = resolve();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->source(), "workload identity (federated token file " + file + ")");
  EXPECT_EQ(*p->token(kArmScope), "workload-token-000001");
  std::ofstream(file) << "eyJhbGciOiJSUzI1NiJ9.federated-two.sig";
  EXPECT_EQ(*p->token(kArmScope), "workload-token-000002");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    auto form = parse_form(reqs[i].body);
    EXPECT_EQ(form["grant_type"], "client_credentials");
    EXPECT_EQ(form["client_id"], kClient);
    EXPECT_EQ(form["scope"], kArmScope);
    EXPECT_EQ(form["client_assertion_type"], "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    EXPECT_EQ(form.count("client_secret"), 0u);
  }
  EXPECT_EQ(parse_form(reqs[0].body)["client_assertion"], "eyJhbGciOiJSUzI1NiJ9.federated-one.sig");
  EXPECT_EQ(parse_form(reqs[1].body)["client_assertion"], "eyJhbGciOiJSUzI1NiJ9.federated-two.sig");

  // A new provider (no still-valid token to fall back on) reports the file.
  std::remove(file.c_str());
  auto fresh = resolve();
  ASSERT_TRUE(fresh);
  auto gone = fresh->token(kArmScope);
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.message().find("federated token file " + file + ": cannot open"), std::string::npos)
      << gone.message();
}

TEST_F(EntraTest, NoCredentialsAndHalfConfiguredPrincipal) {
  auto p = resolve_azure_credentials(http_, env_, cloud_, /*allow_managed_identity=*/false);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(),
            "no Azure credentials: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or "
            "AZURE_CLIENT_CERTIFICATE_PATH, or AZURE_FEDERATED_TOKEN_FILE, or run where a managed "
            "identity is available");
  env_.vars["AZURE_CLIENT_SECRET"] = kSecret;
  env_.vars["AZURE_CLIENT_ID"] = kClient;
  p = resolve_azure_credentials(http_, env_, cloud_);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(), "AZURE_CLIENT_SECRET is set but AZURE_TENANT_ID is not");
  env_.vars["AZURE_TENANT_ID"] = "../evil";
  p = resolve_azure_credentials(http_, env_, cloud_);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(), "AZURE_TENANT_ID='../evil': not a tenant id or domain name");
}

TEST_F(EntraTest, ImdsQueryHeadersAndUserAssignedIdentity) {
  env_.vars["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = server_.url("/");
  env_.vars["AZURE_CLIENT_ID"] = kClient;
  server_.enqueue({.status = 200,
                   .body = R"({"access_token":"imds-access-token-0001","client_id":"c","expires_in":"86399",)"
                           R"("expires_on":"1999999999","ext_expires_in":"86399","not_before":"1",)"
                           R"("resource":"https://management.azure.com/","token_type":"Bearer"})"});
  auto p = resolve();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->source(), "managed identity (IMDS)");
  auto t = p->token(kArmScope);
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ(*t, "imds-access-token-0001");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target,
            std::string("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2F"
                        "management.azure.com&client_id=") + kClient);
  EXPECT_EQ(reqs[0].header("Metadata"), "true");
  EXPECT_EQ(*p->token(kArmScope), "imds-access-token-0001");
  EXPECT_EQ(server_.requests().size(), 1u);
}

TEST_F(EntraTest, ImdsErrorsAndNoAnswer) {
  env_.vars["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = server_.url("");
  server_.enqueue({.status = 400,
                   .body = R"({"error":"invalid_request","error_description":"Identity not found"})"});
  auto p = resolve();
  ASSERT_TRUE(p);
  auto t = p->token(kStorageScope);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.message(),
            "managed identity (IMDS) token for https://storage.azure.com: HTTP 400 invalid_request: "
            "Identity not found");
  EXPECT_EQ(server_.requests()[0].target,
            "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com");

  // Nothing listening (a port of this test's range that no test binds).
  env_.vars["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = "http://127.0.0.1:48049";
  auto none = resolve();
  ASSERT_TRUE(none);
  auto u = none->token(kArmScope);
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.message().rfind("no Azure credentials: set AZURE_TENANT_ID", 0), 0u) << u.message();
  EXPECT_NE(u.message().find("(managed identity (IMDS) at http://127.0.0.1:48049 did not answer: "),
            std::string::npos)
      << u.message();
}

TEST_F(EntraTest, AppServiceManagedIdentity) {
  env_.vars["IDENTITY_ENDPOINT"] = server_.url("/msi/token");
  env_.vars["IDENTITY_HEADER"] = "app-service-identity-header-9f3e";
  env_.vars["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = "http://127.0.0.1:48049";  // must not be used
  server_.enqueue({.status = 200,
                   .body = R"({"access_token":"appsvc-access-token-01","expires_on":"1999999999",)"
                           R"("resource":"https://management.azure.com","token_type":"Bearer"})"});
  auto p = resolve();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->source(), "managed identity (App Service)");
  auto t = p->token(kArmScope);
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ(*t, "appsvc-access-token-01");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, "/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fmanagement.azure.com");
  EXPECT_EQ(reqs[0].header("X-IDENTITY-HEADER"), "app-service-identity-header-9f3e");
  EXPECT_EQ(redact("app-service-identity-header-9f3e"), "***");
  // expires_on far ahead: cached.
  EXPECT_TRUE(p->token(kArmScope).ok());
  EXPECT_EQ(server_.requests().size(), 1u);
}

TEST_F(EntraTest, ManagedIdentityOnlyWhenNothingElseIsSet) {
  env_.vars["IDENTITY_ENDPOINT"] = server_.url("/msi/token");
  env_.vars["IDENTITY_HEADER"] = "app-service-identity-header-9f3e";
  service_principal();
  env_.vars["AZURE_CLIENT_SECRET"] = kSecret;
  auto p = resolve();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->source().rfind("client secret of client ", 0), 0u);
}

TEST_F(EntraTest, StaticToken) {
  auto p = static_azure_token("static-bearer-token-01", "test token");
  EXPECT_EQ(*p->token(kArmScope), "static-bearer-token-01");
  EXPECT_EQ(p->source(), "test token");
}

// ---- client certificate ---------------------------------------------------

class EntraCertificateTest : public EntraTest {
 protected:
  // key.pem + cert.pem from `openssl req`, and combined PEM files (plain
  // and with an encrypted PKCS#8 key).
  void SetUp() override {
    auto r = test::run_command(
        "cd " + test::shell_quote(dir_.path()) +
        " && openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2"
        " -subj /CN=cloud-helper-entra-test 2>&1"
        " && cat key.pem cert.pem > combined.pem"
        " && openssl pkcs8 -topk8 -in key.pem -v2 aes-256-cbc -passout pass:" + kPassword +
        " -out enc-key.pem 2>&1 && cat cert.pem enc-key.pem > encrypted.pem");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // base64url(DIGEST of the DER certificate), by the openssl command.
  std::string thumbprint(const char* digest) {
    auto r = test::run_command("openssl x509 -in " + test::shell_quote(dir_ / "cert.pem") +
                               " -outform DER | openssl dgst -" + digest +
                               " -binary | base64 -w0 | tr '+/' '-_' | tr -d '='");
    EXPECT_EQ(r.exit_code, 0);
    return r.output;
  }

  // The certificate's public key verifies the RS256 signature of JWT.
  bool signature_verifies(const std::string& jwt) {
    auto parts = split_jwt(jwt);
    if (parts.size() != 3) return false;
    FILE* f = std::fopen((dir_ / "cert.pem").c_str(), "r");
    if (f == nullptr) return false;
    X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    if (cert == nullptr) return false;
    EVP_PKEY* key = X509_get_pubkey(cert);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const std::string input = parts[0] + "." + parts[1];
    const std::string sig = base64url_decode(parts[2]);
    bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
              EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                               reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    X509_free(cert);
    return ok;
  }

  static constexpr const char* kPassword = "cert-password-5d1b77";
};

TEST_F(EntraCertificateTest, AssertionHeaderClaimsAndSignature) {
  auto cert = AzureClientCertificate::load(dir_ / "combined.pem", "");
  ASSERT_TRUE(cert.ok()) << cert.message();
  EXPECT_EQ(cert->x5t(), thumbprint("sha1"));
  EXPECT_EQ(cert->x5t_s256(), thumbprint("sha256"));
  const std::string aud = "https://login.microsoftonline.com/t/oauth2/v2.0/token";
  const std::chrono::sys_seconds now{std::chrono::seconds(1700000000)};
  auto jwt = cert->assertion(kClient, aud, now);
  ASSERT_TRUE(jwt.ok()) << jwt.message();
  auto parts = split_jwt(*jwt);
  ASSERT_EQ(parts.size(), 3u);
  for (const auto& part : parts) EXPECT_EQ(part.find_first_of("+/="), std::string::npos) << part;
  auto header = nlohmann::json::parse(base64url_decode(parts[0]));
  EXPECT_EQ(header, (nlohmann::json{{"alg", "RS256"}, {"typ", "JWT"}, {"x5t", thumbprint("sha1")},
                                    {"x5t#S256", thumbprint("sha256")}}));
  auto claims = nlohmann::json::parse(base64url_decode(parts[1]));
  EXPECT_EQ(claims["aud"], aud);
  EXPECT_EQ(claims["iss"], kClient);
  EXPECT_EQ(claims["sub"], kClient);
  EXPECT_EQ(claims["nbf"], 1700000000);
  EXPECT_EQ(claims["iat"], 1700000000);
  EXPECT_EQ(claims["exp"], 1700000600);
  const std::string jti = claims["jti"];
  EXPECT_EQ(jti.size(), 36u);
  EXPECT_EQ(jti[14], '4');
  EXPECT_NE(claims["jti"], nlohmann::json::parse(base64url_decode(split_jwt(*cert->assertion(kClient, aud, now))[1]))["jti"]);
  EXPECT_TRUE(signature_verifies(*jwt));
  std::string tampered = *jwt;
  tampered[parts[0].size() + 5] ^= 1;
  EXPECT_FALSE(signature_verifies(tampered));
  EXPECT_EQ(redact(*jwt), "***");
}

TEST_F(EntraCertificateTest, EncryptedKeyNeedsThePassword) {
  auto cert = AzureClientCertificate::load(dir_ / "encrypted.pem", kPassword);
  ASSERT_TRUE(cert.ok()) << cert.message();
  EXPECT_TRUE(signature_verifies(*cert->assertion(kClient, "https://x/t/oauth2/v2.0/token",
                                                  std::chrono::sys_seconds{std::chrono::seconds(1)})));
  auto wrong = AzureClientCertificate::load(dir_ / "encrypted.pem", "not-the-password");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.message(), "client certificate " + (dir_ / "encrypted.pem") +
                                 ": no private key could be read (wrong AZURE_CLIENT_CERTIFICATE_PASSWORD?)");
  auto none = AzureClientCertificate::load(dir_ / "encrypted.pem", "");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.message().find("set AZURE_CLIENT_CERTIFICATE_PASSWORD"), std::string::npos);
  auto no_cert = AzureClientCertificate::load(dir_ / "key.pem", "");
  ASSERT_FALSE(no_cert.ok());
  EXPECT_EQ(no_cert.message(),
            "client certificate " + (dir_ / "key.pem") + ": no certificate matching the private key");
}

TEST_F(EntraCertificateTest, ProviderSendsASignedAssertion) {
  service_principal();
  env_.vars["AZURE_CLIENT_CERTIFICATE_PATH"] = dir_ / "encrypted.pem";
  env_.vars["AZURE_CLIENT_CERTIFICATE_PASSWORD"] = kPassword;
  server_.enqueue(token_answer("cert-access-token-0001"));
  auto p = resolve();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->source(), "client certificate " + (dir_ / "encrypted.pem") + " of client " + kClient +
                             " (tenant " + kTenant + ")");
  auto t = p->token(kArmScope);
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ(*t, "cert-access-token-0001");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  auto form = parse_form(reqs[0].body);
  EXPECT_EQ(form["client_assertion_type"], "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
  EXPECT_EQ(form.count("client_secret"), 0u);
  EXPECT_EQ(form["scope"], kArmScope);
  const std::string jwt = form["client_assertion"];
  EXPECT_TRUE(signature_verifies(jwt));
  auto claims = nlohmann::json::parse(base64url_decode(split_jwt(jwt)[1]));
  EXPECT_EQ(claims["aud"], server_.url(token_path()));
  EXPECT_EQ(redact(kPassword), "***");
}

TEST_F(EntraCertificateTest, UnreadableCertificateFailsAtResolve) {
  service_principal();
  env_.vars["AZURE_CLIENT_CERTIFICATE_PATH"] = dir_ / "missing.pem";
  auto p = resolve_azure_credentials(http_, env_, cloud_);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(), "client certificate " + (dir_ / "missing.pem") + ": cannot open");
}

}  // namespace
}  // namespace ch
