// What every OpenStack step starts from: the credentials (OS_* or
// clouds.yaml), one HTTP client, a Keystone token and its catalog, and a
// Glance client per region; plus the per-region image work import and
// publish share.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

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

  // The Glance of REGION from the catalog; an error names the regions the
  // catalog has.
  Result<GlanceClient*> glance_in(const std::string& region);
};

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
// operations.import.REGION, checkpointed before it is created), uploading
// the file when needed and checking Glance's digests; returns its id.
// META updates are serialised by the caller (one region at a time).
Result<std::string> ensure_region_image(OpenStackSession& s, const OpenStackImageConfig& c,
                                        const LocalDigests& digests, const std::string& region,
                                        ImageMetadata& meta, const CloudStepOptions& opts);

}  // namespace ch
