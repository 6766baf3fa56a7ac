#include "clouds/gcp/gcp_session.h"

#include "helper/output.h"

namespace ch {

std::string gcp_env_project(const GcpEnv& env) {
  std::string p = env.get("GOOGLE_CLOUD_PROJECT");
  return p.empty() ? env.get("CLOUDSDK_CORE_PROJECT") : p;
}

Result<std::unique_ptr<GcpSession>> open_gcp_session(bool need_compute, const std::string& project) {
  auto s = std::make_unique<GcpSession>();
  s->env = GcpEnv::from_process();
  HttpClient::Config config;
  config.ca_file = ca_file_from_env();
  s->http = std::make_unique<HttpClient>(config);
  CH_ASSIGN(tokens, resolve_google_credentials(*s->http, s->env));
  s->tokens = std::move(tokens);
  s->rest = std::make_unique<GcpRest>(*s->http, s->tokens.get());
  s->gcs = std::make_unique<GcsClient>(*s->rest, gcs_base_url(s->env));
  if (need_compute) {
    std::string p = project;
    if (p.empty()) {
      CH_ASSIGN(from_creds, s->tokens->project_id());
      p = from_creds;
    }
    if (p.empty())
      return Error{"no GCP project: set gcp.project in the YAML (or GOOGLE_CLOUD_PROJECT); the credentials (" +
                   s->tokens->source() + ") name none"};
    s->compute = std::make_unique<ComputeClient>(*s->rest, compute_base_url(s->env), p);
  }
  return s;
}

}  // namespace ch
