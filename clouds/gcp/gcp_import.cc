// cloud: gcp, import — images.insert from the uploaded tarball.
//
// operations.import records {image: NAME, request_id: UUID} before the
// insert and {operation: OP} as soon as Compute answers, each checkpointed:
// a re-run after a kill waits for the recorded operation, or sends the
// insert again with the same requestId (Compute then answers with the first
// call's operation), so an image is never made twice. An image of that name
// that no run for this image made is refused (choose gcp.image_name).
//
// Quotas: a rate quota (403 rateLimitExceeded, 429) is retried by the shared
// policy; a resource quota is final. Compute either refuses the insert (403
// quotaExceeded) or accepts it and ends its operation with QUOTA_EXCEEDED;
// both leave no image, so the claim recorded for the insert is withdrawn and
// the YAML is as before the run: once the quota is raised (or images
// deleted), the next run inserts afresh.
#include "clouds/gcp/gcp_config.h"
#include "clouds/gcp/gcp_session.h"
#include "clouds/gcp/gcp_steps.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

using json = nlohmann::json;

namespace {

// A resource quota does not refill by waiting: the line says what to do.
Error with_quota_hint(Error e) {
  if (e.code == "quotaExceeded" || e.code == "QUOTA_EXCEEDED")
    e.message += " (a project quota: raise it or delete unused images, then run import again)";
  return e;
}

}  // namespace

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

  // The claim as it was before this run, restored when Compute refuses the
  // insert; once an insert of this image failed, no image of this name is
  // ours, whichever run claimed it.
  const std::optional<std::string> claimed = op_get(meta, "import", "image");
  auto withdraw = [&](bool insert_failed) -> Status {
    op_remove(meta, "import", "operation");
    op_remove(meta, "import", "request_id");
    if (claimed && !(insert_failed && *claimed == c.image_name)) op_set(meta, "import", "image", *claimed);
    else op_remove(meta, "import", "image");
    return opts.checkpoint();
  };
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
        request_id = new_request_id("images.insert " + id + " " + upload_url);
      op_set(meta, "import", "image", c.image_name);
      op_set(meta, "import", "request_id", request_id);
      CH_STEP_TRY(opts.checkpoint());
      log_info(meta.path() + ": import: creating image " + id + " from " + object->https_url());
      auto op = compute.insert_image(body, request_id);
      if (!op.ok()) {
        // A 4xx but 409 is a refusal: nothing was made. A transport failure or
        // 5xx may hide an accepted insert, whose request_id must stay for the
        // re-run; 409 means an image is there, maybe ours.
        long status = op.error().http_status;
        if (status >= 400 && status < 500 && status != 409) CH_STEP_TRY(withdraw(false));
        return CloudStepResult::failure(with_quota_hint(op.error()));
      }
      operation = op->value("name", "");
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
        CH_STEP_TRY(withdraw(true));
      }
      return CloudStepResult::failure(with_quota_hint(waited.error()));
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
