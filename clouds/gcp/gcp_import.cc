// cloud: gcp, import — images.insert from the uploaded tarball.
//
// operations.import records {image: NAME, request_id: UUID} before the
// insert and {operation: OP} as soon as Compute answers, each checkpointed:
// a re-run after a kill waits for the recorded operation, or sends the
// insert again with the same requestId (Compute then answers with the first
// call's operation), so an image is never made twice. An image of that name
// that no run for this image made is refused (choose gcp.image_name).
#include "clouds/gcp/gcp_config.h"
#include "clouds/gcp/gcp_session.h"
#include "clouds/gcp/gcp_steps.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

using json = nlohmann::json;

CloudStepResult gcp_import(ImageMetadata& meta, const CloudStepOptions& opts) {
  GcpEnv env = GcpEnv::from_process();
  auto cfg = read_gcp_config(meta, gcp_env_project(env));
  if (!cfg.ok()) return CloudStepResult::invalid(cfg.error());
  std::string upload_url = op_get(meta, "upload", "url").value_or(meta.get_string("upload_url").value_or(""));
  if (!meta.get_string("uploaded") || upload_url.empty())
    return CloudStepResult::invalid(Error{"no uploaded tarball (upload_url): run upload first"});
  auto object = parse_gs_url(upload_url);
  if (!object.ok()) return CloudStepResult::invalid(object.error().wrap("upload_url"));
  if (opts.validate_only) return {};
  const GcpConfig& c = *cfg;
  if (meta.get_string("imported") && !opts.force) {
    CloudStepResult r;
    r.skipped = true;
    r.notice = meta.path() + ": import: already imported as " + meta.get_string("import_id").value_or("?") + " at " +
               *meta.get_string("imported") + " (--force redoes it)";
    return r;
  }
  json body = gcp_image_body(c, object->https_url());
  if (opts.dry_run) {
    CloudStepResult r;
    r.lines.push_back("would POST " + compute_base_url(env) + "projects/" + (c.project.empty() ? "<credentials' project>" : c.project) +
                      "/global/images " + body.dump() + " and wait for its operation");
    return r;
  }

  CH_STEP_ASSIGN(session, open_gcp_session(true, c.project));
  ComputeClient& compute = *session->compute;
  const std::string id = compute.image_path(c.image_name);
  const std::string what = "images.insert " + id;

  std::string operation;
  if (op_get(meta, "import", "image") == c.image_name) operation = op_get(meta, "import", "operation").value_or("");
  if (!operation.empty()) {
    CH_STEP_ASSIGN(op, compute.get_operation(operation));
    if (!op) operation.clear();  // forgotten by Compute: look at the image below
    else log_info(meta.path() + ": import: waiting for the recorded operation " + operation);
  }
  if (operation.empty()) {
    CH_STEP_ASSIGN(existing, compute.get_image(c.image_name));
    bool ours = op_get(meta, "import", "image") == c.image_name;
    if (existing && !ours)
      return CloudStepResult::failure(Error{"image " + id + " already exists and no run for this image made it "
                                            "(choose another gcp.image_name, or delete it)"});
    if (!existing || existing->value("status", "") == "PENDING") {
      std::string request_id = op_get(meta, "import", "request_id").value_or("");
      if (request_id.empty() || !ours)
        request_id = request_id_for("images.insert " + id + " " + upload_url + " " + utc_now_iso8601());
      op_set(meta, "import", "image", c.image_name);
      op_set(meta, "import", "request_id", request_id);
      CH_STEP_TRY(opts.checkpoint());
      log_info(meta.path() + ": import: creating image " + id + " from " + object->https_url());
      CH_STEP_ASSIGN(op, compute.insert_image(body, request_id));
      operation = op.value("name", "");
      if (operation.empty()) return CloudStepResult::failure(Error{what + ": the answer names no operation"});
      op_set(meta, "import", "operation", operation);
      CH_STEP_TRY(opts.checkpoint());
    }
  }
  if (!operation.empty()) {
    Status waited = compute.wait(operation, what);
    if (!waited.ok()) {
      // A failed insert leaves no image; the same requestId would only
      // return the failed operation again, so the next run starts afresh.
      if (waited.error().message.rfind(what + ": operation " + operation + " failed", 0) == 0) {
        op_remove(meta, "import", "operation");
        op_remove(meta, "import", "request_id");
        CH_STEP_TRY(opts.checkpoint());
      }
      return CloudStepResult::failure(waited.error());
    }
  }
  CH_STEP_ASSIGN(image, compute.get_image(c.image_name));
  if (!image) return CloudStepResult::failure(Error{what + ": the operation ended but the image is not there"});
  std::string status = image->value("status", "");
  if (status == "FAILED") return CloudStepResult::failure(Error{what + ": the image ended FAILED"});
  if (status != "READY") return CloudStepResult::failure(Error{what + ": the image is " + status + ", not READY"});

  op_remove(meta, "import", "operation");
  op_remove(meta, "import", "request_id");
  op_set(meta, "import", "image", c.image_name);
  meta.set_string("import_id", id);
  meta.set_string("import_region", "global");
  meta.set_timestamp("imported", utc_now_iso8601());
  CloudStepResult r;
  r.lines.push_back("imported " + id + " (" + c.architecture + ", " + std::to_string(c.guest_os_features.size()) +
                    " guest OS features" + (c.family.empty() ? "" : ", family " + c.family) + ")");
  r.extra["import_id"] = id;
  r.extra["self_link"] = image->value("selfLink", "");
  return r;
}

}  // namespace ch
