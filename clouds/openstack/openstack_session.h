// What every OpenStack step starts from: the credentials (OS_* or
// clouds.yaml), one HTTP client, a Keystone token and its catalog, and a
// Glance client per region; plus the per-region image work import and
// publish share.
#pragma once

#include <map>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/parallel.h"
#include "base/result.h"
#include "clouds/cloud_step.h"
#include "clouds/http/http_client.h"
#include "clouds/openstack/glance.h"
#include "clouds/openstack/keystone.h"
#include "clouds/openstack/openstack_config.h"
#include "clouds/openstack/os_auth_config.h"

namespace ch {

struct OpenStackSession {
  OpenStackAuthConfig auth;
  std::unique_ptr<HttpClient> http;
  RetryPolicy policy;
  KeystoneToken token;
  std::map<std::string, std::unique_ptr<GlanceClient>> glance;  // by region
  std::mutex glance_mu;                                          // region workers share the map

  // The Glance of REGION from the catalog; an error names the regions the
  // catalog has. Thread-safe.
  Result<GlanceClient*> glance_in(const std::string& region);
  // Every region of REGIONS has an image endpoint; else one line naming the
  // first that has none and the regions the catalog has.
  Status check_regions(const std::vector<std::string>& regions);
};

// META as the region workers share it: every read and write under one lock,
// and every write saved (checkpoint) before the worker goes on, so a kill
// never loses a recorded id and two workers never save at once.
class MetaRecorder {
 public:
  MetaRecorder(ImageMetadata& meta, const CloudStepOptions& opts) : meta_(meta), opts_(opts) {}
  std::optional<std::string> import_id(const std::string& region);
  Status set_import_id(const std::string& region, const std::string& id);
  Status remove_import_id(const std::string& region);
  Status set_artifact(const std::string& region, const std::string& id);

 private:
  ImageMetadata& meta_;
  const CloudStepOptions& opts_;
  std::mutex mu_;
};

// Regions are worked on this many at a time: each is an upload stream to
// its own Glance; more would only split the uplink further.
constexpr size_t kOpenStackRegionWorkers = 4;

// The credentials from the process environment and working directory
// (no I/O beyond reading clouds.yaml): for validation and dry runs.
Result<OpenStackAuthConfig> openstack_auth_from_process();

// Authenticates and returns the session.
Result<std::unique_ptr<OpenStackSession>> open_openstack_session();

// The regions an image goes to: C's, or (empty) the credentials' region, or
// ("all") every region with an image endpoint. Needs the catalog for "all"
// and for a single-region cloud with no region named.
Result<std::vector<std::string>> openstack_regions(const OpenStackImageConfig& c, const OpenStackAuthConfig& auth,
                                                   const nlohmann::json* catalog);

struct LocalDigests {
  std::string sha512, md5;
};
// checksums.sha512 / md5 from the YAML when both are there, else read from the file.
Result<LocalDigests> local_digests(const ImageMetadata& meta, const OpenStackImageConfig& c);

// Makes sure REGION holds an active image of C (recorded in
// operations.import.REGION, checkpointed before it is created), sending
// the data when needed (c.import_method: PUT .../file, glance-direct, or
// web-download) and checking Glance's digests; returns its id. The tags
// are those the image was created with (publish converges them). Safe to
// run for several regions at once; PROGRESS (may be null) only gets bytes
// added, its owner starts it.
Result<std::string> ensure_region_image(OpenStackSession& s, const OpenStackImageConfig& c,
                                        const LocalDigests& digests, const std::string& region,
                                        MetaRecorder& rec, const CloudStepOptions& opts, Progress* progress);

// Adds the tags of WANTED image IMG lacks and removes the others; a summary
// ("+2 tags, -1 tag") or "" when nothing changed.
Result<std::string> converge_tags(GlanceClient& g, const nlohmann::json& img, const std::vector<std::string>& wanted);

}  // namespace ch
