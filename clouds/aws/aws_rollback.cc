// cloud: aws, rollback — deletes what upload and import made for an image
// that was never published: copies made by a publish that did not finish,
// the imported AMI and its snapshot, a running import task, the S3 object
// and its sidecars, an unfinished multipart upload. Each deletion is
// idempotent (gone counts as deleted) and recorded as it happens, so a
// rollback that fails half-way can be re-run. The CLI refuses rollback once
// published or released.
#include <algorithm>
#include <string>
#include <vector>

#include "clouds/aws/aws_session.h"
#include "clouds/aws/aws_steps.h"
#include "clouds/aws/ec2.h"
#include "clouds/aws/s3.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

// Deregisters AMI in REGION and deletes its snapshots.
Status delete_image(AwsClient& client, const std::string& region, const std::string& ami,
                    std::vector<std::string>& lines, std::vector<std::string>* deleted_snapshots) {
  CH_ASSIGN(image, ec2_find_image(client, region, ami));
  std::vector<std::string> snapshots;
  if (image) snapshots = image->snapshot_ids();
  CH_TRY(ec2_deregister_image(client, region, ami));
  lines.push_back("deregistered " + ami + " in " + region);
  for (const std::string& s : snapshots) {
    CH_TRY(ec2_delete_snapshot(client, region, s));
    lines.push_back("deleted " + s + " in " + region);
    deleted_snapshots->push_back(s);
  }
  return Status();
}

}  // namespace

CloudStepResult aws_rollback(ImageMetadata& meta, const CloudStepOptions& opts) {
  if (opts.validate_only) return {};
  std::string home = meta.get_string("import_region")
                         .value_or(op_get(meta, "import", "region").value_or(""));
  // Copies by region (published ones would have made rollback refuse).
  std::vector<std::pair<std::string, std::string>> copies = op_entries(meta, "publish");
  for (const auto& [region, ami] : map_entries(meta, "artifacts")) {
    bool seen = false;
    for (const auto& c : copies) seen |= c.first == region;
    if (!seen && region != home) copies.emplace_back(region, ami);
  }
  std::string image_id = meta.get_string("import_id").value_or(op_get(meta, "import", "image_id").value_or(""));
  std::string snapshot_id = op_get(meta, "import", "snapshot_id").value_or("");
  std::string task_id = op_get(meta, "import", "task_id").value_or("");
  std::string object_url = meta.get_string("upload_url").value_or(op_get(meta, "upload", "url").value_or(""));
  std::string upload_id = op_get(meta, "upload", "upload_id").value_or("");
  std::string upload_region = op_get(meta, "upload", "region").value_or(home);

  if (opts.dry_run) {
    CloudStepResult r;
    for (const auto& [region, ami] : copies) r.lines.push_back("would DeregisterImage " + ami + " in " + region + " and DeleteSnapshot its snapshots");
    if (!image_id.empty()) r.lines.push_back("would DeregisterImage " + image_id + " in " + home);
    if (!snapshot_id.empty()) r.lines.push_back("would DeleteSnapshot " + snapshot_id + " in " + home);
    if (!task_id.empty()) r.lines.push_back("would CancelImportTask " + task_id + " in " + home);
    if (!upload_id.empty()) r.lines.push_back("would AbortMultipartUpload of " + object_url);
    if (!object_url.empty()) r.lines.push_back("would DeleteObject " + object_url + " (and its sidecars)");
    return r;
  }
  std::string session_region = !home.empty() ? home : upload_region;
  if (session_region.empty()) {
    auto r = aws_home_region(meta, AwsEnv::from_process());
    session_region = r.ok() ? *r : "us-east-1";
  }
  CH_STEP_ASSIGN(session, open_aws_session(session_region));
  AwsClient& client = *session->client;
  CloudStepResult r;
  std::vector<std::string> deleted;  // snapshots already gone with their AMI

  for (const auto& [region, ami] : copies) {
    CH_STEP_TRY(delete_image(client, region, ami, r.lines, &deleted));
    op_remove(meta, "publish", region);
    CH_STEP_TRY(opts.checkpoint());
  }
  meta.remove("artifacts");
  if (!image_id.empty()) {
    CH_STEP_TRY(delete_image(client, home, image_id, r.lines, &deleted));
    meta.remove("import_id");
    meta.remove("imported");
    op_remove(meta, "import", "image_id");
    CH_STEP_TRY(opts.checkpoint());
  }
  if (!task_id.empty()) {
    CH_STEP_TRY(ec2_cancel_import_task(client, home, task_id));
    r.lines.push_back("cancelled import task " + task_id);
  }
  if (!snapshot_id.empty() &&
      std::find(deleted.begin(), deleted.end(), snapshot_id) == deleted.end()) {
    CH_STEP_TRY(ec2_delete_snapshot(client, home, snapshot_id));
    r.lines.push_back("deleted " + snapshot_id + " in " + home);
  }
  op_remove_section(meta, "import");
  meta.remove("import_region");
  CH_STEP_TRY(opts.checkpoint());

  if (!object_url.empty()) {
    auto url = parse_s3_url(object_url);
    if (!url.ok()) return CloudStepResult::failure(url.error());
    if (upload_region.empty()) upload_region = session_region;
    if (!upload_id.empty()) {
      CH_STEP_TRY(s3_abort_upload(client, upload_region, *url, upload_id));
      r.lines.push_back("aborted the multipart upload of " + object_url);
    }
    for (const char* ext : {"", ".sha256", ".sha512", ".md5", ".asc", ".sig"}) {
      S3Url u = *url;
      u.key += ext;
      CH_STEP_TRY(s3_delete_object(client, upload_region, u));
    }
    r.lines.push_back("deleted " + object_url);
  }
  op_remove_section(meta, "upload");
  meta.remove("upload_url");
  meta.remove("uploaded");
  op_remove_section(meta, "publish");
  op_remove_section(meta, "publish_run");
  return r;
}

}  // namespace ch
