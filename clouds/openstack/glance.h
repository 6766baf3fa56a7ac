// OpenStack Image service (Glance) API v2, the calls the steps make.
// https://docs.openstack.org/api-ref/image/v2/
//   POST   /v2/images                 201, the image (status queued); "id" may be
//                                     given by the client (409 when it exists)
//   GET    /v2/images/ID              200 | 404
//   PUT    /v2/images/ID/file         204; application/octet-stream; queued →
//                                     saving → active (409 unless queued)
//   PATCH  /v2/images/ID              200; application/openstack-images-v2.1-json-patch
//   DELETE /v2/images/ID              204 | 404
//   GET/POST /v2/images/ID/members, DELETE /v2/images/ID/members/PROJECT (204)
//   PUT/DELETE /v2/images/ID/tags/TAG   204 (a tag already there / gone is fine)
//   PUT    /v2/images/ID/stage        204; glance-direct's staging (queued → uploading)
//   POST   /v2/images/ID/import       202; {"method": {"name": "glance-direct" |
//                                     "web-download", "uri"}}: a task moves the
//                                     image to importing → active (or back to queued)
//   GET    /v2/images/ID/tasks        200; the image's import tasks (API 2.12)
// Every call goes through the shared retry policy with the token in
// X-Auth-Token (printed as *** at debug level). Errors: "Glance PUT
// http://g:9292/v2/images/ID/file (RegionOne): HTTP 409 Conflict: Image
// status transition from saving to saving is not allowed (request id req-…)".
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "clouds/http/http_client.h"
#include "clouds/http/retry.h"

namespace ch {

class GlanceClient {
 public:
  // ENDPOINT from the catalog ("http://g:9292", "http://g:9292/v2/", or
  // under a path prefix "https://cloud/image"); the "/v2" is added here.
  GlanceClient(HttpClient& http, RetryPolicy policy, std::string endpoint, std::string token,
               std::string region);

  Result<nlohmann::json> create_image(const nlohmann::json& body);
  // nullopt on 404 (never created, or deleted).
  Result<std::optional<nlohmann::json>> get_image(const std::string& id);
  // Streams LENGTH bytes of FD; PROGRESS gets the bytes as they go.
  Status upload(const std::string& id, int fd, uint64_t length, const std::function<void(uint64_t)>& progress);
  Result<nlohmann::json> patch(const std::string& id, const nlohmann::json& ops);
  // A missing image is success.
  Status delete_image(const std::string& id);
  Result<std::vector<std::string>> members(const std::string& id);
  Status add_member(const std::string& id, const std::string& project);
  // A project that is no member already is success.
  Status delete_member(const std::string& id, const std::string& project);
  Status add_tag(const std::string& id, const std::string& tag);
  Status delete_tag(const std::string& id, const std::string& tag);
  // glance-direct's first half: the bytes into the staging area.
  Status stage(const std::string& id, int fd, uint64_t length, const std::function<void(uint64_t)>& progress);
  // Starts an interoperable import: METHOD "glance-direct", or
  // "web-download" of URI.
  Status import_image(const std::string& id, const std::string& method, const std::string& uri);
  // The image's import tasks, newest last as Glance lists them.
  Result<nlohmann::json> tasks(const std::string& id);

  const std::string& region() const { return region_; }
  const std::string& base() const { return base_; }

 private:
  Status put_file(const std::string& path, int fd, uint64_t length, const std::function<void(uint64_t)>& progress);
  Result<HttpResponse> send(const std::string& method, const std::string& path, const std::string& content_type,
                            const std::string& body, const SendOptions& so = {});
  std::string what(const std::string& method, const std::string& path) const;

  HttpClient& http_;
  RetryPolicy policy_;
  std::string base_;  // ".../v2"
  std::string token_;
  std::string region_;
};

// "http://g:9292/" or ".../v2" or ".../v2.15/" → "http://g:9292/v2".
std::string glance_v2_base(std::string endpoint);

}  // namespace ch
