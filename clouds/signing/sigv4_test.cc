#include "clouds/signing/sigv4.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace ch {
namespace {

namespace fs = std::filesystem;
using std::chrono::sys_seconds;

// The aws-c-auth SigV4 suite lives outside the repository, in ../shared.
fs::path suite_dir() {
  const char* env = std::getenv("CLOUD_HELPER_SHARED_DIR");
  fs::path shared = env && *env ? fs::path(env) : fs::path(CLOUD_HELPER_SOURCE_DIR) / "../shared";
  return shared / "testdata" / "sigv4";
}

std::vector<std::string> suite_cases() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(suite_dir(), ec))
    if (e.is_directory() && fs::exists(e.path() / "request.txt"))
      names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

sys_seconds utc(int y, unsigned mo, unsigned d, int h, int mi, int s) {
  using namespace std::chrono;
  return sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s};
}

// "2015-08-30T12:36:00Z"
sys_seconds parse_timestamp(const std::string& t) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  EXPECT_EQ(std::sscanf(t.c_str(), "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &s), 6) << t;
  return utc(y, mo, d, h, mi, s);
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// An HTTP/1.1 request as the suite writes it: request line, headers (a line
// starting with a space continues the previous value, kept with its "\n" so
// the text can be rebuilt byte for byte), blank line, body.
struct ParsedRequest {
  HttpRequest request;
  std::string target;  // the request-target as written
};

ParsedRequest parse_request(const std::string& text) {
  ParsedRequest out;
  HttpRequest& r = out.request;
  size_t eol = text.find('\n');
  std::string line = text.substr(0, eol);
  // The target may contain spaces ("/example space/"): split at the first
  // and the last space.
  size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  r.method = line.substr(0, sp1);
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t q = out.target.find('?');
  r.path = out.target.substr(0, q);
  if (q != std::string::npos) {
    std::string qs = out.target.substr(q + 1);
    size_t i = 0;
    while (i <= qs.size()) {
      size_t amp = qs.find('&', i);
      if (amp == std::string::npos) amp = qs.size();
      std::string kv = qs.substr(i, amp - i);
      size_t eq = kv.find('=');
      r.query.push_back({percent_decode(kv.substr(0, eq)),
                         eq == std::string::npos ? "" : percent_decode(kv.substr(eq + 1))});
      i = amp + 1;
    }
  }
  size_t pos = eol == std::string::npos ? text.size() : eol + 1;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string l = text.substr(pos, end - pos);
    pos = end + 1;
    if (l.empty()) {
      r.body = pos < text.size() ? text.substr(pos) : "";
      break;
    }
    if ((l[0] == ' ' || l[0] == '\t') && !r.headers.empty()) {
      r.headers.back().value += "\n" + l;
      continue;
    }
    size_t colon = l.find(':');
    r.headers.push_back({l.substr(0, colon), l.substr(colon + 1)});
  }
  for (const HttpHeader& h : r.headers)
    if (h.name == "Host") r.host = h.value;
  return out;
}

std::string encode_params(const std::vector<QueryParam>& params, size_t from) {
  std::string out;
  for (size_t i = from; i < params.size(); ++i) {
    if (!out.empty()) out += '&';
    out += aws_uri_encode(params[i].key, false) + "=" + aws_uri_encode(params[i].value, false);
  }
  return out;
}

// The signed request as the suite prints it: the original text, with the
// signer's headers appended (header form) or its parameters appended to the
// original target (query form).
std::string render(const ParsedRequest& original, const HttpRequest& signed_request) {
  std::string target = original.target;
  size_t added = signed_request.query.size() - original.request.query.size();
  if (added) target += (original.request.query.empty() ? "?" : "&") +
                       encode_params(signed_request.query, original.request.query.size());
  std::string out = signed_request.method + " " + target + " HTTP/1.1\n";
  for (const HttpHeader& h : signed_request.headers) out += h.name + ":" + h.value + "\n";
  return out + "\n" + signed_request.body;
}

const HttpHeader* find_header(const HttpRequest& r, std::string_view name) {
  for (const HttpHeader& h : r.headers)
    if (h.name == name) return &h;
  return nullptr;
}

class Sigv4Suite : public ::testing::TestWithParam<std::string> {};

TEST_P(Sigv4Suite, MatchesAwsCAuth) {
  const fs::path dir = suite_dir() / GetParam();
  auto expect = [&](const char* file) { return read_text(dir / file); };
  ParsedRequest parsed = parse_request(expect("request.txt"));
  nlohmann::json ctx = nlohmann::json::parse(expect("context.json"));

  AwsCredentials creds{ctx["credentials"]["access_key_id"],
                       ctx["credentials"]["secret_access_key"],
                       ctx["credentials"].value("token", "")};
  SigningOptions opts;
  opts.normalize_path = ctx["normalize"];
  opts.double_encode_path = true;  // every case uses a non-S3 service
  opts.add_content_sha256_header = ctx["sign_body"];
  opts.expires_seconds = ctx["expiration_in_seconds"];
  opts.sign_session_token = !ctx.value("omit_session_token", false);
  sys_seconds time = parse_timestamp(ctx["timestamp"]);

  for (auto [location, prefix] : {std::pair{SignatureLocation::kHeaders, "header-"},
                                  std::pair{SignatureLocation::kQuery, "query-"}}) {
    SCOPED_TRACE(prefix);
    opts.location = location;
    auto signed_request =
        sign_request(parsed.request, creds, ctx["region"].get<std::string>(),
                     ctx["service"].get<std::string>(), time, opts);
    ASSERT_TRUE(signed_request.ok()) << signed_request.message();
    std::string p = prefix;
    EXPECT_EQ(signed_request->canonical_request, expect((p + "canonical-request.txt").c_str()));
    EXPECT_EQ(signed_request->string_to_sign, expect((p + "string-to-sign.txt").c_str()));
    EXPECT_EQ(signed_request->signature, expect((p + "signature.txt").c_str()));
    EXPECT_EQ(render(parsed, signed_request->request),
              expect((p + "signed-request.txt").c_str()));
  }
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

INSTANTIATE_TEST_SUITE_P(Sigv4, Sigv4Suite, ::testing::ValuesIn(suite_cases()), test_name);

// A missing ../shared must fail, not instantiate zero cases.
TEST(Sigv4, SuiteIsPresent) {
  EXPECT_GE(suite_cases().size(), 38u) << suite_dir();
}

const AwsCredentials kS3DocKeys{"AKIAIOSFODNN7EXAMPLE",
                                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};

HttpRequest s3_request(std::string method, std::string path) {
  HttpRequest r;
  r.method = std::move(method);
  r.host = "examplebucket.s3.amazonaws.com";
  r.path = std::move(path);
  return r;
}

// S3 API reference, "Signature Calculations for the Authorization Header",
// example GET Object.
TEST(Sigv4, S3DocGetObject) {
  HttpRequest r = s3_request("GET", "/test.txt");
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}};
  auto s = sign_request(r, kS3DocKeys, "us-east-1", "s3", utc(2013, 5, 24, 0, 0, 0),
                        s3_signing_options());
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(s->canonical_request,
            "GET\n/test.txt\n\n"
            "host:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\n"
            "host;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s->string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(s->signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  const HttpHeader* auth = find_header(s->request, "Authorization");
  ASSERT_NE(auth, nullptr);
  EXPECT_EQ(auth->value,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

// Same page, example PUT Object: a key with "$" (encoded once, as S3 wants),
// a Date header and a precomputed payload hash.
TEST(Sigv4, S3DocPutObject) {
  HttpRequest r = s3_request("PUT", aws_encode_path("/test$file.text"));
  EXPECT_EQ(r.path, "/test%24file.text");
  r.headers = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
               {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  SigningOptions o = s3_signing_options();
  o.payload = PayloadHash::kGiven;
  o.payload_sha256 = sha256_hex("Welcome to Amazon S3.");
  EXPECT_EQ(o.payload_sha256, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  auto s = sign_request(r, kS3DocKeys, "us-east-1", "s3", utc(2013, 5, 24, 0, 0, 0), o);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(s->signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

// Same page, example GET Bucket Lifecycle: a parameter without a value.
TEST(Sigv4, S3DocGetBucketLifecycle) {
  HttpRequest r = s3_request("GET", "/");
  r.query = {{"lifecycle", ""}};
  auto s = sign_request(r, kS3DocKeys, "us-east-1", "s3", utc(2013, 5, 24, 0, 0, 0),
                        s3_signing_options());
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(s->signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

// Same page, example Get Bucket (List Objects): parameters sorted.
TEST(Sigv4, S3DocListObjects) {
  HttpRequest r = s3_request("GET", "/");
  r.query = {{"max-keys", "2"}, {"prefix", "J"}};
  auto s = sign_request(r, kS3DocKeys, "us-east-1", "s3", utc(2013, 5, 24, 0, 0, 0),
                        s3_signing_options());
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(s->signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

// S3 API reference, "Authenticating Requests: Using Query Parameters".
TEST(Sigv4, S3DocPresignedUrl) {
  HttpRequest r = s3_request("GET", "/test.txt");
  SigningOptions o = s3_signing_options(SignatureLocation::kQuery);
  o.expires_seconds = 86400;
  auto s = sign_request(r, kS3DocKeys, "us-east-1", "s3", utc(2013, 5, 24, 0, 0, 0), o);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(s->canonical_request,
            "GET\n/test.txt\n"
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
            "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
            "X-Amz-SignedHeaders=host\n"
            "host:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD");
  EXPECT_EQ(s->signature, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  EXPECT_EQ(request_url(s->request),
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&"
            "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&"
            "X-Amz-Date=20130524T000000Z&X-Amz-SignedHeaders=host&X-Amz-Expires=86400&"
            "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  // The Host header the signer added is the one it signed.
  ASSERT_NE(find_header(s->request, "Host"), nullptr);
  EXPECT_EQ(find_header(s->request, "Host")->value, "examplebucket.s3.amazonaws.com");
}

// IAM User Guide, the original SigV4 walkthrough (IAM ListUsers).
TEST(Sigv4, IamDocListUsers) {
  HttpRequest r;
  r.host = "iam.amazonaws.com";
  r.query = {{"Action", "ListUsers"}, {"Version", "2010-05-08"}};
  r.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
  auto s = sign_request(r, {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""},
                        "us-east-1", "iam", utc(2015, 8, 30, 12, 36, 0), SigningOptions{});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(s->signature, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

TEST(Sigv4, AddsHostWithNonDefaultPort) {
  HttpRequest r;
  r.scheme = "http";
  r.host = "127.0.0.1";
  r.port = 5000;
  auto s = sign_request(r, kS3DocKeys, "us-east-1", "s3", utc(2013, 5, 24, 0, 0, 0),
                        s3_signing_options());
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_NE(s->canonical_request.find("\nhost:127.0.0.1:5000\n"), std::string::npos);
  EXPECT_EQ(request_url(s->request), "http://127.0.0.1:5000/");
}

TEST(Sigv4, UnsignedHeadersStayUnsigned) {
  HttpRequest r = s3_request("GET", "/k");
  r.headers = {{"User-Agent", "cloud_helper/0.1"}, {"Expect", "100-continue"}};
  auto s = sign_request(r, kS3DocKeys, "us-east-1", "s3", utc(2013, 5, 24, 0, 0, 0),
                        s3_signing_options());
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(s->canonical_request.find("user-agent"), std::string::npos);
  EXPECT_EQ(s->canonical_request.find("expect"), std::string::npos);
  EXPECT_NE(find_header(s->request, "User-Agent"), nullptr);
}

TEST(Sigv4, S3KeepsDotSegmentsAndSlashes) {
  HttpRequest r = s3_request("GET", "/a//b/../c%20d");
  auto s = sign_request(r, kS3DocKeys, "us-east-1", "s3", utc(2013, 5, 24, 0, 0, 0),
                        s3_signing_options());
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(s->canonical_request.substr(0, 19), "GET\n/a//b/../c%20d\n");
  // Other services normalise, then encode the wire path once more.
  auto o = sign_request(r, kS3DocKeys, "us-east-1", "ec2", utc(2013, 5, 24, 0, 0, 0),
                        SigningOptions{});
  ASSERT_TRUE(o.ok()) << o.message();
  EXPECT_EQ(o->canonical_request.substr(0, 16), "GET\n/a/c%2520d\n\n");
}

TEST(Sigv4, SecretNeverAppears) {
  HttpRequest r = s3_request("GET", "/k");
  AwsCredentials c{"AKID", "SECRETSECRET", "TOKEN"};
  for (auto loc : {SignatureLocation::kHeaders, SignatureLocation::kQuery}) {
    auto s = sign_request(r, c, "us-east-1", "s3", utc(2013, 5, 24, 0, 0, 0),
                          s3_signing_options(loc));
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(s->canonical_request.find("SECRET"), std::string::npos);
    EXPECT_EQ(s->string_to_sign.find("SECRET"), std::string::npos);
    EXPECT_EQ(request_url(s->request).find("SECRET"), std::string::npos);
    for (const HttpHeader& h : s->request.headers)
      EXPECT_EQ(h.value.find("SECRET"), std::string::npos) << h.name;
  }
}

TEST(Sigv4, AmzDate) {
  EXPECT_EQ(amz_date(utc(2015, 8, 30, 12, 36, 0)), "20150830T123600Z");
  EXPECT_EQ(amz_date(utc(1999, 12, 31, 23, 59, 59)), "19991231T235959Z");
  EXPECT_EQ(amz_date(utc(1969, 12, 31, 23, 59, 59)), "");
}

TEST(Sigv4, UriEncode) {
  EXPECT_EQ(aws_uri_encode("a b+c/~*", false), "a%20b%2Bc%2F~%2A");
  EXPECT_EQ(aws_uri_encode("a b+c/~*", true), "a%20b%2Bc/~%2A");
  EXPECT_EQ(aws_uri_encode("\xe1\x88\xb4", false), "%E1%88%B4");
}

TEST(Sigv4, Errors) {
  const auto t = utc(2013, 5, 24, 0, 0, 0);
  HttpRequest r = s3_request("GET", "/k");
  auto msg = [&](const HttpRequest& req, const AwsCredentials& c, std::string_view region,
                 std::string_view service, std::chrono::sys_seconds time,
                 const SigningOptions& o) {
    auto s = sign_request(req, c, region, service, time, o);
    return s.ok() ? std::string("ok") : s.message();
  };
  SigningOptions o = s3_signing_options();
  EXPECT_EQ(msg(r, {"", "s", ""}, "us-east-1", "s3", t, o), "sigv4: empty access key id");
  EXPECT_EQ(msg(r, {"a", "", ""}, "us-east-1", "s3", t, o), "sigv4: empty secret access key");
  EXPECT_EQ(msg(r, kS3DocKeys, "", "s3", t, o), "sigv4: empty region");
  EXPECT_EQ(msg(r, kS3DocKeys, "us-east-1", "", t, o), "sigv4: empty service");
  EXPECT_EQ(msg(r, kS3DocKeys, "us/east", "s3", t, o),
            "sigv4: region 'us/east' contains '/'");
  EXPECT_EQ(msg(s3_request("GET", "/"), kS3DocKeys, "us-east-1", "s3", t, o), "ok");
  HttpRequest no_host = r;
  no_host.host.clear();
  EXPECT_EQ(msg(no_host, kS3DocKeys, "us-east-1", "s3", t, o), "sigv4: request has no host");
  HttpRequest bad_name = r;
  bad_name.headers = {{"Bad Name", "x"}};
  EXPECT_EQ(msg(bad_name, kS3DocKeys, "us-east-1", "s3", t, o),
            "sigv4: invalid header name 'Bad Name'");
  HttpRequest has_auth = r;
  has_auth.headers = {{"authorization", "x"}};
  EXPECT_EQ(msg(has_auth, kS3DocKeys, "us-east-1", "s3", t, o),
            "sigv4: request already has the Authorization header");
  SigningOptions given = o;
  given.payload = PayloadHash::kGiven;
  given.payload_sha256 = "ABC";
  EXPECT_EQ(msg(r, kS3DocKeys, "us-east-1", "s3", t, given),
            "sigv4: payload hash 'ABC' is not 64 lowercase hex digits");
  SigningOptions q = s3_signing_options(SignatureLocation::kQuery);
  q.expires_seconds = 604801;
  EXPECT_EQ(msg(r, kS3DocKeys, "us-east-1", "s3", t, q),
            "sigv4: expiry of 604801 s is outside 1..604800");
  q.expires_seconds = 0;
  EXPECT_EQ(msg(r, kS3DocKeys, "us-east-1", "s3", t, q),
            "sigv4: expiry of 0 s is outside 1..604800");
  HttpRequest presigned = r;
  presigned.query = {{"X-Amz-Signature", "x"}};
  EXPECT_EQ(msg(presigned, kS3DocKeys, "us-east-1", "s3", t,
                s3_signing_options(SignatureLocation::kQuery)),
            "sigv4: request already has the X-Amz-Signature parameter");
  EXPECT_EQ(msg(r, kS3DocKeys, "us-east-1", "s3", utc(1969, 1, 1, 0, 0, 0), o),
            "sigv4: time outside years 1970..9999");
}

}  // namespace
}  // namespace ch
