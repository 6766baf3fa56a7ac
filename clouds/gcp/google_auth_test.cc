#include "clouds/gcp/google_auth.h"

#include <openssl/evp.h>
#include <fstream>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

namespace ch {
namespace {

using json = nlohmann::json;

std::string b64url_decode(std::string s) {
  for (char& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (s.size() % 4) s += '=';
  std::string out(s.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(s.data()),
                          static_cast<int>(s.size()));
  out.resize(n - std::count(s.end() - 2, s.end(), '='));
  return out;
}

struct TestKey {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{EVP_RSA_gen(2048), EVP_PKEY_free};
  std::string pem() const {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, n);
  }
};

TEST(GoogleCredentials, ParsesEachTypeAndRefusesOthers) {
  auto sa = parse_google_credentials(
      R"({"type":"service_account","project_id":"p1","client_email":"sa@p1.iam.gserviceaccount.com",
          "private_key":"-----BEGIN PRIVATE KEY-----x","private_key_id":"k1"})", "sa.json");
  ASSERT_TRUE(sa.ok()) << sa.message();
  EXPECT_EQ(sa->token_uri, "https://oauth2.googleapis.com/token") << "Google's default";
  EXPECT_EQ(sa->describe(), "service account sa@p1.iam.gserviceaccount.com");
  auto user = parse_google_credentials(
      R"({"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r","quota_project_id":"q"})", "adc");
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->quota_project_id, "q");
  auto ext = parse_google_credentials(
      R"({"type":"external_account","audience":"//iam/a","subject_token_type":"urn:ietf:params:oauth:token-type:jwt",
          "token_url":"https://sts.googleapis.com/v1/token",
          "credential_source":{"file":"/var/run/token","format":{"type":"json","subject_token_field_name":"id_token"}}})",
      "ext.json");
  ASSERT_TRUE(ext.ok()) << ext.message();
  EXPECT_EQ(ext->subject_token_file, "/var/run/token");
  EXPECT_EQ(ext->subject_token_field, "id_token");
  EXPECT_EQ(parse_google_credentials(R"({"type":"service_account","client_email":"x"})", "f.json").message(),
            "f.json: service_account credentials without \"private_key\"");
  EXPECT_EQ(parse_google_credentials(R"({"type":"gdch_service_account"})", "f.json").message(),
            "f.json: credentials of type 'gdch_service_account' are not supported (service_account, authorized_user, "
            "external_account)");
  EXPECT_EQ(parse_google_credentials(R"({"type":"external_account","audience":"a","subject_token_type":"t",
                                         "token_url":"u","credential_source":{"url":"http://x"}})", "e.json").message(),
            "e.json: external_account credentials need credential_source.file (url, executable and AWS sources are "
            "not supported)");
  EXPECT_FALSE(parse_google_credentials("[]", "f").ok());
}

TEST(GoogleCredentials, ServiceAccountAssertionIsAVerifiableRs256Jwt) {
  TestKey k;
  GoogleCredentials c;
  c.type = "service_account";
  c.client_email = "sa@p.iam.gserviceaccount.com";
  c.private_key = k.pem();
  c.private_key_id = "kid-1";
  c.token_uri = "https://oauth2.googleapis.com/token";
  auto now = std::chrono::sys_seconds(std::chrono::seconds(1700000000));
  auto jwt = google_service_account_assertion(c, kGoogleCloudPlatformScope, now);
  ASSERT_TRUE(jwt.ok()) << jwt.message();
  size_t d1 = jwt->find('.'), d2 = jwt->rfind('.');
  json header = json::parse(b64url_decode(jwt->substr(0, d1)));
  json claims = json::parse(b64url_decode(jwt->substr(d1 + 1, d2 - d1 - 1)));
  EXPECT_EQ(header, (json{{"alg", "RS256"}, {"typ", "JWT"}, {"kid", "kid-1"}}));
  EXPECT_EQ(claims["iss"], c.client_email);
  EXPECT_EQ(claims["aud"], c.token_uri);
  EXPECT_EQ(claims["scope"], "https://www.googleapis.com/auth/cloud-platform");
  EXPECT_EQ(claims["iat"], 1700000000);
  EXPECT_EQ(claims["exp"], 1700003600);
  std::string sig = b64url_decode(jwt->substr(d2 + 1));
  std::string input = jwt->substr(0, d2);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  ASSERT_EQ(EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, k.key.get()), 1);
  EXPECT_EQ(EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(input.data()), input.size()), 1);

  c.private_key = "not a key";
  EXPECT_FALSE(google_service_account_assertion(c, kGoogleCloudPlatformScope, now).ok());
}

TEST(GoogleCredentials, GcloudAdcFileUnderCloudsdkConfig) {
  test::TempDir dir;
  std::ofstream(dir.file("application_default_credentials.json"))
      << R"({"type":"authorized_user","client_id":"c","client_secret":"secret-1234","refresh_token":"refresh-1234",
            "quota_project_id":"quota-p"})";
  GcpEnv env;
  env.vars["CLOUDSDK_CONFIG"] = dir.path();
  env.home = "/nonexistent";
  HttpClient client;
  auto p = resolve_google_credentials(client, env);
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ((*p)->source(), "authorized user (client c) (" + dir.file("application_default_credentials.json") + ")");
  EXPECT_EQ(*(*p)->project_id(), "quota-p");
  // Nothing found: the metadata server, at GCE_METADATA_HOST.
  GcpEnv none;
  none.home = dir.path();
  none.vars["GCE_METADATA_HOST"] = "127.0.0.1:9";
  auto md = resolve_google_credentials(client, none);
  ASSERT_TRUE(md.ok());
  EXPECT_EQ((*md)->source(), "metadata server (http://127.0.0.1:9/computeMetadata/v1)");
}

TEST(GoogleCredentials, MissingExplicitFileIsAnError) {
  GcpEnv env;
  env.vars["GOOGLE_APPLICATION_CREDENTIALS"] = "/nonexistent/sa.json";
  HttpClient client;
  EXPECT_EQ(resolve_google_credentials(client, env).message(),
            "GOOGLE_APPLICATION_CREDENTIALS=/nonexistent/sa.json: no such file");
}

}  // namespace
}  // namespace ch
