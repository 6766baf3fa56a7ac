#include "clouds/oci/oci_client.h"

#include <fstream>
#include <sstream>

#include "base/env.h"
#include "clouds/http/http_url.h"
#include "clouds/signing/sigv4.h"
#include "helper/output.h"

namespace ch {

namespace {

std::string one_line(std::string_view text, size_t max = 300) {
  std::string out;
  for (char c : text) {
    if (out.size() >= max) break;
    out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  }
  size_t a = out.find_first_not_of(' ');
  size_t b = out.find_last_not_of(' ');
  return a == std::string::npos ? "" : out.substr(a, b - a + 1);
}

// "GET /20160918/images/ocid1..." : the method and path of a call.
std::string call_target(const OciCall& c) {
  size_t scheme = c.url.find("://");
  size_t path = c.url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  return c.method + " " + (path == std::string::npos ? "/" : c.url.substr(path));
}

}  // namespace

std::string oci_segment(std::string_view raw) { return aws_uri_encode(raw, false); }

Error oci_error(const OciCall& call, const HttpResponse& response) {
  std::string code, text;
  nlohmann::json doc = nlohmann::json::parse(response.body, nullptr, false);
  if (doc.is_object()) {
    if (doc.contains("code") && doc["code"].is_string()) code = doc["code"].get<std::string>();
    if (doc.contains("message") && doc["message"].is_string()) text = doc["message"].get<std::string>();
  } else {
    text = one_line(response.body, 200);
  }
  // HEAD answers carry no error document: say what the status means.
  if (code.empty() && text.empty()) {
    switch (response.status) {
      case 401: text = "not authenticated (check the API key, its fingerprint, the user and the tenancy)"; break;
      case 403: text = "forbidden"; break;
      case 404: text = "not found, or not authorized"; break;
      case 409: text = "conflict"; break;
      case 412: text = "precondition failed"; break;
      case 429: text = "too many requests"; break;
      default: break;
    }
  }
  std::string msg = "OCI " + call.label + " (" + call_target(call) + "): HTTP " + std::to_string(response.status);
  if (!code.empty()) msg += " " + code;
  text = one_line(text);
  if (!text.empty()) msg += ": " + text;
  std::string rid = response.request_id.empty() ? response.header("opc-request-id") : response.request_id;
  if (!rid.empty()) msg += " (opc-request-id " + rid + ")";
  return Error{msg, code, response.status};
}

OciClient::OciClient(HttpClient& http, OciSignature signer, RetryPolicy policy)
    : http_(http), signer_(std::move(signer)), policy_(policy) {}

Result<HttpResponse> OciClient::send(const OciCall& c) {
  auto base = request_from_url(c.url);
  if (!base.ok()) return base.error();
  HttpRequest proto = *base;
  proto.method = c.method;
  proto.query = c.query;
  proto.body = c.body;
  proto.headers = c.headers;
  proto.headers.push_back({"accept", "application/json"});
  SendOptions opts;
  opts.label = "OCI " + c.label;
  opts.file_body = c.file_body;
  opts.on_upload_progress = c.on_upload_progress;
  bool exempt = c.file_body != nullptr || oci_body_exempt(proto);
  return send_with_retry(
      http_, policy_,
      [&](int) -> Result<HttpRequest> {
        HttpRequest r = proto;
        CH_TRY(oci_sign(r, signer_, oci_http_date(std::chrono::system_clock::now()), exempt));
        return r;
      },
      opts);
}

Result<HttpResponse> OciClient::call(const OciCall& c) {
  CH_ASSIGN(r, send(c));
  if (r.status < 200 || r.status > 299) return oci_error(c, r);
  return r;
}

Result<nlohmann::json> OciClient::call_json(const OciCall& c) {
  CH_ASSIGN(r, call(c));
  if (r.body.empty()) return nlohmann::json();
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded()) return Error{"OCI " + c.label + " (" + call_target(c) + "): the answer is not JSON"};
  return j;
}

Result<OciCredentials> oci_credentials_from_process(OciEnv* env_out) {
  OciEnv env = process_environment();
  auto c = load_oci_credentials(env);
  if (env_out) *env_out = std::move(env);
  return c;
}

Result<std::unique_ptr<OciSession>> open_oci_session(const std::string& region) {
  auto s = std::make_unique<OciSession>();
  CH_ASSIGN(creds, oci_credentials_from_process(&s->env));
  s->creds = creds;
  s->region = region.empty() ? creds.region : region;
  if (s->region.empty())
    return Error{"no OCI region: set region in the YAML or in the OCI config (" + creds.source + ")"};
  if (!creds.pass_phrase.empty()) add_secret(creds.pass_phrase);
  std::ifstream in(creds.key_file, std::ios::binary);
  if (!in) return Error{"cannot read the OCI API key file " + creds.key_file + " (" + creds.source + ")"};
  std::stringstream pem;
  pem << in.rdbuf();
  auto key = load_oci_key(pem.str(), creds.pass_phrase);
  if (!key.ok()) return key.error().wrap("OCI API key " + creds.key_file);
  s->endpoints = oci_endpoints(s->region, s->env);
  log_info("oci: credentials from " + creds.source + ", key fingerprint " + creds.fingerprint + ", region " + s->region);
  HttpClient::Config config;
  config.max_in_flight = 16;
  config.ca_file = ca_file_from_env();
  s->http = std::make_unique<HttpClient>(config);
  s->client = std::make_unique<OciClient>(*s->http, OciSignature{creds.key_id(), *key});
  return s;
}

}  // namespace ch

namespace ch {

Result<OciObjectRef> parse_oci_object_url(const std::string& url) {
  size_t n = url.find("/n/");
  size_t b = n == std::string::npos ? n : url.find("/b/", n + 3);
  size_t o = b == std::string::npos ? b : url.find("/o/", b + 3);
  if (o == std::string::npos) return Error{"upload_url '" + url + "' is not an Object Storage object URL (.../n/NS/b/BUCKET/o/NAME)"};
  OciObjectRef r;
  bool ok = percent_decode(url.substr(n + 3, b - n - 3), &r.namespace_name) &&
            percent_decode(url.substr(b + 3, o - b - 3), &r.bucket) && percent_decode(url.substr(o + 3), &r.object);
  if (!ok || r.namespace_name.empty() || r.bucket.empty() || r.object.empty())
    return Error{"upload_url '" + url + "' is not an Object Storage object URL (.../n/NS/b/BUCKET/o/NAME)"};
  return r;
}

}  // namespace ch
