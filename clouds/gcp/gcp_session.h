// What every GCP step starts from: the environment, one HTTP client, the
// Application Default Credentials, and the Storage and Compute clients on
// their endpoints (STORAGE_EMULATOR_HOST, CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE).
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "clouds/gcp/compute.h"
#include "clouds/gcp/gcp_rest.h"
#include "clouds/gcp/gcs.h"
#include "clouds/gcp/google_auth.h"

namespace ch {

struct GcpSession {
  GcpEnv env;
  std::unique_ptr<HttpClient> http;
  std::unique_ptr<GoogleTokenProvider> tokens;
  std::unique_ptr<GcpRest> rest;
  std::unique_ptr<GcsClient> gcs;
  std::unique_ptr<ComputeClient> compute;  // when a project was asked for
};

// The environment's project: GOOGLE_CLOUD_PROJECT, else CLOUDSDK_CORE_PROJECT.
std::string gcp_env_project(const GcpEnv& env);

// Credentials resolved (not yet fetched). NEED_COMPUTE: the Compute client
// too, for PROJECT, or (when "") the credentials' project.
Result<std::unique_ptr<GcpSession>> open_gcp_session(bool need_compute, const std::string& project);

}  // namespace ch
