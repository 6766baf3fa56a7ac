// cloud: openstack, upload and import.
//
// Glance is both the store and the image registry: PUT /v2/images/ID/file
// takes the image straight from the file, so there is nothing to stage in
// an object store first and `upload` does not apply. import makes one
// Glance image per region (openstack_session.h, ensure_region_image), one
// region after another: the YAML records each image id before the image is
// created, so a killed run's re-run adopts, re-uploads or replaces it and
// never leaves a second image behind.
#include "base/file.h"
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
    if (c.import_method == "web-download")
      r.lines.push_back("would POST /v2/images/ID/import web-download of " + c.source_url +
                        ", wait for the import task, and check os_hash_value (sha512) and checksum (md5)");
    else
      r.lines.push_back(std::string(c.import_method == "glance-direct" ? "would PUT /v2/images/ID/stage"
                                                                          : "would PUT /v2/images/ID/file") +
                        " from " + c.path + " (" + std::to_string(c.file_size) + " bytes)" +
                        (c.import_method == "glance-direct" ? ", POST /v2/images/ID/import glance-direct," : "") +
                        " and check os_hash_value (sha512) and checksum (md5)");
    if (!c.tags.empty()) r.lines.push_back("would tag it: " + std::to_string(c.tags.size()) + " tag(s)");
    return r;
  }

  CH_STEP_ASSIGN(digests, local_digests(meta, c));
  CH_STEP_ASSIGN(session, open_openstack_session());
  CH_STEP_ASSIGN(regions, openstack_regions(c, session->auth, &session->token.catalog));
  // Every region known to the catalog before any Glance request: a typo
  // must not leave half the regions imported.
  if (Status known = session->check_regions(regions); !known.ok()) return CloudStepResult::invalid(known.error());

  if (opts.progress)
    opts.progress->start("upload " + base_name(c.path) + " to Glance (" + std::to_string(regions.size()) +
                             (regions.size() == 1 ? " region)" : " regions)"),
                         c.import_method == "web-download" ? 0 : c.file_size * regions.size());
  MetaRecorder rec(meta, opts);
  std::vector<Result<std::string>> ids(regions.size(), Error{"not run"});
  run_parallel(regions.size(), kOpenStackRegionWorkers, [&](size_t i) {
    ids[i] = ensure_region_image(*session, c, digests, regions[i], rec, opts, opts.progress);
  });
  CloudStepResult r;
  std::vector<std::string> failed;
  for (size_t i = 0; i < regions.size(); ++i) {
    if (ids[i].ok()) {
      r.lines.push_back("imported " + c.name + " in " + regions[i] + ": " + *ids[i]);
      r.extra["images"][regions[i]] = *ids[i];
    } else {
      failed.push_back(regions[i] + ": " + ids[i].message());
      r.lines.push_back(regions[i] + ": FAILED: " + ids[i].message());
    }
  }
  if (regions.size() == 1 && failed.size() == 1) return CloudStepResult::failure(ids[0].error().wrap(regions[0]));
  if (failed.size() == regions.size()) {
    std::string all;
    for (const std::string& f : failed) all += (all.empty() ? "" : "; ") + f;
    return CloudStepResult::failure(Error{all});
  }
  if (!failed.empty()) {
    std::string all;
    for (const std::string& f : failed) all += (all.empty() ? "" : "; ") + f;
    r.partial = true;
    r.notice = std::to_string(failed.size()) + " of " + std::to_string(regions.size()) + " regions failed: " + all;
    return r;
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
