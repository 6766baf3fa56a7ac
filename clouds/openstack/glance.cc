#include "clouds/openstack/glance.h"

#include "clouds/openstack/keystone.h"
#include "clouds/signing/sigv4.h"

namespace ch {

namespace {

using json = nlohmann::json;

}  // namespace

std::string glance_v2_base(std::string e) {
  while (!e.empty() && e.back() == '/') e.pop_back();
  size_t slash = e.rfind('/');
  // A catalog URL may name the version ("/v2", "/v2.0"); the scheme's "//" never matches.
  if (slash != std::string::npos && slash > 0 && e[slash - 1] != '/' && e.compare(slash, 3, "/v2") == 0)
    e.erase(slash);
  return e + "/v2";
}

GlanceClient::GlanceClient(HttpClient& http, RetryPolicy policy, std::string endpoint, std::string token,
                           std::string region)
    : http_(http), policy_(policy), base_(glance_v2_base(std::move(endpoint))), token_(std::move(token)),
      region_(std::move(region)) {}

std::string GlanceClient::what(const std::string& method, const std::string& path) const {
  return "Glance " + method + " " + base_ + path + " (" + region_ + ")";
}

Result<HttpResponse> GlanceClient::send(const std::string& method, const std::string& path,
                                        const std::string& content_type, const std::string& body,
                                        const SendOptions& so_in) {
  SendOptions so = so_in;
  if (so.label.empty()) so.label = "Glance " + method + " " + path + " (" + region_ + ")";
  return send_with_retry(
      http_, policy_,
      [&](int) -> Result<HttpRequest> {
        CH_ASSIGN(req, request_from_url(base_ + path));
        req.method = method;
        req.headers = {{"X-Auth-Token", token_}, {"Accept", "application/json"}};
        if (!content_type.empty()) req.headers.push_back({"Content-Type", content_type});
        req.body = body;
        return req;
      },
      so);
}

Result<json> GlanceClient::create_image(const json& body) {
  CH_ASSIGN(r, send("POST", "/images", "application/json", body.dump()));
  if (r.status != 201) return openstack_error(what("POST", "/images"), r);
  json doc = json::parse(r.body, nullptr, false);
  if (!doc.is_object()) return Error{what("POST", "/images") + ": the answer is not a JSON image"};
  return doc;
}

Result<std::optional<json>> GlanceClient::get_image(const std::string& id) {
  std::string path = "/images/" + id;
  CH_ASSIGN(r, send("GET", path, "", ""));
  if (r.status == 404) return std::optional<json>();
  if (r.status != 200) return openstack_error(what("GET", path), r);
  json doc = json::parse(r.body, nullptr, false);
  if (!doc.is_object()) return Error{what("GET", path) + ": the answer is not a JSON image"};
  return std::optional<json>(doc);
}

Status GlanceClient::upload(const std::string& id, int fd, uint64_t length,
                            const std::function<void(uint64_t)>& progress) {
  return put_file("/images/" + id + "/file", fd, length, progress);
}

Status GlanceClient::stage(const std::string& id, int fd, uint64_t length,
                           const std::function<void(uint64_t)>& progress) {
  return put_file("/images/" + id + "/stage", fd, length, progress);
}

Status GlanceClient::put_file(const std::string& path, int fd, uint64_t length,
                              const std::function<void(uint64_t)>& progress) {
  FileBody body{fd, 0, length};
  SendOptions so;
  so.file_body = &body;
  if (progress) so.on_upload_progress = progress;
  CH_ASSIGN(r, send("PUT", path, "application/octet-stream", "", so));
  if (r.status != 204 && r.status != 200 && r.status != 201) return openstack_error(what("PUT", path), r);
  return {};
}

Result<json> GlanceClient::patch(const std::string& id, const json& ops) {
  std::string path = "/images/" + id;
  CH_ASSIGN(r, send("PATCH", path, "application/openstack-images-v2.1-json-patch", ops.dump()));
  if (r.status != 200) return openstack_error(what("PATCH", path), r);
  return json::parse(r.body, nullptr, false);
}

Status GlanceClient::delete_image(const std::string& id) {
  std::string path = "/images/" + id;
  CH_ASSIGN(r, send("DELETE", path, "", ""));
  if (r.status == 204 || r.status == 200 || r.status == 404) return {};
  return openstack_error(what("DELETE", path), r);
}

Result<std::vector<std::string>> GlanceClient::members(const std::string& id) {
  std::string path = "/images/" + id + "/members";
  CH_ASSIGN(r, send("GET", path, "", ""));
  if (r.status != 200) return openstack_error(what("GET", path), r);
  std::vector<std::string> out;
  json doc = json::parse(r.body, nullptr, false);
  if (doc.is_object() && doc.contains("members") && doc["members"].is_array())
    for (const json& m : doc["members"])
      if (m.is_object() && m.contains("member_id") && m["member_id"].is_string()) out.push_back(m["member_id"]);
  return out;
}

Status GlanceClient::add_member(const std::string& id, const std::string& project) {
  std::string path = "/images/" + id + "/members";
  CH_ASSIGN(r, send("POST", path, "application/json", json{{"member", project}}.dump()));
  // 409: already a member (a retried POST whose answer was lost).
  if (r.status == 200 || r.status == 409) return {};
  return openstack_error(what("POST", path), r);
}

Status GlanceClient::delete_member(const std::string& id, const std::string& project) {
  std::string path = "/images/" + id + "/members/" + aws_uri_encode(project, false);
  CH_ASSIGN(r, send("DELETE", path, "", ""));
  if (r.status == 204 || r.status == 200 || r.status == 404) return {};
  return openstack_error(what("DELETE", path), r);
}

Status GlanceClient::add_tag(const std::string& id, const std::string& tag) {
  std::string path = "/images/" + id + "/tags/" + aws_uri_encode(tag, false);
  CH_ASSIGN(r, send("PUT", path, "", ""));
  if (r.status == 204 || r.status == 200) return {};
  return openstack_error(what("PUT", path), r);
}

Status GlanceClient::delete_tag(const std::string& id, const std::string& tag) {
  std::string path = "/images/" + id + "/tags/" + aws_uri_encode(tag, false);
  CH_ASSIGN(r, send("DELETE", path, "", ""));
  if (r.status == 204 || r.status == 200 || r.status == 404) return {};
  return openstack_error(what("DELETE", path), r);
}

Status GlanceClient::import_image(const std::string& id, const std::string& method, const std::string& uri) {
  std::string path = "/images/" + id + "/import";
  json body = {{"method", {{"name", method}}}};
  if (!uri.empty()) body["method"]["uri"] = uri;
  CH_ASSIGN(r, send("POST", path, "application/json", body.dump()));
  if (r.status == 202 || r.status == 200) return {};
  return openstack_error(what("POST", path), r);
}

Result<json> GlanceClient::tasks(const std::string& id) {
  std::string path = "/images/" + id + "/tasks";
  CH_ASSIGN(r, send("GET", path, "", ""));
  if (r.status != 200) return openstack_error(what("GET", path), r);
  json doc = json::parse(r.body, nullptr, false);
  return doc.is_object() ? doc.value("tasks", json::array()) : json::array();
}

}  // namespace ch
