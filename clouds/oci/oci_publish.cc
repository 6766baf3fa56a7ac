// cloud: oci, publish — OCI custom images are regional and private to the
// tenancy; there is no "public" flag (public images go through the OCI
// Marketplace partner portal). Publish checks that the imported image is
// AVAILABLE and records it in artifacts under its region.
//
// Other regions are not supported yet: copying an image means ExportImage
// to Object Storage, a cross-region object copy and an import there, none of
// which is implemented. A YAML listing another region is refused before any
// request (exit 2), naming the regions.
#include "clouds/oci/oci_client.h"
#include "clouds/oci/oci_steps.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

Status validate_publish(const ImageMetadata& meta, const OciImageConfig& c) {
  if (!c.other_regions.empty()) {
    std::string list;
    for (const std::string& r : c.other_regions) list += (list.empty() ? "" : ", ") + r;
    return Error{"publishing to other regions (" + list + ") is not supported yet for cloud oci: images are regional "
                 "and copying them is not implemented; list only the home region (" +
                 (c.home_region.empty() ? std::string("the config's") : c.home_region) + ")"};
  }
  auto pub = meta.get_bool("public");
  if (!pub.ok()) return pub.error();
  if (pub->value_or(false))
    return Error{"public: true is not supported for cloud oci (custom images are shared through the OCI "
                 "Marketplace partner portal, not an API flag); set public: false"};
  if (!meta.get_string("imported") || !meta.get_string("import_id")) return Error{"not imported yet (run import first)"};
  return {};
}

}  // namespace

CloudStepResult oci_publish(ImageMetadata& meta, const CloudStepOptions& opts) {
  auto config = read_oci_config(meta);
  if (!config.ok()) return CloudStepResult::invalid(config.error());
  Status valid = validate_publish(meta, *config);
  if (!valid.ok()) return CloudStepResult::invalid(valid.error());
  if (opts.validate_only) return {};
  std::string image_id = *meta.get_string("import_id");
  std::string region = meta.get_string("import_region").value_or(config->home_region);
  if (opts.dry_run) {
    CloudStepResult r;
    r.lines.push_back("would GetImage " + image_id + " (must be AVAILABLE) and record it in artifacts as " +
                      (region.empty() ? std::string("the home region") : region));
    return r;
  }
  CH_STEP_ASSIGN(session, open_oci_session(region));
  CH_STEP_ASSIGN(image, session->client->call_json(
                            {"GetImage", "GET", session->endpoints.iaas + "/20160918/images/" + oci_segment(image_id)}));
  std::string state = image.value("lifecycleState", "");
  if (state != "AVAILABLE")
    return CloudStepResult::failure(Error{"image " + image_id + " is " + state + ", not AVAILABLE"});
  map_set(meta, "artifacts", session->region, image_id);
  if (!meta.get_string("published")) meta.set_timestamp("published", utc_now_iso8601());
  CloudStepResult r;
  r.lines.push_back(session->region + ": " + image_id);
  r.extra["artifacts"] = {{session->region, image_id}};
  return r;
}

}  // namespace ch
