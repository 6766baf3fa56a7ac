// cloud: openstack, upload and import.
//
// Glance is both the store and the image registry: PUT /v2/images/ID/file
// takes the image straight from the file, so there is nothing to stage in
// an object store first and `upload` does not apply. import makes one
// Glance image per region (openstack_session.h, ensure_region_image), one
// region after another: the YAML records each image id before the image is
// created, so a killed run's re-run adopts, re-uploads or replaces it and
// never leaves a second image behind.
#include "clouds/openstack/openstack_session.h"
#include "clouds/openstack/openstack_steps.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

CloudStepResult openstack_upload(ImageMetadata& meta, const CloudStepOptions&) {
  return CloudStepResult::not_applicable(meta.path() +
                                         ": upload: does not apply to cloud openstack (import sends the image "
                                         "file to Glance itself)");
}

CloudStepResult openstack_import(ImageMetadata& meta, const CloudStepOptions& opts) {
  auto cfg = read_openstack_config(meta);
  if (!cfg.ok()) return CloudStepResult::invalid(cfg.error());
  auto auth = openstack_auth_from_process();
  if (!auth.ok()) return CloudStepResult::invalid(auth.error());
  auto planned = openstack_regions(*cfg, *auth, nullptr);
  if (!planned.ok()) return CloudStepResult::invalid(planned.error());
  if (opts.validate_only) return {};
  const OpenStackImageConfig& c = *cfg;
  if (meta.get_string("imported") && !opts.force) {
    CloudStepResult r;
    r.skipped = true;
    r.notice = meta.path() + ": import: already imported as " + meta.get_string("import_id").value_or("?") +
               " at " + *meta.get_string("imported") + " (--force redoes it)";
    return r;
  }
  if (opts.dry_run) {
    CloudStepResult r;
    std::string regions;
    for (const std::string& x : *planned) regions += (regions.empty() ? "" : ", ") + x;
    r.lines.push_back("would authenticate with Keystone " + keystone_tokens_url(auth->auth_url) + " (" +
                      auth->source + ")");
    r.lines.push_back("would POST /v2/images " + c.name + " (" + c.disk_format + ", bare, private, min_disk " +
                      std::to_string(c.min_disk_gib) + " GiB, " + std::to_string(c.properties.size()) +
                      " properties) in " + (regions.empty() ? "the cloud's only region" : regions));
    r.lines.push_back("would PUT /v2/images/ID/file from " + c.path + " (" + std::to_string(c.file_size) +
                      " bytes) and check os_hash_value (sha512) and checksum (md5)");
    return r;
  }

  CH_STEP_ASSIGN(digests, local_digests(meta, c));
  CH_STEP_ASSIGN(session, open_openstack_session());
  CH_STEP_ASSIGN(regions, openstack_regions(c, session->auth, &session->token.catalog));
  CloudStepResult r;
  for (const std::string& region : regions) {
    auto id = ensure_region_image(*session, c, digests, region, meta, opts);
    if (!id.ok()) return CloudStepResult::failure(id.error().wrap(region));
    r.lines.push_back("imported " + c.name + " in " + region + ": " + *id);
    r.extra["images"][region] = *id;
  }
  std::string home = regions[0];
  std::string home_id = op_get(meta, "import", home).value_or("");
  meta.set_string("import_id", home_id);
  meta.set_string("import_region", home);
  meta.set_timestamp("imported", utc_now_iso8601());
  r.extra["import_id"] = home_id;
  return r;
}

}  // namespace ch
