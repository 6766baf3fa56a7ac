#include "clouds/oci/oci_signer.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <ctime>

#include "clouds/http/ascii_case.h"
#include "clouds/http/http_url.h"
#include "clouds/signing/digest.h"

namespace ch {

namespace {

int pem_password(char* buf, int size, int, void* user) {
  const std::string* pw = static_cast<const std::string*>(user);
  int n = static_cast<int>(std::min<size_t>(pw->size(), static_cast<size_t>(size)));
  std::copy(pw->data(), pw->data() + n, buf);
  return n;
}

const std::string* find_header(const HttpRequest& r, std::string_view name) {
  for (const HttpHeader& h : r.headers)
    if (ascii_iequals(h.name, name)) return &h.value;
  return nullptr;
}

void set_header(HttpRequest& r, std::string_view name, std::string value) {
  for (HttpHeader& h : r.headers)
    if (ascii_iequals(h.name, name)) {
      h.value = std::move(value);
      return;
    }
  r.headers.push_back({std::string(name), std::move(value)});
}

// host[:port] as the Host header carries it.
std::string host_value(const HttpRequest& r) {
  bool default_port = r.port == 0 || (r.scheme == "https" && r.port == 443) || (r.scheme == "http" && r.port == 80);
  std::string host = r.host.find(':') != std::string::npos ? "[" + r.host + "]" : r.host;
  return default_port ? host : host + ":" + std::to_string(r.port);
}

// Path and query as they go on the request line.
std::string request_target(const HttpRequest& r) {
  std::string url = wire_url(r);
  size_t scheme_end = url.find("://");
  size_t path = url.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  return path == std::string::npos ? "/" : url.substr(path);
}

}  // namespace

Result<OciKey> load_oci_key(std::string_view pem, const std::string& pass_phrase) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) return Error{"out of memory reading the API signing key"};
  std::string pw = pass_phrase;
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, pem_password, &pw);
  if (k == nullptr) {
    if (pem.find("ENCRYPTED") != std::string_view::npos)
      return Error{pass_phrase.empty() ? "the API signing key is encrypted and no pass_phrase is configured"
                                       : "the API signing key could not be decrypted with the configured pass_phrase"};
    return Error{"the API signing key is not a PEM RSA private key"};
  }
  OciKey key(k, EVP_PKEY_free);
  if (EVP_PKEY_id(k) != EVP_PKEY_RSA) return Error{"the API signing key is not an RSA key (OCI signs with rsa-sha256)"};
  return key;
}

std::string oci_http_date(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday], tm.tm_mday,
                kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

bool oci_body_exempt(const HttpRequest& r) {
  if (r.method != "PUT" || !r.path.starts_with("/n/")) return false;
  // /n/NS/b/BUCKET/{o|u}/NAME
  size_t b = r.path.find("/b/", 3);
  if (b == std::string::npos) return false;
  size_t kind = r.path.find('/', b + 3);
  return kind != std::string::npos && (r.path.compare(kind, 3, "/o/") == 0 || r.path.compare(kind, 3, "/u/") == 0);
}

std::string oci_signing_string(const HttpRequest& r, const std::vector<std::string>& headers) {
  std::string out;
  for (const std::string& name : headers) {
    if (!out.empty()) out += '\n';
    out += name + ": ";
    if (name == "(request-target)") {
      std::string method = r.method;
      for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out += method + " " + request_target(r);
    } else if (name == "host") {
      const std::string* h = find_header(r, "host");
      out += h ? *h : host_value(r);
    } else {
      const std::string* h = find_header(r, name);
      if (h) out += *h;
    }
  }
  return out;
}

Status oci_sign(HttpRequest& r, const OciSignature& signer, std::string_view date, bool exempt_body) {
  set_header(r, "date", std::string(date));
  std::vector<std::string> names = {"date", "(request-target)", "host"};
  bool body_method = r.method == "POST" || r.method == "PUT" || r.method == "PATCH";
  if (body_method && !exempt_body) {
    set_header(r, "content-length", std::to_string(r.body.size()));
    if (!find_header(r, "content-type")) set_header(r, "content-type", "application/json");
    Sha256Digest d = sha256(r.body);
    set_header(r, "x-content-sha256", base64_encode(d));
    names.insert(names.end(), {"content-length", "content-type", "x-content-sha256"});
  }
  std::string to_sign = oci_signing_string(r, names);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t sig_len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, signer.key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &sig_len, reinterpret_cast<const unsigned char*>(to_sign.data()),
                     to_sign.size()) != 1)
    return Error{"signing the request with the API key failed (OpenSSL)"};
  std::string sig(sig_len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_len,
                     reinterpret_cast<const unsigned char*>(to_sign.data()), to_sign.size()) != 1)
    return Error{"signing the request with the API key failed (OpenSSL)"};
  sig.resize(sig_len);
  std::string header_list;
  for (const std::string& n : names) header_list += (header_list.empty() ? "" : " ") + n;
  set_header(r, "authorization", "Signature version=\"1\",keyId=\"" + signer.key_id +
                                     "\",algorithm=\"rsa-sha256\",headers=\"" + header_list + "\",signature=\"" +
                                     base64_encode(bytes_of(sig)) + "\"");
  return {};
}

}  // namespace ch
