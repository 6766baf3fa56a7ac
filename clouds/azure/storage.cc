// Azure Storage locations and request authorisation (storage.h states the
// contract). SharedKey follows "Authorize with Shared Key" for the Blob
// service, version 2015-02-21 and later:
// https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key
//   StringToSign = VERB \n Content-Encoding \n Content-Language \n
//                  Content-Length ("" when 0) \n Content-MD5 \n Content-Type \n
//                  Date \n If-Modified-Since \n If-Match \n If-None-Match \n
//                  If-Unmodified-Since \n Range \n
//                  CanonicalizedHeaders CanonicalizedResource
// CanonicalizedHeaders: every x-ms-* header, name lower-cased, sorted, runs
// of whitespace in the value folded to one space, trimmed, "name:value\n".
// CanonicalizedResource: "/" ACCOUNT + the encoded URI path, then for each
// query parameter (names lower-cased, sorted; decoded values, several values
// of one name sorted and comma-joined) "\nname:value".
#include "clouds/azure/storage.h"

#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <utility>
#include <vector>

#include "clouds/http/ascii_case.h"
#include "clouds/http/http_client.h"
#include "clouds/http/http_url.h"
#include "clouds/signing/digest.h"
#include "clouds/signing/sigv4.h"
#include "helper/output.h"

namespace ch {

namespace {

constexpr std::string_view kDevAccount = "devstoreaccount1";
// Azurite's well-known development account key (published in its README).
constexpr std::string_view kDevKey =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
constexpr std::string_view kDevEndpoint = "http://127.0.0.1:10000/devstoreaccount1";

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// Strict RFC 4648 base64 (standard alphabet, padding required).
bool base64_decode(std::string_view in, std::string* out) {
  out->clear();
  if (in.empty() || in.size() % 4 != 0) return false;
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      char c = in[i + j];
      if (c == '=' && i + 4 == in.size() && j >= 2) {
        v[j] = 0;
        ++pad;
      } else {
        if (pad > 0) return false;  // data after padding
        v[j] = val(c);
        if (v[j] < 0) return false;
      }
    }
    uint32_t n = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) | (uint32_t(v[2]) << 6) | uint32_t(v[3]);
    out->push_back(static_cast<char>(n >> 16));
    if (pad < 2) out->push_back(static_cast<char>((n >> 8) & 0xff));
    if (pad < 1) out->push_back(static_cast<char>(n & 0xff));
  }
  return true;
}

bool valid_container_name(std::string_view c) {
  // Azure: 3-63 of [a-z0-9-], starting and ending with a letter or digit, no "--".
  if (c == "$root") return true;
  if (c.size() < 3 || c.size() > 63) return false;
  for (char ch : c) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')) return false;
  }
  return c.front() != '-' && c.back() != '-' && c.find("--") == std::string_view::npos;
}

bool valid_account_name(std::string_view a) {
  // Azure: 3-24 lowercase letters and digits.
  if (a.size() < 3 || a.size() > 24) return false;
  return std::all_of(a.begin(), a.end(), [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'); });
}

std::string header_value(const HttpRequest& r, std::string_view name) {
  for (const HttpHeader& h : r.headers) {
    if (ascii_iequals(h.name, name)) return h.value;
  }
  return "";
}

bool has_header(const HttpRequest& r, std::string_view name) {
  for (const HttpHeader& h : r.headers) {
    if (ascii_iequals(h.name, name)) return true;
  }
  return false;
}

// Folds every run of whitespace into one space and trims the ends.
std::string fold_whitespace(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

std::string rfc1123_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

// The blob endpoint of ACCOUNT from the connection string's fields.
std::string default_endpoint(const std::map<std::string, std::string>& f, std::string_view account,
                             std::string_view storage_suffix) {
  auto get = [&](const char* k) {
    auto it = f.find(k);
    return it == f.end() ? std::string() : it->second;
  };
  std::string protocol = get("DefaultEndpointsProtocol");
  if (protocol.empty()) protocol = "https";
  std::string suffix = get("EndpointSuffix");
  if (suffix.empty()) suffix = std::string(storage_suffix);
  return protocol + "://" + std::string(account) + ".blob." + suffix;
}

// The account a blob endpoint URL names: the first label of an
// ACCOUNT.blob.* host, else the first path segment (path style).
std::string account_of_endpoint(std::string_view endpoint) {
  size_t scheme = endpoint.find("://");
  if (scheme == std::string_view::npos) return "";
  std::string_view rest = endpoint.substr(scheme + 3);
  size_t slash = rest.find('/');
  std::string_view host = rest.substr(0, slash);
  size_t blob = host.find(".blob.");
  if (blob != std::string_view::npos) return std::string(host.substr(0, blob));
  if (slash == std::string_view::npos) return "";
  std::string_view path = rest.substr(slash + 1);
  return std::string(path.substr(0, path.find('/')));
}

Status check_key(std::string_view key, std::string_view source) {
  std::string raw;
  if (!base64_decode(key, &raw)) return Error{std::string(source) + ": the account key is not base64"};
  return ok_status();
}

}  // namespace

// ---------------------------------------------------------------------------
// Locations

std::string BlobLocation::url() const { return endpoint + "/" + container + "/" + aws_uri_encode(name, /*keep_slash=*/true); }

std::string BlobLocation::az_url() const { return "az://" + account + "/" + container + "/" + name; }

BlobLocation BlobLocation::with_name(std::string_view blob_name) const {
  BlobLocation out = *this;
  if (name.empty() || name.back() == '/') {
    out.name = name + std::string(blob_name);
  } else {
    out.name = std::string(blob_name);
  }
  return out;
}

Result<ConnectionString> parse_connection_string(std::string_view text, std::string_view storage_suffix) {
  ConnectionString cs;
  size_t start = 0;
  while (start <= text.size()) {
    size_t semi = text.find(';', start);
    std::string part = trim(text.substr(start, semi == std::string_view::npos ? std::string_view::npos : semi - start));
    if (!part.empty()) {
      size_t eq = part.find('=');
      if (eq == std::string::npos || eq == 0) {
        // Never quote the part: it may be a key.
        return Error{"AZURE_STORAGE_CONNECTION_STRING: part " + std::to_string(cs.fields.size() + 1) +
                     " is not KEY=VALUE"};
      }
      cs.fields[trim(part.substr(0, eq))] = trim(part.substr(eq + 1));
    }
    if (semi == std::string_view::npos) break;
    start = semi + 1;
  }
  auto get = [&](const char* k) {
    auto it = cs.fields.find(k);
    return it == cs.fields.end() ? std::string() : it->second;
  };
  if (ascii_lowercase(get("UseDevelopmentStorage")) == "true") {
    cs.account = kDevAccount;
    cs.key = kDevKey;
    cs.blob_endpoint = kDevEndpoint;
    return cs;
  }
  cs.account = get("AccountName");
  cs.key = get("AccountKey");
  cs.sas = get("SharedAccessSignature");
  if (!cs.sas.empty() && cs.sas.front() == '?') cs.sas.erase(0, 1);
  cs.blob_endpoint = get("BlobEndpoint");
  while (!cs.blob_endpoint.empty() && cs.blob_endpoint.back() == '/') cs.blob_endpoint.pop_back();
  if (cs.account.empty() && !cs.blob_endpoint.empty()) cs.account = account_of_endpoint(cs.blob_endpoint);
  if (cs.blob_endpoint.empty() && !cs.account.empty()) {
    cs.blob_endpoint = default_endpoint(cs.fields, cs.account, storage_suffix);
  }
  if (!cs.key.empty()) add_secret(cs.key);
  if (!cs.sas.empty()) add_secret(cs.sas);
  return cs;
}

Result<BlobLocation> parse_blob_url(std::string_view url, const AzureEnv& env, const AzureCloud& cloud) {
  const std::string context = "storage_url '" + std::string(url) + "'";
  BlobLocation loc;
  std::string path;  // "CONTAINER/NAME", decoded
  if (starts_with(url, "az://")) {
    std::string_view rest = url.substr(5);
    size_t slash = rest.find('/');
    loc.account = std::string(rest.substr(0, slash));
    if (slash == std::string_view::npos) return Error{context + ": no container (az://ACCOUNT/CONTAINER/[NAME])"};
    path = std::string(rest.substr(slash + 1));
    if (!valid_account_name(loc.account)) {
      return Error{context + ": invalid storage account name '" + loc.account +
                   "' (3 to 24 lowercase letters and digits)"};
    }
    loc.endpoint = "https://" + loc.account + ".blob." + cloud.storage_suffix;
    std::string cs_text = env.get("AZURE_STORAGE_CONNECTION_STRING");
    if (!cs_text.empty()) {
      Result<ConnectionString> cs = parse_connection_string(cs_text, cloud.storage_suffix);
      if (cs.ok() && cs->account == loc.account && !cs->blob_endpoint.empty()) loc.endpoint = cs->blob_endpoint;
    }
  } else if (starts_with(url, "https://") || starts_with(url, "http://")) {
    size_t scheme_end = url.find("://") + 3;
    std::string_view rest = url.substr(scheme_end);
    if (rest.find_first_of("?#") != std::string_view::npos) {
      return Error{context + ": a query or fragment is not accepted (put a SAS in AZURE_STORAGE_SAS_TOKEN)"};
    }
    size_t slash = rest.find('/');
    std::string_view host_port = rest.substr(0, slash);
    if (host_port.empty()) return Error{context + ": no host"};
    if (host_port.find('@') != std::string_view::npos) return Error{context + ": user information is not accepted"};
    std::string_view raw_path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    std::string decoded;
    if (!percent_decode(raw_path, &decoded)) return Error{context + ": malformed percent-escape in the path"};
    std::string host(host_port.substr(0, host_port.rfind(':') == std::string_view::npos || host_port.front() == '['
                                             ? host_port.size()
                                             : host_port.rfind(':')));
    size_t blob = host.find(".blob.");
    std::string origin = std::string(url.substr(0, scheme_end)) + std::string(host_port);
    if (blob != std::string::npos && blob > 0) {
      loc.account = ascii_lowercase(host.substr(0, blob));
      loc.endpoint = origin;
      path = decoded;
    } else {
      // Path style (Azurite, an IP address or localhost): /ACCOUNT/CONTAINER/NAME.
      size_t s = decoded.find('/');
      loc.account = decoded.substr(0, s);
      if (loc.account.empty() || s == std::string::npos) {
        return Error{context + ": a path-style URL needs /ACCOUNT/CONTAINER/[NAME]"};
      }
      loc.endpoint = origin + "/" + loc.account;
      path = decoded.substr(s + 1);
    }
    if (!valid_account_name(loc.account)) {
      return Error{context + ": invalid storage account name '" + loc.account +
                   "' (3 to 24 lowercase letters and digits)"};
    }
  } else {
    return Error{context + ": not an az://, https:// or http:// blob URL"};
  }
  size_t slash = path.find('/');
  loc.container = path.substr(0, slash);
  if (slash != std::string::npos) loc.name = path.substr(slash + 1);
  if (loc.container.empty()) return Error{context + ": no container"};
  if (!valid_container_name(loc.container)) {
    return Error{context + ": invalid container name '" + loc.container +
                 "' (3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit)"};
  }
  if (loc.name.size() > 1024) return Error{context + ": blob name longer than 1024 characters"};
  return loc;
}

// ---------------------------------------------------------------------------
// Credentials

Result<StorageAuth> resolve_storage_auth(const AzureEnv& env, const AzureCloud& cloud, std::string_view account,
                                         AzureTokenProvider* tokens) {
  const std::string acct(account);
  StorageAuth auth;
  auth.account = acct;
  std::string cs_text = env.get("AZURE_STORAGE_CONNECTION_STRING");
  if (!cs_text.empty()) {
    CH_ASSIGN(cs, parse_connection_string(cs_text, cloud.storage_suffix));
    if (cs.account != acct) {
      return Error{"AZURE_STORAGE_CONNECTION_STRING is for storage account '" + cs.account + "', not '" + acct + "'"};
    }
    if (!cs.key.empty()) {
      CH_TRY(check_key(cs.key, "AZURE_STORAGE_CONNECTION_STRING"));
      auth.kind = StorageAuth::Kind::kSharedKey;
      auth.key_base64 = cs.key;
      auth.source = "connection string (shared key)";
      return auth;
    }
    if (!cs.sas.empty()) {
      auth.kind = StorageAuth::Kind::kSas;
      auth.sas = cs.sas;
      auth.source = "connection string (SAS)";
      return auth;
    }
    return Error{"AZURE_STORAGE_CONNECTION_STRING has neither AccountKey nor SharedAccessSignature"};
  }
  std::string env_account = env.get("AZURE_STORAGE_ACCOUNT");
  std::string key = env.get("AZURE_STORAGE_KEY");
  std::string sas = env.get("AZURE_STORAGE_SAS_TOKEN");
  if (!key.empty()) add_secret(key);
  if (!sas.empty()) add_secret(sas);
  if (!env_account.empty() && (!key.empty() || !sas.empty())) {
    if (env_account != acct) {
      return Error{"AZURE_STORAGE_ACCOUNT is '" + env_account + "', not the storage account '" + acct +
                   "' of the blob URL"};
    }
    if (!key.empty()) {
      CH_TRY(check_key(key, "AZURE_STORAGE_KEY"));
      auth.kind = StorageAuth::Kind::kSharedKey;
      auth.key_base64 = key;
      auth.source = "AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_KEY (shared key)";
      return auth;
    }
    auth.kind = StorageAuth::Kind::kSas;
    auth.sas = sas.front() == '?' ? sas.substr(1) : sas;
    auth.source = "AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_SAS_TOKEN (SAS)";
    return auth;
  }
  if (tokens != nullptr) {
    auth.kind = StorageAuth::Kind::kBearer;
    auth.tokens = tokens;
    auth.scope = cloud.storage_scope;
    auth.source = "Entra ID token (" + tokens->source() + ")";
    return auth;
  }
  return Error{"no credentials for storage account '" + acct +
               "': set AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or "
               "AZURE_STORAGE_SAS_TOKEN, or Entra ID credentials (AZURE_TENANT_ID, AZURE_CLIENT_ID, ...)"};
}

// ---------------------------------------------------------------------------
// Signing

std::string shared_key_string_to_sign(const HttpRequest& request, std::string_view account) {
  std::string content_length = header_value(request, "Content-Length");
  if (!has_header(request, "Content-Length") && !request.body.empty()) {
    content_length = std::to_string(request.body.size());
  }
  if (content_length == "0") content_length.clear();  // 2015-02-21+: zero is signed as ""
  std::string sts = request.method + "\n";
  sts += header_value(request, "Content-Encoding") + "\n";
  sts += header_value(request, "Content-Language") + "\n";
  sts += content_length + "\n";
  sts += header_value(request, "Content-MD5") + "\n";
  sts += header_value(request, "Content-Type") + "\n";
  sts += header_value(request, "Date") + "\n";
  sts += header_value(request, "If-Modified-Since") + "\n";
  sts += header_value(request, "If-Match") + "\n";
  sts += header_value(request, "If-None-Match") + "\n";
  sts += header_value(request, "If-Unmodified-Since") + "\n";
  sts += header_value(request, "Range") + "\n";

  std::map<std::string, std::string> ms;  // sorted by lower-cased name
  for (const HttpHeader& h : request.headers) {
    std::string name = ascii_lowercase(trim(h.name));
    if (!starts_with(name, "x-ms-")) continue;
    std::string value = fold_whitespace(h.value);
    auto [it, inserted] = ms.emplace(name, value);
    if (!inserted) it->second += "," + value;
  }
  for (const auto& [name, value] : ms) sts += name + ":" + value + "\n";

  sts += "/" + std::string(account) + (request.path.empty() ? "/" : request.path);
  std::map<std::string, std::vector<std::string>> query;
  for (const QueryParam& q : request.query) query[ascii_lowercase(q.key)].push_back(q.value);
  for (auto& [key, values] : query) {
    std::sort(values.begin(), values.end());
    sts += "\n" + key + ":";
    for (size_t i = 0; i < values.size(); ++i) sts += (i ? "," : "") + values[i];
  }
  return sts;
}

Status sign_shared_key(HttpRequest& request, std::string_view account, std::string_view key_base64) {
  std::string key;
  if (!base64_decode(key_base64, &key)) return Error{"storage account '" + std::string(account) + "': the account key is not base64"};
  std::string sts = shared_key_string_to_sign(request, account);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(sts.data()),
       sts.size(), mac, &mac_len);
  std::string signature = base64_encode({mac, mac_len});
  add_secret(signature);
  request.headers.push_back({"Authorization", "SharedKey " + std::string(account) + ":" + signature});
  return ok_status();
}

Status authorize_storage_request(HttpRequest& request, const StorageAuth& auth) {
  if (!has_header(request, "x-ms-date") && !has_header(request, "Date")) {
    request.headers.push_back({"x-ms-date", rfc1123_now()});
  }
  if (!has_header(request, "x-ms-version")) request.headers.push_back({"x-ms-version", std::string(kAzureStorageVersion)});
  switch (auth.kind) {
    case StorageAuth::Kind::kSharedKey:
      return sign_shared_key(request, auth.account, auth.key_base64);
    case StorageAuth::Kind::kSas: {
      std::string_view sas = auth.sas;
      if (!sas.empty() && sas.front() == '?') sas.remove_prefix(1);
      size_t start = 0;
      while (start < sas.size()) {
        size_t amp = sas.find('&', start);
        std::string_view part = sas.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
        if (!part.empty()) {
          size_t eq = part.find('=');
          QueryParam q;
          std::string_view raw_value = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
          if (!percent_decode(part.substr(0, eq), &q.key) || !percent_decode(raw_value, &q.value)) {
            return Error{"storage account '" + auth.account + "': the SAS token has a malformed percent-escape"};
          }
          if (q.key == "sig") add_secret(q.value);
          request.query.push_back(std::move(q));
        }
        if (amp == std::string_view::npos) break;
        start = amp + 1;
      }
      return ok_status();
    }
    case StorageAuth::Kind::kBearer: {
      if (auth.tokens == nullptr) return Error{"storage account '" + auth.account + "': no token provider"};
      Result<std::string> token = auth.tokens->token(auth.scope);
      if (!token.ok()) return token.error();
      add_secret(*token);
      request.headers.push_back({"Authorization", "Bearer " + *token});
      return ok_status();
    }
  }
  return ok_status();
}

}  // namespace ch
