#include "clouds/openstack/keystone.h"

#include <algorithm>
#include <optional>

#include "helper/output.h"

namespace ch {

namespace {

using json = nlohmann::json;

std::string one_line(std::string_view text, size_t max = 300) {
  std::string out;
  for (size_t i = 0; i < text.size() && out.size() < max; ++i) {
    // webob's JSON explanations keep its HTML line breaks ("...: URI<br /><br />").
    if (text.compare(i, 6, "<br />") == 0) {
      out += ' ';
      i += 5;
      continue;
    }
    char c = text[i];
    out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  }
  // Runs of spaces (from line breaks) as one.
  out.erase(std::unique(out.begin(), out.end(), [](char a, char b) { return a == ' ' && b == ' '; }), out.end());
  size_t a = out.find_first_not_of(' '), b = out.find_last_not_of(' ');
  return a == std::string::npos ? "" : out.substr(a, b - a + 1);
}

std::string reason(long status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Request Entity Too Large";
    case 415: return "Unsupported Media Type";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "";
  }
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

json domain(const std::string& name, const std::string& id) {
  return id.empty() ? json{{"name", name}} : json{{"id", id}};
}

std::string who(const OpenStackAuthConfig& c) {
  if (c.auth_type == "v3applicationcredential")
    return "application credential " + (c.app_cred_id.empty() ? c.app_cred_name : c.app_cred_id);
  return "user " + (c.username.empty() ? c.user_id : c.username) + ", project " +
         (c.project_name.empty() ? c.project_id : c.project_name);
}


}  // namespace

json keystone_auth_body(const OpenStackAuthConfig& c) {
  json identity;
  if (c.auth_type == "v3applicationcredential") {
    json ac = {{"secret", c.app_cred_secret}};
    if (!c.app_cred_id.empty()) {
      ac["id"] = c.app_cred_id;
    } else {
      ac["name"] = c.app_cred_name;
      ac["user"] = c.user_id.empty() ? json{{"name", c.username}, {"domain", domain(c.user_domain_name, c.user_domain_id)}}
                                     : json{{"id", c.user_id}};
    }
    identity = {{"methods", {"application_credential"}}, {"application_credential", ac}};
    return {{"auth", {{"identity", identity}}}};
  }
  json user = c.user_id.empty() ? json{{"name", c.username}, {"domain", domain(c.user_domain_name, c.user_domain_id)}}
                                : json{{"id", c.user_id}};
  user["password"] = c.password;
  identity = {{"methods", {"password"}}, {"password", {{"user", user}}}};
  json project = c.project_id.empty()
                     ? json{{"name", c.project_name}, {"domain", domain(c.project_domain_name, c.project_domain_id)}}
                     : json{{"id", c.project_id}};
  return {{"auth", {{"identity", identity}, {"scope", {{"project", project}}}}}};
}

std::string keystone_tokens_url(std::string_view auth_url) {
  std::string u(auth_url);
  while (!u.empty() && u.back() == '/') u.pop_back();
  // An unversioned auth_url ("http://k:5000", "http://k/identity") is the
  // usual clouds.yaml form; the SDKs discover v3 there.
  if (u.size() < 3 || u.substr(u.size() - 3) != "/v3") u += "/v3";
  return u + "/auth/tokens";
}

std::string glance_limit_text(std::string text) {
  static const std::string kBody = "The response body:";
  if (text.rfind("The request returned a 413", 0) == 0)
    if (size_t p = text.find(kBody); p != std::string::npos) {
      text.erase(0, p + kBody.size());
      text.erase(0, text.find_first_not_of(" \n"));
    }
  return text;
}

Error openstack_error(const std::string& what, const HttpResponse& response) {
  std::string code, text;
  json doc = json::parse(response.body, nullptr, false);
  if (doc.is_object()) {
    const json& e = doc.contains("error") && doc["error"].is_object() ? doc["error"] : doc;
    text = str(e, "message");
    code = str(e, "title");
    if (text.empty()) text = str(e, "explanation");
  } else {
    // webob's plain text: "409 Conflict\n\nThe explanation.\n\n   "
    text = one_line(response.body, 2000);  // cut to 300 below, after Glance's quota boilerplate is gone
    std::string prefix = std::to_string(response.status) + " " + reason(response.status);
    if (text.rfind(prefix, 0) == 0) text = one_line(text.substr(prefix.size()));
  }
  text = glance_limit_text(text);
  std::string message = what + ": HTTP " + std::to_string(response.status);
  if (!reason(response.status).empty()) message += " " + reason(response.status);
  text = one_line(text);
  if (!text.empty()) message += ": " + text;
  if (!response.request_id.empty()) message += " (request id " + response.request_id + ")";
  return Error{message, code.empty() ? reason(response.status) : code, response.status};
}

Result<KeystoneToken> keystone_authenticate(HttpClient& http, const RetryPolicy& policy,
                                            const OpenStackAuthConfig& c) {
  add_secret(c.password);
  add_secret(c.app_cred_secret);
  std::string url = keystone_tokens_url(c.auth_url);
  std::string body = keystone_auth_body(c).dump();
  std::string what = "Keystone POST " + url + " (" + who(c) + ")";
  SendOptions so;
  so.label = "Keystone POST /v3/auth/tokens";
  CH_ASSIGN(resp, send_with_retry(
                      http, policy,
                      [&](int) -> Result<HttpRequest> {
                        CH_ASSIGN(req, request_from_url(url));
                        req.method = "POST";
                        req.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
                        req.body = body;
                        return req;
                      },
                      so));
  if (resp.status != 201 && resp.status != 200) return openstack_error(what, resp);
  if (!resp.header("X-Subject-Token").empty()) add_secret(resp.header("X-Subject-Token"));
  KeystoneToken t;
  t.token = resp.header("X-Subject-Token");
  if (t.token.empty()) return Error{what + ": the answer has no X-Subject-Token header"};
  add_secret(t.token);
  json doc = json::parse(resp.body, nullptr, false);
  if (!doc.is_object() || !doc.contains("token") || !doc["token"].is_object())
    return Error{what + ": the answer is not a v3 token document"};
  const json& tok = doc["token"];
  t.expires_at = str(tok, "expires_at");
  if (tok.contains("project") && tok["project"].is_object()) t.project_id = str(tok["project"], "id");
  if (tok.contains("user") && tok["user"].is_object()) t.user_id = str(tok["user"], "id");
  if (tok.contains("catalog") && tok["catalog"].is_array()) t.catalog = tok["catalog"];
  if (t.catalog.empty())
    return Error{what + ": the token has no service catalog (is it scoped to a project?)"};
  log_info("openstack: authenticated with Keystone " + url.substr(0, url.size() - 12) + " (" + who(c) +
           ", credentials from " + c.source + ")");
  return t;
}

std::string catalog_endpoint(const json& catalog, std::string_view type, std::string_view region,
                             std::string_view interface) {
  for (const json& svc : catalog) {
    if (!svc.is_object() || str(svc, "type") != type || !svc.contains("endpoints")) continue;
    for (const json& e : svc["endpoints"]) {
      if (!e.is_object() || str(e, "interface") != interface) continue;
      // region_id is v3's; "region" is its deprecated twin, still sent.
      std::string r = str(e, "region_id");
      if (r.empty()) r = str(e, "region");
      if (r == region) return str(e, "url");
    }
  }
  return "";
}

std::vector<std::string> catalog_regions(const json& catalog, std::string_view type, std::string_view interface) {
  std::vector<std::string> out;
  for (const json& svc : catalog) {
    if (!svc.is_object() || str(svc, "type") != type || !svc.contains("endpoints")) continue;
    for (const json& e : svc["endpoints"]) {
      if (!e.is_object() || str(e, "interface") != interface) continue;
      std::string r = str(e, "region_id");
      if (r.empty()) r = str(e, "region");
      if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(r);
    }
  }
  return out;
}

}  // namespace ch
