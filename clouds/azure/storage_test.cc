#include "clouds/azure/storage.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "helper/output.h"

namespace ch {
namespace {

constexpr const char* kDevKey =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

AzureCloud public_cloud() {
  return AzureCloud{"AzureCloud", "https://login.microsoftonline.com", "https://management.azure.com",
                    "https://management.azure.com/.default", "core.windows.net",
                    "https://storage.azure.com/.default"};
}

AzureEnv env_with(std::map<std::string, std::string> vars) {
  AzureEnv env;
  env.vars = std::move(vars);
  return env;
}

// Independent of storage.cc: OpenSSL's base64 and HMAC over a given string.
std::string expected_signature(const std::string& key_b64, const std::string& sts) {
  unsigned char key[128];
  int n = EVP_DecodeBlock(key, reinterpret_cast<const unsigned char*>(key_b64.data()),
                          static_cast<int>(key_b64.size()));
  n -= 2;  // the dev key ends in "==": EVP_DecodeBlock counts the padding
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key, n, reinterpret_cast<const unsigned char*>(sts.data()), sts.size(), mac, &len);
  unsigned char out[64];
  int m = EVP_EncodeBlock(out, mac, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(out), m);
}

std::string header(const HttpRequest& r, const std::string& name) {
  for (const auto& h : r.headers)
    if (h.name == name) return h.value;
  return "<absent>";
}

TEST(AzureConnectionString, DevelopmentStorage) {
  auto cs = parse_connection_string("UseDevelopmentStorage=true");
  ASSERT_TRUE(cs.ok()) << cs.message();
  EXPECT_EQ(cs->account, "devstoreaccount1");
  EXPECT_EQ(cs->key, kDevKey);
  EXPECT_EQ(cs->blob_endpoint, "http://127.0.0.1:10000/devstoreaccount1");
}

TEST(AzureConnectionString, FieldsValuesWithEqualsAndDefaultEndpoint) {
  auto cs = parse_connection_string(
      "DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=a2V5a2V5a2V5;EndpointSuffix=core.chinacloudapi.cn;");
  ASSERT_TRUE(cs.ok()) << cs.message();
  EXPECT_EQ(cs->fields.at("AccountKey"), "a2V5a2V5a2V5");
  EXPECT_EQ(cs->account, "acct1");
  EXPECT_EQ(cs->key, "a2V5a2V5a2V5");
  EXPECT_EQ(cs->blob_endpoint, "https://acct1.blob.core.chinacloudapi.cn");

  cs = parse_connection_string("AccountName=acct1;AccountKey=YWJj==;BlobEndpoint=http://127.0.0.1:9/acct1/");
  ASSERT_TRUE(cs.ok());
  EXPECT_EQ(cs->key, "YWJj==");
  EXPECT_EQ(cs->blob_endpoint, "http://127.0.0.1:9/acct1");

  cs = parse_connection_string("BlobEndpoint=https://acct2.blob.core.windows.net;SharedAccessSignature=sv=2021&sig=a%2Bb=");
  ASSERT_TRUE(cs.ok());
  EXPECT_EQ(cs->account, "acct2");
  EXPECT_EQ(cs->sas, "sv=2021&sig=a%2Bb=");
}

TEST(AzureConnectionString, PartWithoutEqualsIsAnErrorThatHidesIt) {
  auto cs = parse_connection_string("AccountName=a;secretstuff");
  ASSERT_FALSE(cs.ok());
  EXPECT_EQ(cs.message(), "AZURE_STORAGE_CONNECTION_STRING: part 2 is not KEY=VALUE");
}

TEST(AzureBlobUrl, AllThreeForms) {
  AzureCloud cloud = public_cloud();
  auto a = parse_blob_url("az://acct/images/dir/disk.vhd", AzureEnv{}, cloud);
  ASSERT_TRUE(a.ok()) << a.message();
  EXPECT_EQ(a->endpoint, "https://acct.blob.core.windows.net");
  EXPECT_EQ(a->account, "acct");
  EXPECT_EQ(a->container, "images");
  EXPECT_EQ(a->name, "dir/disk.vhd");
  EXPECT_EQ(a->url(), "https://acct.blob.core.windows.net/images/dir/disk.vhd");
  EXPECT_EQ(a->az_url(), "az://acct/images/dir/disk.vhd");

  auto dev = parse_blob_url("az://devstoreaccount1/c1c/", env_with({{"AZURE_STORAGE_CONNECTION_STRING",
                                                                     "UseDevelopmentStorage=true"}}),
                            cloud);
  ASSERT_TRUE(dev.ok()) << dev.message();
  EXPECT_EQ(dev->endpoint, "http://127.0.0.1:10000/devstoreaccount1");
  EXPECT_EQ(dev->name, "");
  EXPECT_EQ(dev->with_name("a b+.vhd").url(), "http://127.0.0.1:10000/devstoreaccount1/c1c/a%20b%2B.vhd");
  EXPECT_EQ(dev->with_name("x.vhd").with_name("y.vhd").name, "y.vhd");

  auto h = parse_blob_url("https://Acct.blob.core.usgovcloudapi.net/images/a%20b.vhd", AzureEnv{}, cloud);
  ASSERT_TRUE(h.ok()) << h.message();
  EXPECT_EQ(h->account, "acct");
  EXPECT_EQ(h->endpoint, "https://Acct.blob.core.usgovcloudapi.net");
  EXPECT_EQ(h->name, "a b.vhd");

  auto p = parse_blob_url("http://127.0.0.1:10000/devstoreaccount1/vhds/x/y.vhd", AzureEnv{}, cloud);
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ(p->endpoint, "http://127.0.0.1:10000/devstoreaccount1");
  EXPECT_EQ(p->account, "devstoreaccount1");
  EXPECT_EQ(p->container, "vhds");
  EXPECT_EQ(p->name, "x/y.vhd");
}

TEST(AzureBlobUrl, Errors) {
  AzureCloud cloud = public_cloud();
  EXPECT_EQ(parse_blob_url("s3://b/k", AzureEnv{}, cloud).message(),
            "storage_url 's3://b/k': not an az://, https:// or http:// blob URL");
  EXPECT_EQ(parse_blob_url("az://acct", AzureEnv{}, cloud).message(),
            "storage_url 'az://acct': no container (az://ACCOUNT/CONTAINER/[NAME])");
  EXPECT_EQ(parse_blob_url("az://Bad_Acct/c/x", AzureEnv{}, cloud).message(),
            "storage_url 'az://Bad_Acct/c/x': invalid storage account name 'Bad_Acct' (3 to 24 lowercase "
            "letters and digits)");
  EXPECT_NE(parse_blob_url("az://acct/Images/x", AzureEnv{}, cloud).message().find("invalid container name 'Images'"),
            std::string::npos);
  EXPECT_NE(parse_blob_url("https://acct.blob.core.windows.net/c1c/x?sv=1", AzureEnv{}, cloud).message().find(
                "a query or fragment is not accepted"),
            std::string::npos);
}

TEST(AzureSharedKey, StringToSignOfPutPage) {
  HttpRequest r;
  r.method = "PUT";
  r.scheme = "http";
  r.host = "127.0.0.1";
  r.port = 10000;
  r.path = "/devstoreaccount1/vhds/a%20b.vhd";
  r.query = {{"comp", "page"}, {"Timeout", "30"}};
  r.headers = {{"x-ms-version", "2021-08-06"},
               {"X-MS-Date", "Mon, 01 Jan 2024 00:00:00 GMT"},
               {"x-ms-range", "bytes=0-511"},
               {"x-ms-page-write", "  update \t now "},
               {"Content-Length", "512"},
               {"Content-MD5", "bWQ1"},
               {"If-None-Match", "*"}};
  const std::string sts =
      "PUT\n\n\n512\nbWQ1\n\n\n\n\n*\n\n\n"
      "x-ms-date:Mon, 01 Jan 2024 00:00:00 GMT\n"
      "x-ms-page-write:update now\n"
      "x-ms-range:bytes=0-511\n"
      "x-ms-version:2021-08-06\n"
      "/devstoreaccount1/devstoreaccount1/vhds/a%20b.vhd\ncomp:page\ntimeout:30";
  EXPECT_EQ(shared_key_string_to_sign(r, "devstoreaccount1"), sts);
  ASSERT_TRUE(sign_shared_key(r, "devstoreaccount1", kDevKey).ok());
  EXPECT_EQ(header(r, "Authorization"), "SharedKey devstoreaccount1:" + expected_signature(kDevKey, sts));
  EXPECT_EQ(redact(header(r, "Authorization")), "SharedKey devstoreaccount1:***");
}

TEST(AzureSharedKey, ZeroLengthBodyAndRepeatedQueryValues) {
  HttpRequest r;
  r.method = "GET";
  r.path = "/c1c";
  r.query = {{"restype", "container"}, {"comp", "list"}, {"include", "snapshots"}, {"include", "metadata"}};
  r.headers = {{"Content-Length", "0"}, {"x-ms-version", "2021-08-06"}, {"x-ms-date", "D"}, {"Range", "bytes=0-9"}};
  EXPECT_EQ(shared_key_string_to_sign(r, "acct"),
            "GET\n\n\n\n\n\n\n\n\n\n\nbytes=0-9\n"
            "x-ms-date:D\nx-ms-version:2021-08-06\n"
            "/acct/c1c\ncomp:list\ninclude:metadata,snapshots\nrestype:container");
  HttpRequest b;
  b.method = "POST";
  b.path = "/";
  b.body = "hello";
  EXPECT_EQ(shared_key_string_to_sign(b, "acct"), "POST\n\n\n5\n\n\n\n\n\n\n\n\n/acct/");
}

TEST(AzureSharedKey, BadKeyIsAnError) {
  HttpRequest r;
  EXPECT_EQ(sign_shared_key(r, "acct", "not base64!").message(), "storage account 'acct': the account key is not base64");
}

TEST(AzureAuthorize, SharedKeyAddsDateAndVersion) {
  HttpRequest r;
  r.method = "HEAD";
  r.path = "/acct/c1c/x";
  StorageAuth auth;
  auth.account = "acct";
  auth.key_base64 = kDevKey;
  ASSERT_TRUE(authorize_storage_request(r, auth).ok());
  EXPECT_EQ(header(r, "x-ms-version"), "2021-08-06");
  EXPECT_NE(header(r, "x-ms-date"), "<absent>");
  EXPECT_EQ(header(r, "x-ms-date").substr(header(r, "x-ms-date").size() - 4), " GMT");
  HttpRequest unsigned_copy = r;
  unsigned_copy.headers.pop_back();  // the Authorization just added
  std::string sts = shared_key_string_to_sign(unsigned_copy, "acct");
  EXPECT_EQ(header(r, "Authorization"), "SharedKey acct:" + expected_signature(kDevKey, sts));
}

TEST(AzureAuthorize, SasAppendsDecodedParameters) {
  HttpRequest r;
  r.query = {{"comp", "page"}};
  StorageAuth auth;
  auth.kind = StorageAuth::Kind::kSas;
  auth.account = "acct";
  auth.sas = "?sv=2021-08-06&se=2030-01-01T00%3A00%3A00Z&sp=rcw&sig=AbC%2Bd%3D";
  ASSERT_TRUE(authorize_storage_request(r, auth).ok());
  ASSERT_EQ(r.query.size(), 5u);
  EXPECT_EQ(r.query[1].key, "sv");
  EXPECT_EQ(r.query[2].value, "2030-01-01T00:00:00Z");
  EXPECT_EQ(r.query[4].key, "sig");
  EXPECT_EQ(r.query[4].value, "AbC+d=");
  EXPECT_EQ(redact("sig AbC+d="), "sig ***");
  EXPECT_EQ(header(r, "Authorization"), "<absent>");
}

TEST(AzureAuthorize, Bearer) {
  auto tokens = static_azure_token("tok-123", "test");
  StorageAuth auth;
  auth.kind = StorageAuth::Kind::kBearer;
  auth.account = "acct";
  auth.tokens = tokens.get();
  auth.scope = "https://storage.azure.com/.default";
  HttpRequest r;
  ASSERT_TRUE(authorize_storage_request(r, auth).ok());
  EXPECT_EQ(header(r, "Authorization"), "Bearer tok-123");
  EXPECT_EQ(header(r, "x-ms-version"), "2021-08-06");
}

TEST(AzureStorageAuth, OrderAndAccountChecks) {
  AzureCloud cloud = public_cloud();
  auto dev = resolve_storage_auth(env_with({{"AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true"},
                                            {"AZURE_STORAGE_ACCOUNT", "devstoreaccount1"},
                                            {"AZURE_STORAGE_SAS_TOKEN", "sig=x"}}),
                                  cloud, "devstoreaccount1", nullptr);
  ASSERT_TRUE(dev.ok()) << dev.message();
  EXPECT_EQ(dev->kind, StorageAuth::Kind::kSharedKey);
  EXPECT_EQ(dev->key_base64, kDevKey);
  EXPECT_EQ(dev->source, "connection string (shared key)");

  auto other = resolve_storage_auth(env_with({{"AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true"}}),
                                    cloud, "acct", nullptr);
  EXPECT_EQ(other.message(), "AZURE_STORAGE_CONNECTION_STRING is for storage account 'devstoreaccount1', not 'acct'");

  auto key = resolve_storage_auth(env_with({{"AZURE_STORAGE_ACCOUNT", "acct"}, {"AZURE_STORAGE_KEY", kDevKey}}),
                                  cloud, "acct", nullptr);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->kind, StorageAuth::Kind::kSharedKey);

  auto bad = resolve_storage_auth(env_with({{"AZURE_STORAGE_ACCOUNT", "acct"}, {"AZURE_STORAGE_KEY", "x!"}}),
                                  cloud, "acct", nullptr);
  EXPECT_EQ(bad.message(), "AZURE_STORAGE_KEY: the account key is not base64");

  auto sas = resolve_storage_auth(
      env_with({{"AZURE_STORAGE_ACCOUNT", "acct"}, {"AZURE_STORAGE_SAS_TOKEN", "?sv=1&sig=zz"}}), cloud, "acct",
      nullptr);
  ASSERT_TRUE(sas.ok());
  EXPECT_EQ(sas->kind, StorageAuth::Kind::kSas);
  EXPECT_EQ(sas->sas, "sv=1&sig=zz");

  auto wrong = resolve_storage_auth(env_with({{"AZURE_STORAGE_ACCOUNT", "acct2"}, {"AZURE_STORAGE_KEY", kDevKey}}),
                                    cloud, "acct", nullptr);
  EXPECT_EQ(wrong.message(), "AZURE_STORAGE_ACCOUNT is 'acct2', not the storage account 'acct' of the blob URL");

  auto tokens = static_azure_token("t", "client secret of client C (tenant T)");
  auto bearer = resolve_storage_auth(AzureEnv{}, cloud, "acct", tokens.get());
  ASSERT_TRUE(bearer.ok());
  EXPECT_EQ(bearer->kind, StorageAuth::Kind::kBearer);
  EXPECT_EQ(bearer->scope, "https://storage.azure.com/.default");
  EXPECT_EQ(bearer->source, "Entra ID token (client secret of client C (tenant T))");

  auto none = resolve_storage_auth(AzureEnv{}, cloud, "acct", nullptr);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.message().rfind("no credentials for storage account 'acct': set AZURE_STORAGE_CONNECTION_STRING", 0),
            0u);
}

}  // namespace
}  // namespace ch
