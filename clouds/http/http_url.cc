#include "clouds/http/http_url.h"

#include <string_view>

#include "base/result.h"
#include "clouds/http/ascii_case.h"
#include "clouds/http/http_client.h"

namespace ch {

namespace {

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

void append_encoded(std::string& out, std::string_view bytes) {
  static const char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : bytes) {
    if (unreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
}


uint16_t default_port(std::string_view scheme) { return scheme == "http" ? 80 : 443; }

std::string authority(const HttpRequest& r) {
  std::string out;
  bool ipv6 = r.host.find(':') != std::string::npos;
  if (ipv6) out += '[';
  out += r.host;
  if (ipv6) out += ']';
  if (r.port != 0 && r.port != default_port(r.scheme)) out += ":" + std::to_string(r.port);
  return out;
}

std::string build_url(const HttpRequest& r, bool redact) {
  std::string url = r.scheme + "://" + authority(r);
  url += r.path.empty() ? "/" : r.path;
  for (size_t i = 0; i < r.query.size(); ++i) {
    url += i == 0 ? '?' : '&';
    append_encoded(url, r.query[i].key);
    url += '=';
    if (redact && is_secret_query_key(r.query[i].key)) {
      url += "***";
    } else {
      append_encoded(url, r.query[i].value);
    }
  }
  return url;
}

Error bad_url(std::string_view url, std::string_view what) {
  return Error{"bad URL \"" + redact_url_text(url) + "\": " + std::string(what)};
}

}  // namespace

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes S; false on a malformed escape. "+" stays "+": these are
// URLs, not HTML form bodies, and presigned URLs encode spaces as %20.
bool percent_decode(std::string_view s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out->push_back(s[i]);
      continue;
    }
    int hi = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
    int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

bool is_secret_query_key(std::string_view key) {
  for (std::string_view k :
       {"X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "X-Goog-Signature",
        "X-Goog-Credential", "sig", "Signature", "token", "access_token", "upload_id"})
    if (ascii_iequals(key, k)) return true;
  return false;
}

std::string wire_url(const HttpRequest& request) { return build_url(request, false); }

std::string redacted_url(const HttpRequest& request) { return build_url(request, true); }

std::string host_and_path(const HttpRequest& request) {
  return authority(request) + (request.path.empty() ? "/" : request.path);
}

std::string redact_url_text(std::string_view url) {
  size_t q = url.find('?');
  if (q == std::string_view::npos) return std::string(url);
  std::string out(url.substr(0, q + 1));
  std::string_view rest = url.substr(q + 1);
  std::string_view fragment;
  if (size_t h = rest.find('#'); h != std::string_view::npos) {
    fragment = rest.substr(h);
    rest = rest.substr(0, h);
  }
  bool first = true;
  while (true) {
    size_t amp = rest.find('&');
    std::string_view item = rest.substr(0, amp);
    if (!first) out += '&';
    first = false;
    size_t eq = item.find('=');
    std::string key;
    std::string_view raw_key = item.substr(0, eq);
    if (eq != std::string_view::npos &&
        (is_secret_query_key(raw_key) ||
         (percent_decode(raw_key, &key) && is_secret_query_key(key)))) {
      out += raw_key;
      out += "=***";
    } else {
      out += item;
    }
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  out += fragment;
  return out;
}

Result<HttpRequest> request_from_url(std::string_view url) {
  for (unsigned char c : url)
    if (c <= ' ' || c == 0x7f) return bad_url(url, "contains a space or control character");
  size_t sep = url.find("://");
  if (sep == std::string_view::npos)
    return bad_url(url, "no scheme (expected http:// or https://)");
  HttpRequest r;
  r.scheme.clear();
  for (char c : url.substr(0, sep)) r.scheme.push_back(ascii_lower(c));
  if (r.scheme != "http" && r.scheme != "https")
    return bad_url(url, "scheme must be http or https");
  std::string_view rest = url.substr(sep + 3);
  size_t auth_end = rest.find_first_of("/?#");
  std::string_view auth = rest.substr(0, auth_end);
  rest = auth_end == std::string_view::npos ? std::string_view() : rest.substr(auth_end);
  if (auth.find('@') != std::string_view::npos)
    return bad_url(url, "user information in URLs is not supported");

  std::string_view port_text;
  bool has_port = false;
  if (!auth.empty() && auth[0] == '[') {
    size_t close = auth.find(']');
    if (close == std::string_view::npos) return bad_url(url, "unterminated IPv6 address");
    r.host = std::string(auth.substr(1, close - 1));
    std::string_view after = auth.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad_url(url, "unexpected text after the IPv6 address");
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    size_t colon = auth.find(':');
    r.host = std::string(auth.substr(0, colon));
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = auth.substr(colon + 1);
    }
  }
  if (r.host.empty()) return bad_url(url, "no host");
  if (has_port) {
    if (port_text.empty() || port_text.size() > 5) return bad_url(url, "bad port");
    unsigned long port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9') return bad_url(url, "bad port");
      port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port == 0 || port > 65535) return bad_url(url, "port outside 1..65535");
    r.port = static_cast<uint16_t>(port);
  }

  if (size_t hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  size_t q = rest.find('?');
  std::string_view path = rest.substr(0, q);
  r.path = path.empty() ? "/" : std::string(path);
  if (q == std::string_view::npos) return r;
  std::string_view query = rest.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    QueryParam p;
    if (!percent_decode(item.substr(0, eq), &p.key))
      return bad_url(url, "malformed percent-escape in the query");
    if (eq != std::string_view::npos && !percent_decode(item.substr(eq + 1), &p.value))
      return bad_url(url, "malformed percent-escape in the query");
    r.query.push_back(std::move(p));
  }
  return r;
}

}  // namespace ch
