// SigV4 in four steps, each a pure string function:
//   1. canonical request: method, canonical URI, canonical query, canonical
//      headers, signed header list, payload hash, joined by "\n";
//   2. string to sign: "AWS4-HMAC-SHA256", the time, the credential scope
//      (date/region/service/aws4_request) and the SHA-256 of step 1;
//   3. signing key: HMAC chain "AWS4"+secret -> date -> region -> service ->
//      "aws4_request";
//   4. signature: hex HMAC of step 2 under the key of step 3.
// The signing key is derived per call, not cached: four HMACs cost about a
// microsecond, and a cache would keep key material alive between requests.
#include "clouds/signing/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <utility>
#include <vector>

#include "clouds/http/ascii_case.h"

namespace ch {

namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
constexpr uint64_t kMaxExpires = 604800;  // SigV4 presigned URLs: at most 7 days

using Mac = std::array<unsigned char, 32>;

Mac hmac(const void* key, size_t key_len, std::string_view data) {
  Mac out{};
  unsigned int len = 0;
  unsigned char* r = HMAC(EVP_sha256(), key, static_cast<int>(key_len),
                          reinterpret_cast<const unsigned char*>(data.data()), data.size(),
                          out.data(), &len);
  CH_CHECK(r != nullptr && len == out.size());
  return out;
}

// RFC 9110 token characters.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

bool is_hex_sha256(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Trims the value and collapses each run of whitespace to one space. Line
// breaks count as whitespace, so an obs-folded value ("a\n  b") signs as
// "a b", as the AWS suite expects.
std::string canonical_header_value(std::string_view v) {
  std::string out;
  bool pending_space = false;
  for (char c : v) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

// Sent but not signed: libcurl and proxies add or rewrite these.
bool unsigned_header(std::string_view lower_name) {
  for (std::string_view n : {"user-agent", "expect", "connection", "transfer-encoding",
                             "x-amzn-trace-id"})
    if (lower_name == n) return true;
  return false;
}

// RFC 3986 remove_dot_segments plus collapsing of empty segments ("//").
// A path ending in "/", "/." or "/.." keeps a trailing slash.
std::string normalize_path(std::string_view path) {
  std::vector<std::string_view> segments;
  bool trailing = false;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view seg = path.substr(i, j - i);
    bool last = j == path.size();
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
      trailing = last;
    } else if (seg == ".") {
      trailing = last;
    } else if (seg.empty()) {
      trailing = last;
    } else {
      segments.push_back(seg);
      trailing = false;
    }
    i = j + 1;
  }
  std::string out = "/";
  for (size_t k = 0; k < segments.size(); ++k) {
    if (k) out += '/';
    out += segments[k];
  }
  if (trailing && !segments.empty()) out += '/';
  return out;
}

std::string canonical_uri(std::string_view wire_path, const SigningOptions& o) {
  std::string path = wire_path.empty() ? std::string("/") : std::string(wire_path);
  if (o.normalize_path) path = normalize_path(path);
  if (o.double_encode_path) path = aws_uri_encode(path, true);
  return path;
}

std::string canonical_query(const std::vector<QueryParam>& params) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(params.size());
  for (const QueryParam& p : params)
    enc.emplace_back(aws_uri_encode(p.key, false), aws_uri_encode(p.value, false));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) {
    if (!out.empty()) out += '&';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

struct CanonicalHeaders {
  std::string text;    // "name:value\n" per name, sorted
  std::string signed_names;  // "host;x-amz-date"
};

// Lowercased names sorted; values of a repeated name joined by "," in
// request order (a stable sort keeps that order).
CanonicalHeaders canonical_headers(const std::vector<HttpHeader>& headers) {
  std::vector<std::pair<std::string, std::string>> items;
  for (const HttpHeader& h : headers) {
    std::string name = ascii_lowercase(h.name);
    if (unsigned_header(name)) continue;
    items.emplace_back(std::move(name), canonical_header_value(h.value));
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  CanonicalHeaders out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0 && items[i].first == items[i - 1].first) {
      out.text.back() = ',';  // replace the "\n" of the previous value
      out.text += items[i].second;
      out.text += '\n';
      continue;
    }
    if (!out.signed_names.empty()) out.signed_names += ';';
    out.signed_names += items[i].first;
    out.text += items[i].first;
    out.text += ':';
    out.text += items[i].second;
    out.text += '\n';
  }
  return out;
}

bool has_header(const std::vector<HttpHeader>& headers, std::string_view name) {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const HttpHeader& h) { return ascii_iequals(h.name, name); });
}

uint16_t default_port(std::string_view scheme) { return scheme == "http" ? 80 : 443; }

std::string host_header_value(const HttpRequest& r) {
  if (r.port == 0 || r.port == default_port(r.scheme)) return r.host;
  return r.host + ":" + std::to_string(r.port);
}

// The signature of STRING_TO_SIGN; key material is wiped before returning.
std::string compute_signature(std::string_view secret, std::string_view date,
                              std::string_view region, std::string_view service,
                              std::string_view string_to_sign) {
  std::string seed = "AWS4";
  seed += secret;
  Mac k_date = hmac(seed.data(), seed.size(), date);
  OPENSSL_cleanse(seed.data(), seed.size());
  Mac k_region = hmac(k_date.data(), k_date.size(), region);
  Mac k_service = hmac(k_region.data(), k_region.size(), service);
  Mac k_signing = hmac(k_service.data(), k_service.size(), "aws4_request");
  Mac sig = hmac(k_signing.data(), k_signing.size(), string_to_sign);
  for (Mac* k : {&k_date, &k_region, &k_service, &k_signing}) OPENSSL_cleanse(k->data(), k->size());
  return hex_encode(sig);
}

Status validate(const HttpRequest& r, const AwsCredentials& c, std::string_view region,
                std::string_view service, const SigningOptions& o) {
  if (c.access_key_id.empty()) return Error{"sigv4: empty access key id"};
  if (c.secret_access_key.empty()) return Error{"sigv4: empty secret access key"};
  if (region.empty()) return Error{"sigv4: empty region"};
  if (service.empty()) return Error{"sigv4: empty service"};
  if (region.find('/') != std::string_view::npos)
    return Error{"sigv4: region '" + std::string(region) + "' contains '/'"};
  if (service.find('/') != std::string_view::npos)
    return Error{"sigv4: service '" + std::string(service) + "' contains '/'"};
  if (r.host.empty()) return Error{"sigv4: request has no host"};
  for (const HttpHeader& h : r.headers)
    if (!is_token(h.name)) return Error{"sigv4: invalid header name '" + h.name + "'"};
  if (o.payload == PayloadHash::kGiven && !is_hex_sha256(o.payload_sha256))
    return Error{"sigv4: payload hash '" + o.payload_sha256 +
                 "' is not 64 lowercase hex digits"};
  if (o.location == SignatureLocation::kHeaders) {
    std::vector<std::string_view> added = {"Authorization", "X-Amz-Date"};
    if (!c.session_token.empty()) added.push_back("X-Amz-Security-Token");
    if (o.add_content_sha256_header) added.push_back("x-amz-content-sha256");
    for (std::string_view n : added)
      if (has_header(r.headers, n))
        return Error{"sigv4: request already has the " + std::string(n) + " header"};
  } else {
    if (o.expires_seconds < 1 || o.expires_seconds > kMaxExpires)
      return Error{"sigv4: expiry of " + std::to_string(o.expires_seconds) +
                   " s is outside 1..604800"};
    for (const QueryParam& p : r.query)
      for (std::string_view n : {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
                                 "X-Amz-SignedHeaders", "X-Amz-Expires",
                                 "X-Amz-Security-Token", "X-Amz-Signature"})
        if (p.key == n)
          return Error{"sigv4: request already has the " + std::string(n) + " parameter"};
  }
  return ok_status();
}

}  // namespace

std::string aws_uri_encode(std::string_view bytes, bool keep_slash) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size());
  for (unsigned char c : bytes) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                      (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string request_url(const HttpRequest& r) {
  std::string url = r.scheme + "://" + host_header_value(r);
  url += r.path.empty() ? "/" : r.path;
  for (size_t i = 0; i < r.query.size(); ++i) {
    url += i == 0 ? '?' : '&';
    url += aws_uri_encode(r.query[i].key, false);
    url += '=';
    url += aws_uri_encode(r.query[i].value, false);
  }
  return url;
}

std::string amz_date(std::chrono::sys_seconds time) {
  using namespace std::chrono;
  sys_days day = floor<days>(time);
  year_month_day ymd{day};
  int y = static_cast<int>(ymd.year());
  if (y < 1970 || y > 9999) return "";
  hh_mm_ss<seconds> hms{time - day};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02u%02uT%02d%02d%02dZ", y,
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

SigningOptions s3_signing_options(SignatureLocation location) {
  SigningOptions o;
  o.location = location;
  o.normalize_path = false;
  o.double_encode_path = false;
  o.add_content_sha256_header = location == SignatureLocation::kHeaders;
  // Presigned S3 URLs are used by other clients with bodies we never see.
  o.payload = location == SignatureLocation::kQuery ? PayloadHash::kUnsigned : PayloadHash::kBody;
  return o;
}

Result<SignedRequest> sign_request(const HttpRequest& request, const AwsCredentials& credentials,
                                   std::string_view region, std::string_view service,
                                   std::chrono::sys_seconds time, const SigningOptions& options) {
  CH_TRY(validate(request, credentials, region, service, options));
  const std::string datetime = amz_date(time);
  if (datetime.empty()) return Error{"sigv4: time outside years 1970..9999"};
  const std::string date = datetime.substr(0, 8);
  const std::string scope =
      date + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
  const bool in_query = options.location == SignatureLocation::kQuery;
  const bool token = !credentials.session_token.empty();

  std::string payload_hash;
  switch (options.payload) {
    case PayloadHash::kBody: payload_hash = sha256_hex(request.body); break;
    case PayloadHash::kUnsigned: payload_hash = kUnsignedPayload; break;
    case PayloadHash::kGiven: payload_hash = options.payload_sha256; break;
  }

  SignedRequest out;
  out.request = request;
  HttpRequest& r = out.request;
  if (!has_header(r.headers, "host")) r.headers.push_back({"Host", host_header_value(r)});

  // Headers that are signed are in r.headers before the canonical headers
  // are computed; in query form nothing is added to the headers.
  std::vector<HttpHeader> late_headers;  // added after signing, unsigned
  size_t date_index = 0;
  if (!in_query) {
    if (token) {
      if (options.sign_session_token)
        r.headers.push_back({"X-Amz-Security-Token", credentials.session_token});
      else
        late_headers.push_back({"X-Amz-Security-Token", credentials.session_token});
    }
    date_index = r.headers.size();
    r.headers.push_back({"X-Amz-Date", datetime});
    if (options.add_content_sha256_header)
      r.headers.push_back({"x-amz-content-sha256", payload_hash});
  }
  CanonicalHeaders ch = canonical_headers(r.headers);

  // Query form: the signing parameters take part in the canonical query
  // (all but the signature, and the token only when it is signed).
  std::vector<QueryParam> signed_query = r.query;
  std::vector<QueryParam> added_query;
  if (in_query) {
    added_query = {
        {"X-Amz-Algorithm", std::string(kAlgorithm)},
        {"X-Amz-Credential", credentials.access_key_id + "/" + scope},
        {"X-Amz-Date", datetime},
        {"X-Amz-SignedHeaders", ch.signed_names},
        {"X-Amz-Expires", std::to_string(options.expires_seconds)},
    };
    signed_query.insert(signed_query.end(), added_query.begin(), added_query.end());
    if (token) {
      added_query.push_back({"X-Amz-Security-Token", credentials.session_token});
      if (options.sign_session_token) signed_query.push_back(added_query.back());
    }
  }

  out.canonical_request = request.method + "\n" + canonical_uri(r.path, options) + "\n" +
                          canonical_query(signed_query) + "\n" + ch.text + "\n" +
                          ch.signed_names + "\n" + payload_hash;
  out.string_to_sign = std::string(kAlgorithm) + "\n" + datetime + "\n" + scope + "\n" +
                       sha256_hex(out.canonical_request);
  out.signature =
      compute_signature(credentials.secret_access_key, date, region, service, out.string_to_sign);

  if (in_query) {
    added_query.push_back({"X-Amz-Signature", out.signature});
    r.query.insert(r.query.end(), added_query.begin(), added_query.end());
  } else {
    // The unsigned token goes where a signed one would have: before X-Amz-Date.
    r.headers.insert(r.headers.begin() + static_cast<std::ptrdiff_t>(date_index),
                     late_headers.begin(), late_headers.end());
    r.headers.push_back({"Authorization", std::string(kAlgorithm) +
                                              " Credential=" + credentials.access_key_id + "/" +
                                              scope + ", SignedHeaders=" + ch.signed_names +
                                              ", Signature=" + out.signature});
  }
  return out;
}

}  // namespace ch
