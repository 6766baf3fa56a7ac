#include "clouds/alicloud/alicloud_sign.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <ctime>

#include "clouds/http/ascii_case.h"
#include "clouds/signing/digest.h"
#include "clouds/signing/sigv4.h"

namespace ch {

namespace {

std::string hmac(const EVP_MD* md, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

void set_header(HttpRequest& r, std::string name, std::string value) {
  for (HttpHeader& h : r.headers)
    if (ascii_iequals(h.name, name)) {
      h.value = std::move(value);
      return;
    }
  r.headers.push_back({std::move(name), std::move(value)});
}

std::string header(const HttpRequest& r, std::string_view name) {
  for (const HttpHeader& h : r.headers)
    if (ascii_iequals(h.name, name)) return h.value;
  return "";
}

// x-oss-* (and, for V4, content-type and content-md5) headers as
// "name:value\n", lowercase names, sorted; repeated names joined with ",".
std::string canonical_headers(const HttpRequest& r, bool v4) {
  std::vector<std::pair<std::string, std::string>> hs;
  for (const HttpHeader& h : r.headers) {
    std::string low = ascii_lowercase(h.name);
    if (low.rfind("x-oss-", 0) == 0 || (v4 && (low == "content-type" || low == "content-md5")))
      hs.emplace_back(low, trim(h.value));
  }
  std::stable_sort(hs.begin(), hs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out;
  for (size_t i = 0; i < hs.size(); ++i) {
    if (i > 0 && hs[i].first == hs[i - 1].first) {
      out.pop_back();
      out += "," + hs[i].second + "\n";
    } else {
      out += hs[i].first + ":" + hs[i].second + "\n";
    }
  }
  return out;
}

std::string resource(std::string_view bucket, std::string_view key) {
  std::string r = "/";
  if (!bucket.empty()) r += std::string(bucket) + "/";
  r += key;
  return r;
}

// OSS V1: only these query parameters are part of the signed resource.
constexpr std::array<std::string_view, 30> kV1Subresources = {
    "acl", "append", "bucketInfo", "cname", "comp", "cors", "delete", "endTime", "img", "lifecycle",
    "live", "location", "logging", "objectMeta", "partNumber", "position", "qos", "referer",
    "replication", "restore", "security-token", "startTime", "status", "style", "symlink", "tagging",
    "uploadId", "uploads", "website", "x-oss-process"};

}  // namespace

std::string ali_percent_encode(std::string_view s, bool keep_slash) { return aws_uri_encode(s, keep_slash); }

std::string http_date(std::chrono::sys_seconds t) {
  std::time_t tt = t.time_since_epoch().count();
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string oss_v4_canonical_request(const HttpRequest& r, std::string_view bucket, std::string_view key) {
  std::vector<std::pair<std::string, std::string>> q;
  for (const QueryParam& p : r.query) q.emplace_back(ali_percent_encode(p.key), ali_percent_encode(p.value));
  std::sort(q.begin(), q.end());
  std::string query;
  for (const auto& [k, v] : q) {
    if (!query.empty()) query += '&';
    query += k;
    if (!v.empty()) query += "=" + v;
  }
  std::string payload = header(r, "x-oss-content-sha256");
  if (payload.empty()) payload = "UNSIGNED-PAYLOAD";
  return r.method + "\n" + ali_percent_encode(resource(bucket, key), true) + "\n" + query + "\n" +
         canonical_headers(r, true) + "\n" + "" + "\n" + payload;
}

std::string oss_v4_string_to_sign(const HttpRequest& r, std::string_view region, std::string_view bucket,
                                  std::string_view key) {
  std::string datetime = header(r, "x-oss-date");
  std::string scope = datetime.substr(0, 8) + "/" + std::string(region) + "/oss/aliyun_v4_request";
  return "OSS4-HMAC-SHA256\n" + datetime + "\n" + scope + "\n" + sha256_hex(oss_v4_canonical_request(r, bucket, key));
}

void oss_sign_v4(HttpRequest& r, const AliCredentials& c, std::string_view region, std::string_view bucket,
                 std::string_view key, std::chrono::sys_seconds now) {
  std::string datetime = amz_date(now);
  std::string date = datetime.substr(0, 8);
  set_header(r, "x-oss-date", datetime);
  set_header(r, "x-oss-content-sha256", "UNSIGNED-PAYLOAD");
  if (!c.security_token.empty()) set_header(r, "x-oss-security-token", c.security_token);
  std::string k = hmac(EVP_sha256(), "aliyun_v4" + c.access_key_secret, date);
  k = hmac(EVP_sha256(), k, region);
  k = hmac(EVP_sha256(), k, "oss");
  k = hmac(EVP_sha256(), k, "aliyun_v4_request");
  std::string sig = hmac(EVP_sha256(), k, oss_v4_string_to_sign(r, region, bucket, key));
  set_header(r, "Authorization", "OSS4-HMAC-SHA256 Credential=" + c.access_key_id + "/" + date + "/" +
                                     std::string(region) + "/oss/aliyun_v4_request,Signature=" +
                                     hex_encode(bytes_of(sig)));
}

std::string oss_v1_string_to_sign(const HttpRequest& r, std::string_view bucket, std::string_view key) {
  std::vector<std::pair<std::string, std::string>> sub;
  for (const QueryParam& p : r.query)
    if (std::find(kV1Subresources.begin(), kV1Subresources.end(), p.key) != kV1Subresources.end())
      sub.emplace_back(p.key, p.value);
  std::sort(sub.begin(), sub.end());
  std::string res = resource(bucket, key);
  for (size_t i = 0; i < sub.size(); ++i)
    res += (i == 0 ? "?" : "&") + sub[i].first + (sub[i].second.empty() ? "" : "=" + sub[i].second);
  return r.method + "\n" + header(r, "Content-MD5") + "\n" + header(r, "Content-Type") + "\n" +
         header(r, "Date") + "\n" + canonical_headers(r, false) + res;
}

void oss_sign_v1(HttpRequest& r, const AliCredentials& c, std::string_view bucket, std::string_view key,
                 std::chrono::sys_seconds now) {
  if (header(r, "Date").empty()) set_header(r, "Date", http_date(now));
  if (!c.security_token.empty()) set_header(r, "x-oss-security-token", c.security_token);
  std::string sig = hmac(EVP_sha1(), c.access_key_secret, oss_v1_string_to_sign(r, bucket, key));
  set_header(r, "Authorization", "OSS " + c.access_key_id + ":" + base64_encode(bytes_of(sig)));
}

std::string rpc_string_to_sign(std::string_view method, std::vector<std::pair<std::string, std::string>> params) {
  for (auto& [k, v] : params) {
    k = ali_percent_encode(k);
    v = ali_percent_encode(v);
  }
  std::sort(params.begin(), params.end());
  std::string canonical;
  for (const auto& [k, v] : params) canonical += (canonical.empty() ? "" : "&") + k + "=" + v;
  return std::string(method) + "&" + ali_percent_encode("/") + "&" + ali_percent_encode(canonical);
}

std::string rpc_signature(std::string_view method, const std::vector<std::pair<std::string, std::string>>& params,
                          std::string_view secret) {
  std::string key = std::string(secret) + "&";
  return base64_encode(bytes_of(hmac(EVP_sha1(), key, rpc_string_to_sign(method, params))));
}

}  // namespace ch
