// cloud: alicloud, rollback — deletes what upload, import and an
// unfinished publish made for an image that was never published: the
// copies in other regions (operations.publish), then the imported image,
// then the OSS object (or the multipart upload, when it never completed).
// Each deletion is recorded as it happens, so a rollback that fails
// half-way can be re-run; an image or object that is already gone counts
// as deleted.
#include "clouds/alicloud/alicloud_config.h"
#include "clouds/alicloud/alicloud_steps.h"
#include "clouds/alicloud/oss.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

Status delete_image(AliClient& c, const std::string& region, const std::string& id) {
  // An image still Creating cannot be deleted: let it settle first.
  CH_ASSIGN(img, describe_image(c, region, id));
  if (!img) return {};
  if (img->status == "Creating" || img->status == "Waiting") {
    Status s = wait_image_available(c, region, id);
    (void)s;  // CreateFailed images are deleted the same way
  }
  auto r = c.ecs(region, "DeleteImage", {{"ImageId", id}});
  if (!r.ok() && r.error().code != "InvalidImageId.NotFound") return r.error();
  return {};
}

}  // namespace

CloudStepResult alicloud_rollback(ImageMetadata& meta, const CloudStepOptions& opts) {
  if (opts.validate_only) return {};
  std::vector<std::pair<std::string, std::string>> copies = op_entries(meta, "publish");
  std::string image_id = op_get(meta, "import", "image_id").value_or("");
  std::string import_region = op_get(meta, "import", "region").value_or(meta.get_string("import_region").value_or(""));
  std::string url = op_get(meta, "upload", "url").value_or(meta.get_string("upload_url").value_or(""));
  std::string upload_region = op_get(meta, "upload", "region").value_or("");
  std::string upload_id = op_get(meta, "upload", "upload_id").value_or("");
  std::string upload_state = op_get(meta, "upload", "state").value_or(meta.get_string("uploaded") ? "complete" : "");

  auto cfg = read_alicloud_config(meta);
  AliConfig c = cfg.ok() ? *cfg : AliConfig{};
  if (upload_region.empty()) upload_region = c.home_region;
  if (import_region.empty()) import_region = c.home_region;
  OssObject object;
  if (!url.empty()) {
    auto bp = parse_oss_url(url);
    if (!bp.ok()) return CloudStepResult::invalid(bp.error().wrap("operations.upload.url"));
    object = {upload_region, bp->first, bp->second};
  }

  if (opts.dry_run) {
    CloudStepResult r;
    for (const auto& [region, id] : copies) r.lines.push_back("would DeleteImage " + id + " in " + region);
    if (!image_id.empty()) r.lines.push_back("would DeleteImage " + image_id + " in " + import_region);
    if (!upload_id.empty()) r.lines.push_back("would AbortMultipartUpload " + upload_id + " of " + url);
    else if (upload_state == "complete") r.lines.push_back("would DeleteObject " + url);
    if (r.lines.empty()) r.lines.push_back("nothing to roll back");
    return r;
  }
  CH_STEP_ASSIGN(session, open_alicloud_session(c));
  AliClient& client = *session->client;
  CloudStepResult r;
  for (const auto& [region, id] : copies) {
    CH_STEP_TRY(delete_image(client, region, id));
    r.lines.push_back("deleted image " + id + " in " + region);
    op_remove(meta, "publish", region);
    meta.remove("artifacts");
    CH_STEP_TRY(opts.checkpoint());
  }
  op_remove_section(meta, "publish");
  if (!image_id.empty()) {
    CH_STEP_TRY(delete_image(client, import_region, image_id));
    r.lines.push_back("deleted image " + image_id + " in " + import_region);
  }
  meta.remove("artifacts");
  meta.remove("imported");
  meta.remove("import_id");
  meta.remove("import_region");
  op_remove_section(meta, "import");
  CH_STEP_TRY(opts.checkpoint());

  if (!url.empty()) {
    if (!upload_id.empty()) {
      CH_STEP_TRY(oss_abort_multipart(client, object, upload_id));
      r.lines.push_back("aborted multipart upload " + upload_id + " of " + url);
    } else if (upload_state == "complete") {
      CH_STEP_TRY(oss_delete(client, object));
      r.lines.push_back("deleted " + url);
    }
  }
  return rollback_forget_upload(meta, opts, std::move(r));
}

}  // namespace ch
