#include "clouds/alicloud/alicloud_client.h"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>

#include <pugixml.hpp>

#include "clouds/signing/digest.h"
#include "helper/output.h"

namespace ch {

namespace {

using json = nlohmann::json;

std::string get(const AliEnv& env, const std::string& name) {
  auto it = env.find(name);
  return it == env.end() ? "" : it->second;
}

std::chrono::sys_seconds now_seconds() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

std::string nonce() {
  std::array<uint8_t, 16> b{};
  CH_CHECK(RAND_bytes(b.data(), static_cast<int>(b.size())) == 1);
  return hex_encode(b);
}

std::string iso8601(std::chrono::sys_seconds t) {
  std::time_t tt = t.time_since_epoch().count();
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [k, v] : params) out += (out.empty() ? "" : "&") + ali_percent_encode(k) + "=" + ali_percent_encode(v);
  return out;
}

// "HTTP 403 SignatureDoesNotMatch: message (request id X)"; ATTEMPTS > 1
// (the last of retried throttling or 5xx answers) is said too, so a user
// sees the tool did back off before giving up.
Error service_error(const std::string& what, long status, const std::string& code, const std::string& message,
                    const std::string& request_id, int attempts = 1) {
  std::string m = what + ": HTTP " + std::to_string(status);
  if (!code.empty()) m += " " + code;
  if (!message.empty()) m += ": " + message;
  std::string tail = request_id.empty() ? "" : "request id " + request_id;
  if (attempts > 1) tail += (tail.empty() ? "" : ", ") + std::string("after ") + std::to_string(attempts) + " attempts";
  if (!tail.empty()) m += " (" + tail + ")";
  return Error{m, code, status};
}

Error oss_error(const std::string& what, const HttpResponse& r, int attempts) {
  pugi::xml_document doc;
  std::string code, message, rid = r.header("x-oss-request-id");
  if (!r.body.empty() && doc.load_buffer(r.body.data(), r.body.size())) {
    pugi::xml_node e = doc.child("Error");
    code = e.child_value("Code");
    message = e.child_value("Message");
    if (rid.empty()) rid = e.child_value("RequestId");
  }
  if (code.empty()) code = r.header("x-oss-ec").empty() ? "" : "EC " + r.header("x-oss-ec");
  return service_error(what, r.status, code, message, rid, attempts);
}

}  // namespace

Result<AliCredentials> resolve_alicloud_credentials(const AliEnv& env, const std::string& home) {
  AliCredentials c;
  std::string id = get(env, "ALIBABA_CLOUD_ACCESS_KEY_ID"), secret = get(env, "ALIBABA_CLOUD_ACCESS_KEY_SECRET");
  if (!id.empty() || !secret.empty()) {
    if (id.empty() || secret.empty())
      return Error{"ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET must be set together"};
    c = {id, secret, get(env, "ALIBABA_CLOUD_SECURITY_TOKEN"), "environment (ALIBABA_CLOUD_ACCESS_KEY_ID)"};
  } else {
    std::string path = home + "/.aliyun/config.json";
    std::ifstream in(path);
    if (!in)
      return Error{"no Alibaba Cloud credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, "
                   "or configure a profile with `aliyun configure` (" + path + ")"};
    std::stringstream ss;
    ss << in.rdbuf();
    json cfg = json::parse(ss.str(), nullptr, false);
    if (!cfg.is_object()) return Error{path + ": not valid JSON"};
    std::string want = get(env, "ALIBABA_CLOUD_PROFILE");
    if (want.empty()) want = cfg.value("current", "");
    if (want.empty()) want = "default";
    std::optional<json> profile;
    if (cfg.contains("profiles") && cfg["profiles"].is_array())
      for (const json& p : cfg["profiles"])
        if (p.is_object() && p.value("name", "") == want) profile = p;
    if (!profile) return Error{path + ": no profile named '" + want + "'"};
    std::string mode = profile->value("mode", "AK");
    if (mode != "AK" && mode != "StsToken")
      return Error{path + ": profile '" + want + "' has mode " + mode + "; only AK and StsToken are supported"};
    c = {profile->value("access_key_id", ""), profile->value("access_key_secret", ""),
         mode == "StsToken" ? profile->value("sts_token", "") : "", path + " profile " + want};
    if (c.access_key_id.empty() || c.access_key_secret.empty())
      return Error{path + ": profile '" + want + "' has no access_key_id/access_key_secret"};
    if (mode == "StsToken" && c.security_token.empty())
      return Error{path + ": profile '" + want + "' (StsToken) has no sts_token"};
  }
  add_secret(c.access_key_secret);
  if (!c.security_token.empty()) add_secret(c.security_token);
  return c;
}

std::string oss_host(const std::string& region) { return "oss-" + region + ".aliyuncs.com"; }

std::string ecs_host(const std::string& region) {
  // ECS's endpoint table: these regions are served by the central endpoint.
  static const std::array<std::string_view, 12> central = {
      "cn-qingdao", "cn-beijing", "cn-hangzhou", "cn-shanghai", "cn-shenzhen", "cn-hongkong",
      "ap-southeast-1", "us-east-1", "us-west-1", "cn-shanghai-finance-1", "cn-shenzhen-finance-1",
      "cn-north-2-gov-1"};
  if (std::find(central.begin(), central.end(), region) != central.end()) return "ecs.aliyuncs.com";
  return "ecs." + region + ".aliyuncs.com";
}

Result<AliEndpoints> alicloud_endpoints(const AliEnv& env) {
  AliEndpoints e;
  for (auto [var, slot] : {std::pair{"ALIBABA_CLOUD_OSS_ENDPOINT", &e.oss}, std::pair{"ALIBABA_CLOUD_ECS_ENDPOINT", &e.ecs}}) {
    std::string v = get(env, var);
    if (v.empty()) continue;
    auto r = request_from_url(v);
    if (!r.ok()) return r.error().wrap(var);
    if (!r->path.empty() && r->path.back() == '/') r->path.pop_back();
    *slot = std::move(r).value();
  }
  return e;
}

AliClient::AliClient(HttpClient& http, AliCredentials credentials, AliEndpoints endpoints, OssSignature sig,
                     RetryPolicy retry)
    : http_(http), credentials_(std::move(credentials)), endpoints_(std::move(endpoints)), oss_signature_(sig),
      retry_(retry) {}

Result<HttpResponse> AliClient::oss(const OssCall& call) {
  std::string what = call.what + " oss://" + call.bucket + "/" + call.key;
  std::string vhost = call.bucket + "." + oss_host(call.region);
  auto make = [&](int) -> Result<HttpRequest> {
    HttpRequest r;
    r.method = call.method;
    std::string path = "/" + ali_percent_encode(call.key, true);
    if (endpoints_.oss) {
      r.scheme = endpoints_.oss->scheme;
      r.host = endpoints_.oss->host;
      r.port = endpoints_.oss->port;
      path = endpoints_.oss->path + path;
      r.headers.push_back({"Host", vhost});
    } else {
      r.host = vhost;
    }
    r.path = path;
    r.query = call.query;
    for (const HttpHeader& h : call.headers) r.headers.push_back(h);
    r.body = call.body;
    if (oss_signature_ == OssSignature::kV4)
      oss_sign_v4(r, credentials_, call.region, call.bucket, call.key, now_seconds());
    else
      oss_sign_v1(r, credentials_, call.bucket, call.key, now_seconds());
    return r;
  };
  SendOptions so;
  so.label = what;
  so.file_body = call.file_body;
  so.on_upload_progress = call.progress;
  so.no_response_body = call.method == "HEAD";
  RetryStats stats;
  CH_ASSIGN(resp, send_with_retry(http_, retry_, make, so, &stats));
  if ((resp.status < 200 || resp.status > 299) &&
      std::find(call.accept.begin(), call.accept.end(), resp.status) == call.accept.end())
    return oss_error(what, resp, stats.attempts);
  return resp;
}

Result<json> AliClient::ecs(const std::string& region, const std::string& action,
                            std::vector<std::pair<std::string, std::string>> params) {
  std::string what = "ECS " + action + " (" + region + ")";
  if (std::none_of(params.begin(), params.end(), [](const auto& p) { return p.first == "RegionId"; }))
    params.insert(params.begin(), {"RegionId", region});
  auto make = [&](int) -> Result<HttpRequest> {
    std::vector<std::pair<std::string, std::string>> p = {
        {"Action", action},          {"Version", "2014-05-26"},      {"Format", "JSON"},
        {"AccessKeyId", credentials_.access_key_id}, {"SignatureMethod", "HMAC-SHA1"},
        {"SignatureVersion", "1.0"}, {"SignatureNonce", nonce()},    {"Timestamp", iso8601(now_seconds())}};
    if (!credentials_.security_token.empty()) p.emplace_back("SecurityToken", credentials_.security_token);
    p.insert(p.end(), params.begin(), params.end());
    p.emplace_back("Signature", rpc_signature("POST", p, credentials_.access_key_secret));
    HttpRequest r;
    r.method = "POST";
    if (endpoints_.ecs) {
      r.scheme = endpoints_.ecs->scheme;
      r.host = endpoints_.ecs->host;
      r.port = endpoints_.ecs->port;
      r.path = endpoints_.ecs->path + "/";
    } else {
      r.host = ecs_host(region);
      r.path = "/";
    }
    r.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
    r.body = form_encode(p);
    return r;
  };
  SendOptions so;
  so.label = what;
  RetryStats stats;
  CH_ASSIGN(resp, send_with_retry(http_, retry_, make, so, &stats));
  json body = json::parse(resp.body, nullptr, false);
  if (resp.status < 200 || resp.status > 299) {
    std::string code, message, rid = resp.request_id;
    if (body.is_object()) {
      code = body.value("Code", "");
      message = body.value("Message", "");
      if (body.contains("RequestId") && body["RequestId"].is_string()) rid = body["RequestId"];
    }
    Error e = service_error(what, resp.status, code, message, rid, stats.attempts);
    // A quota refusal is final (never retried: retry.h retries only
    // Throttling.* and 5xx) and needs a person: say which region's quota and
    // what frees it. CopyImage counts against its destination region.
    if (code == "QuotaExceed.Image") {
      auto dest = std::find_if(params.begin(), params.end(), [](const auto& p) { return p.first == "DestinationRegionId"; });
      e.message += "; the custom image quota of " + (dest == params.end() ? region : dest->second) +
                   " is used up: delete images no longer needed there or raise the quota in Quota Center, then run again";
    }
    return e;
  }
  if (!body.is_object()) return Error{what + ": the response is not a JSON object"};
  return body;
}

}  // namespace ch
