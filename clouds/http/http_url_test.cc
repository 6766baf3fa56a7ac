#include "clouds/http/http_url.h"

#include <gtest/gtest.h>

#include "clouds/http/http_client.h"
#include "clouds/http/http_log.h"

namespace ch {
namespace {

TEST(RequestFromUrlTest, SplitsSchemeHostPortPathAndQuery) {
  Result<HttpRequest> r = request_from_url("http://127.0.0.1:8080/a%20b/c?x=1&y=%2F&z&w=a+b");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->scheme, "http");
  EXPECT_EQ(r->host, "127.0.0.1");
  EXPECT_EQ(r->port, 8080);
  EXPECT_EQ(r->path, "/a%20b/c");
  ASSERT_EQ(r->query.size(), 4u);
  EXPECT_EQ(r->query[0].key, "x");
  EXPECT_EQ(r->query[0].value, "1");
  EXPECT_EQ(r->query[1].value, "/");
  EXPECT_EQ(r->query[2].key, "z");
  EXPECT_EQ(r->query[2].value, "");
  EXPECT_EQ(r->query[3].value, "a+b");
  EXPECT_TRUE(r->headers.empty());
}

TEST(RequestFromUrlTest, DefaultsAndIpv6) {
  Result<HttpRequest> r = request_from_url("HTTPS://example.com");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->scheme, "https");
  EXPECT_EQ(r->host, "example.com");
  EXPECT_EQ(r->port, 0);
  EXPECT_EQ(r->path, "/");
  EXPECT_TRUE(r->query.empty());

  r = request_from_url("http://[::1]:9000/k?#frag");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->host, "::1");
  EXPECT_EQ(r->port, 9000);
  EXPECT_EQ(r->path, "/k");
  EXPECT_TRUE(r->query.empty());
  EXPECT_EQ(wire_url(*r), "http://[::1]:9000/k");

  r = request_from_url("https://h?a=1");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->path, "/");
  ASSERT_EQ(r->query.size(), 1u);
}

TEST(RequestFromUrlTest, ErrorsNameTheUrlWithSecretsRedacted) {
  auto message = [](std::string_view url) { return request_from_url(url).message(); };
  EXPECT_EQ(message("ftp://h/x"), "bad URL \"ftp://h/x\": scheme must be http or https");
  EXPECT_EQ(message("h/x"), "bad URL \"h/x\": no scheme (expected http:// or https://)");
  EXPECT_EQ(message("http:///x"), "bad URL \"http:///x\": no host");
  EXPECT_EQ(message("http://h:0/"), "bad URL \"http://h:0/\": port outside 1..65535");
  EXPECT_EQ(message("http://h:70000/"), "bad URL \"http://h:70000/\": port outside 1..65535");
  EXPECT_EQ(message("http://h:8a/"), "bad URL \"http://h:8a/\": bad port");
  EXPECT_EQ(message("http://h:/"), "bad URL \"http://h:/\": bad port");
  EXPECT_EQ(message("http://u:pw@h/"),
            "bad URL \"http://u:pw@h/\": user information in URLs is not supported");
  EXPECT_EQ(message("http://[::1/"), "bad URL \"http://[::1/\": unterminated IPv6 address");
  EXPECT_EQ(message("http://h/a b"),
            "bad URL \"http://h/a b\": contains a space or control character");
  EXPECT_EQ(
      message("http://h/?X-Amz-Signature=abc&x=%zz"),
      "bad URL \"http://h/?X-Amz-Signature=***&x=%zz\": malformed percent-escape in the query");
  EXPECT_EQ(message("http://h/?sig=abc%"),
            "bad URL \"http://h/?sig=***\": malformed percent-escape in the query");
}

TEST(HttpUrlTest, WireUrlEncodesQueryAndOmitsDefaultPort) {
  HttpRequest r;
  r.scheme = "https";
  r.host = "b.s3.amazonaws.com";
  r.port = 443;
  r.path = "/my%20key";
  r.query = {{"uploadId", "a/b c"}, {"partNumber", "7"}, {"flag", ""}};
  EXPECT_EQ(wire_url(r),
            "https://b.s3.amazonaws.com/my%20key?uploadId=a%2Fb%20c&partNumber=7&flag=");
  r.port = 8443;
  r.path = "";
  r.query.clear();
  EXPECT_EQ(wire_url(r), "https://b.s3.amazonaws.com:8443/");
  EXPECT_EQ(host_and_path(r), "b.s3.amazonaws.com:8443/");
}

TEST(HttpUrlTest, RedactedUrlMasksSecretQueryValues) {
  Result<HttpRequest> r = request_from_url(
      "https://h/"
      "k?X-Amz-Credential=AKID%2F20240101&x-amz-signature=f00d&X-Amz-Date=20240101T000000Z"
      "&sig=abc&Signature=s&token=t&access_token=a&X-Goog-Signature=g&partNumber=3");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(redacted_url(*r),
            "https://h/k?X-Amz-Credential=***&x-amz-signature=***&X-Amz-Date=20240101T000000Z"
            "&sig=***&Signature=***&token=***&access_token=***&X-Goog-Signature=***&partNumber=3");
  EXPECT_EQ(host_and_path(*r), "h/k");
}

TEST(HttpUrlTest, RedactUrlTextKeepsEverythingButSecretValues) {
  EXPECT_EQ(redact_url_text("https://h/p"), "https://h/p");
  EXPECT_EQ(redact_url_text("https://h/p?a=1&sig=2&&b#frag"), "https://h/p?a=1&sig=***&&b#frag");
  EXPECT_EQ(redact_url_text("https://h/p?X%2DAmz%2DSignature=2"),
            "https://h/p?X%2DAmz%2DSignature=***");
}

TEST(HttpLogTest, SecretHeaders) {
  for (const char* name : {"Authorization", "authorization", "X-Amz-Security-Token", "Cookie",
                           "Set-Cookie", "X-Auth-Token", "Ocp-Apim-Subscription-Key",
                           "Proxy-Authorization", "x-amz-server-side-encryption-customer-key",
                           "x-amz-server-side-encryption-customer-key-MD5",
                           "x-amz-copy-source-server-side-encryption-customer-key"})
    EXPECT_TRUE(is_secret_header(name)) << name;
  for (const char* name : {"Content-Type", "x-amz-date", "x-amz-server-side-encryption", "Host"})
    EXPECT_FALSE(is_secret_header(name)) << name;
}

TEST(HttpLogTest, LinesRedactHeadersAndQuery) {
  Result<HttpRequest> r = request_from_url("https://h/k?X-Amz-Signature=deadbeef&partNumber=2");
  ASSERT_TRUE(r.ok());
  r->method = "PUT";
  r->headers = {{"Content-Type", "text/plain"}, {"Authorization", "AWS4-HMAC-SHA256 Signature=1"}};
  EXPECT_EQ(request_debug_line(*r, 5),
            "http: PUT https://h/k?X-Amz-Signature=***&partNumber=2 (5 B body) "
            "[Content-Type: text/plain] [Authorization: ***]");

  HttpResponse response;
  response.status = 200;
  response.headers = {{"Set-Cookie", "session=s3cr3t"}, {"ETag", "\"e\""}};
  response.request_id = "REQ1";
  HttpExchangeStats stats;
  stats.elapsed = std::chrono::milliseconds(12);
  stats.bytes_up = 5;
  stats.bytes_down = 0;
  EXPECT_EQ(response_debug_line(*r, response, stats),
            "http: PUT https://h/k?X-Amz-Signature=***&partNumber=2 -> 200 (12 ms, 5 B up, 0 B "
            "down, request id REQ1) [Set-Cookie: ***] [ETag: \"e\"]");
  response.request_id.clear();
  response.headers.clear();
  EXPECT_EQ(
      response_debug_line(*r, response, stats),
      "http: PUT https://h/k?X-Amz-Signature=***&partNumber=2 -> 200 (12 ms, 5 B up, 0 B down)");
  EXPECT_EQ(failure_debug_line(*r, "Empty reply from server", stats),
            "http: PUT https://h/k?X-Amz-Signature=***&partNumber=2 -> failed (12 ms, 5 B up, 0 B "
            "down): Empty reply from server");
}

}  // namespace
}  // namespace ch
