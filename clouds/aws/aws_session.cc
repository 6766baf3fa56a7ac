#include "clouds/aws/aws_session.h"

#include "clouds/signing/sigv4.h"
#include "helper/output.h"

namespace ch {

Result<std::unique_ptr<AwsSession>> open_aws_session(const std::string& region) {
  auto s = std::make_unique<AwsSession>();
  s->env = AwsEnv::from_process();
  HttpClient::Config config;
  // EBS direct import keeps up to 32 blocks in flight; publish waits on many
  // regions at once. The pool grows on demand, so a high cap costs nothing.
  config.max_in_flight = 64;
  for (const char* name : {"AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"}) {
    std::string v = s->env.get(name);
    if (!v.empty()) {
      config.ca_file = v;
      break;
    }
  }
  s->http = std::make_unique<HttpClient>(config);
  CH_ASSIGN(creds, resolve_aws_credentials(*s->http, s->env, region));
  s->credentials = std::move(creds);
  s->client = std::make_unique<AwsClient>(*s->http, *s->credentials, s->env);
  return s;
}

Result<std::string> aws_home_region(const ImageMetadata& meta, const AwsEnv& env) {
  if (auto r = meta.get_string("import_region")) return *r;
  if (auto r = meta.get_string("region")) return *r;
  const MetaValue* regions = meta.get("regions");
  if (regions && regions->is_list()) {
    for (const MetaValue& v : regions->list())
      if (v.is_scalar() && !v.is_null() && !v.scalar().empty() && v.scalar() != "all")
        return v.scalar();
  }
  std::string r = default_aws_region(env);
  if (!r.empty()) return r;
  return Error{"no AWS region: set `regions` (a list) or `region` in the YAML, or AWS_REGION"};
}

AwsTags aws_image_tags(const ImageMetadata& meta) {
  AwsTags tags;
  if (const MetaValue* t = meta.get("tags"); t && t->is_map()) {
    for (const auto& [k, v] : t->map())
      if (v.is_scalar() && !v.is_null()) tags[k] = v.scalar();
  }
  if (auto name = meta.get_string("name")) tags["Name"] = *name;
  return tags;
}

std::string aws_architecture(const std::string& arch) {
  if (arch == "x86_64") return "x86_64";
  if (arch == "aarch64" || arch == "arm64") return "arm64";
  return "";
}

std::string aws_boot_mode(const std::string& firmware) {
  if (firmware.empty()) return "";
  if (firmware == "uefi") return "uefi";
  if (firmware == "bios" || firmware == "legacy-bios") return "legacy-bios";
  if (firmware == "uefi-preferred") return "uefi-preferred";
  return "?";
}

std::string aws_client_token(std::initializer_list<std::string_view> parts) {
  std::string joined;
  for (std::string_view p : parts) {
    joined += p;
    joined += '\x1f';
  }
  return "ch-" + sha256_hex(joined).substr(0, 48);
}

std::string recorded_sha256(const ImageMetadata& meta) {
  const MetaValue* c = meta.get("checksums");
  const MetaValue* v = c ? c->find("sha256") : nullptr;
  return v && v->is_scalar() && !v->is_null() ? v->scalar() : "";
}

std::string aws_ami_name(const ImageMetadata& meta) {
  if (auto n = meta.get_string("ami_name")) return *n;
  return meta.get_string("name").value_or("");
}

}  // namespace ch
