// cloud: gcp, rollback — deletes what import and upload made for an image
// that was never published: the image (an insert still running is waited
// for first, then the deletion's operation), the object, and an unfinished
// resumable upload session (cancelled). Each deletion is idempotent and
// recorded as it happens, so a rollback that fails half-way can be re-run.
#include "clouds/gcp/gcp_session.h"
#include "clouds/gcp/gcp_steps.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

CloudStepResult gcp_rollback(ImageMetadata& meta, const CloudStepOptions& opts) {
  if (opts.validate_only) return {};
  std::string image = op_get(meta, "import", "image").value_or("");
  std::string operation = op_get(meta, "import", "operation").value_or("");
  std::string project;
  std::string import_id = meta.get_string("import_id").value_or("");
  if (size_t at = import_id.find("/global/images/"); import_id.rfind("projects/", 0) == 0 && at != std::string::npos) {
    project = import_id.substr(9, at - 9);
    if (image.empty()) image = import_id.substr(at + 15);
  }
  if (project.empty()) {
    const MetaValue* g = meta.get("gcp");
    const MetaValue* p = g ? g->find("project") : nullptr;
    if (p && p->is_scalar() && !p->is_null()) project = p->scalar();
    if (project.empty()) project = gcp_env_project(GcpEnv::from_process());
  }
  std::string object_url = op_get(meta, "upload", "url").value_or("");
  std::string upload_session = op_get(meta, "upload", "state") == "uploading"
                                   ? op_get(meta, "upload", "session").value_or("") : "";

  if (opts.dry_run) {
    CloudStepResult r;
    if (!operation.empty()) r.lines.push_back("would wait for operation " + operation);
    if (!image.empty()) r.lines.push_back("would DELETE image " + image + (project.empty() ? "" : " in project " + project));
    if (!upload_session.empty()) r.lines.push_back("would cancel the resumable upload session of " + object_url);
    if (!object_url.empty()) r.lines.push_back("would DELETE object " + object_url);
    return r;
  }
  CH_STEP_ASSIGN(session, open_gcp_session(!image.empty(), project));
  CloudStepResult r;
  if (!image.empty()) {
    ComputeClient& compute = *session->compute;
    const std::string id = compute.image_path(image);
    if (!operation.empty()) {
      // The insert must end before the image can go.
      CH_STEP_ASSIGN(op, compute.get_operation(operation));
      if (op) {
        Status s = compute.wait(operation, "images.insert " + id);
        if (!s.ok()) log_info("gcp: the insert of " + id + " had failed: " + s.message());
      }
    }
    CH_STEP_ASSIGN(del, compute.delete_image(image, new_request_id("delete " + id)));
    if (del) {
      CH_STEP_TRY(compute.wait(del->value("name", ""), "images.delete " + id));
      r.lines.push_back("deleted image " + id);
    }
    meta.remove("artifacts");
  }
  meta.remove("imported");
  meta.remove("import_id");
  meta.remove("import_region");
  op_remove_section(meta, "import");
  CH_STEP_TRY(opts.checkpoint());

  if (!upload_session.empty()) {
    CH_STEP_TRY(session->gcs->cancel(upload_session));
    r.lines.push_back("cancelled the resumable upload session of " + object_url);
    op_remove(meta, "upload", "session");
    CH_STEP_TRY(opts.checkpoint());
  }
  if (!object_url.empty()) {
    auto ref = parse_gs_url(object_url);
    if (!ref.ok()) return CloudStepResult::failure(ref.error());
    CH_STEP_TRY(session->gcs->remove(*ref));
    r.lines.push_back("deleted object " + object_url);
  }
  return rollback_forget_upload(meta, opts, std::move(r));
}

}  // namespace ch
