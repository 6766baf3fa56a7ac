// cloud: aws, import — the image into an EBS snapshot, then an AMI.
//
// Two ways to the snapshot (YAML import_method):
//   ebs-direct (default)  the local image, any format we read, straight into
//                         EBS with the direct APIs: only non-zero 512 KiB
//                         blocks travel, no S3 object is needed;
//   import-snapshot       EC2 ImportSnapshot of the uploaded object (raw,
//                         vhd or vmdk), for accounts without EBS direct.
// Then RegisterImage. Every id is in operations.import before the next call,
// and every creating call is idempotent on a re-run: StartSnapshot and
// ImportSnapshot by client token, RegisterImage by name (an AMI of ours with
// the name and our snapshot is adopted, not duplicated).
#include <algorithm>
#include <memory>
#include <string>

#include "clouds/aws/aws_session.h"
#include "clouds/aws/aws_steps.h"
#include "clouds/aws/ebs.h"
#include "clouds/aws/ec2.h"
#include "clouds/aws/s3.h"
#include "clouds/operations.h"
#include "formats/image_reader.h"
#include "helper/output.h"

namespace ch {

namespace {

struct ImportPlan {
  std::string method;  // "ebs-direct" | "import-snapshot"
  std::string region;
  std::string name;    // the AMI name
  std::string image_path;
  std::string upload_url;   // import-snapshot
  std::string disk_format;  // import-snapshot: RAW | VHD | VMDK
  Ec2RegisterImageRequest reg;
  AwsTags tags;
  std::string token_seed;  // what makes this image's client tokens unique
};

Result<ImportPlan> plan_import(const ImageMetadata& meta) {
  ImportPlan p;
  for (const char* key : {"name", "arch"})
    if (!meta.get_string(key)) return Error{std::string("no ") + key + " in the YAML"};
  p.name = aws_ami_name(meta);
  std::string arch = *meta.get_string("arch");
  p.reg.architecture = aws_architecture(arch);
  if (p.reg.architecture.empty())
    return Error{"arch '" + arch + "' is not one EC2 knows (x86_64, aarch64)"};
  std::string firmware = meta.get_string("firmware").value_or("");
  p.reg.boot_mode = aws_boot_mode(firmware);
  if (p.reg.boot_mode == "?")
    return Error{"firmware '" + firmware + "' is not uefi, bios or uefi-preferred"};
  CH_ASSIGN(tpm, meta.get_bool("tpm"));
  if (tpm.value_or(false)) {
    if (p.reg.boot_mode != "uefi") return Error{"tpm: true needs firmware: uefi"};
    p.reg.tpm_support = "v2.0";
  }
  if (auto uefi_data = meta.get_string("uefi_data")) p.reg.uefi_data = *uefi_data;
  if (auto imds = meta.get_string("imds_support")) p.reg.imds_support = *imds == "v1" ? "" : *imds;
  p.reg.name = p.name;
  p.reg.description = meta.get_string("description").value_or("");
  p.tags = aws_image_tags(meta);
  p.reg.image_tags = p.tags;

  p.method = meta.get_string("import_method").value_or("ebs-direct");
  if (p.method != "ebs-direct" && p.method != "import-snapshot")
    return Error{"import_method '" + p.method + "' is not ebs-direct or import-snapshot"};
  if (p.method == "ebs-direct") {
    auto file = meta.get_string("image_file");
    if (!file) file = meta.get_string("local_image");
    if (!file) return Error{"no image_file or local_image to import"};
    p.image_path = meta.resolve(*file);
  } else {
    auto url = meta.get_string("upload_url");
    if (!url) return Error{"import_method import-snapshot needs the image uploaded first (upload_url)"};
    CH_TRY(parse_s3_url(*url));
    p.upload_url = *url;
    std::string fmt = meta.get_string("image_format").value_or("raw");
    if (fmt == "raw") p.disk_format = "RAW";
    else if (fmt == "vhd") p.disk_format = "VHD";
    else if (fmt == "vmdk") p.disk_format = "VMDK";
    else return Error{"import-snapshot takes raw, vhd or vmdk images, not " + fmt};
  }
  p.token_seed = p.name + "|" + recorded_sha256(meta) + "|" + meta.get_string("image_size").value_or("");
  return p;
}

// The snapshot: made, resumed, or already there.
// READER: the image, for ebs-direct (null for import-snapshot).
Result<std::string> make_snapshot(ImageMetadata& meta, const ImportPlan& p, AwsClient& client,
                                  const ImageReader* reader, const CloudStepOptions& opts,
                                  std::vector<std::string>& lines) {
  if (op_get(meta, "import", "snapshot_state") == "completed") {
    if (auto id = op_get(meta, "import", "snapshot_id")) {
      CH_ASSIGN(snap, ec2_find_snapshot(client, p.region, *id));
      if (snap && snap->state == "completed") return *id;
      log_info(meta.path() + ": import: snapshot " + *id + " recorded as completed is " +
               (snap ? snap->state : std::string("gone")) + "; making a new one");
      op_remove(meta, "import", "snapshot_id");
      op_remove(meta, "import", "snapshot_state");
    }
  }
  op_set(meta, "import", "method", p.method);
  op_set(meta, "import", "region", p.region);
  std::string snapshot_id;
  if (p.method == "ebs-direct") {
    EbsImportOptions o;
    o.description = p.reg.description.empty() ? p.name : p.reg.description;
    o.tags = p.tags;
    o.client_token = aws_client_token({"ebs-direct", p.region, p.token_seed});
    o.resume_snapshot_id = op_get(meta, "import", "snapshot_id").value_or("");
    if (opts.progress) {
      opts.progress->start("import " + p.name, reader->virtual_size());
      o.progress = [pr = opts.progress](uint64_t n) { pr->advance(n); };
    }
    o.on_started = [&](const std::string& id) -> Status {
      op_set(meta, "import", "snapshot_id", id);
      return opts.checkpoint();
    };
    CH_ASSIGN(res, ebs_import_image(client, p.region, *reader, o));
    if (!res.note.empty()) log_info(meta.path() + ": import: " + res.note);
    snapshot_id = res.snapshot_id;
    lines.push_back("snapshot " + snapshot_id + " in " + p.region + ": " +
                    std::to_string(res.blocks_sent) + " blocks sent, " +
                    std::to_string(res.blocks_skipped_zero) + " zero blocks skipped" +
                    (res.blocks_present ? ", " + std::to_string(res.blocks_present) + " already there"
                                        : std::string()) +
                    " (of " + std::to_string(res.blocks_total) + ")");
  } else {
    std::string task = op_get(meta, "import", "task_id").value_or("");
    if (task.empty()) {
      CH_ASSIGN(url, parse_s3_url(p.upload_url));
      Ec2ImportSnapshotRequest rq;
      rq.format = p.disk_format;
      rq.s3_bucket = url.bucket;
      rq.s3_key = url.key;
      rq.description = p.reg.description.empty() ? p.name : p.reg.description;
      rq.client_token = aws_client_token({"import-snapshot", p.region, p.token_seed, p.upload_url});
      rq.tags = p.tags;
      CH_ASSIGN(id, ec2_import_snapshot(client, p.region, rq));
      task = id;
      op_set(meta, "import", "task_id", task);
      CH_TRY(opts.checkpoint());
    }
    CH_ASSIGN(done, ec2_wait_import_snapshot(client, p.region, task));
    snapshot_id = done.snapshot_id;
    op_set(meta, "import", "snapshot_id", snapshot_id);
    CH_TRY(opts.checkpoint());
    CH_TRY(ec2_create_tags(client, p.region, {snapshot_id}, p.tags));
    lines.push_back("snapshot " + snapshot_id + " in " + p.region + " from import task " + task);
  }
  op_set(meta, "import", "snapshot_id", snapshot_id);
  op_set(meta, "import", "snapshot_state", "completed");
  CH_TRY(opts.checkpoint());
  return snapshot_id;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// The AMI on SNAPSHOT_ID: recorded, adopted by name, or registered now.
Result<std::string> make_image(ImageMetadata& meta, const ImportPlan& p, AwsClient& client,
                               const std::string& snapshot_id, const CloudStepOptions& opts) {
  if (auto id = op_get(meta, "import", "image_id")) {
    CH_ASSIGN(found, ec2_find_image(client, p.region, *id));
    if (found) return *id;
    op_remove(meta, "import", "image_id");
  }
  CH_ASSIGN(same_name, ec2_find_own_image_by_name(client, p.region, p.name));
  if (same_name) {
    if (!contains(same_name->snapshot_ids(), snapshot_id))
      return Error{"AMI name '" + p.name + "' is already used in " + p.region + " by " +
                   same_name->image_id + " (another snapshot): set ami_name, or deregister it"};
    op_set(meta, "import", "image_id", same_name->image_id);
    CH_TRY(opts.checkpoint());
    return same_name->image_id;
  }
  Ec2RegisterImageRequest reg = p.reg;
  reg.snapshot_id = snapshot_id;
  reg.snapshot_tags = p.tags;
  auto id = ec2_register_image(client, p.region, reg);
  if (!id.ok() && id.error().code == "InvalidAMIName.Duplicate") {
    // Registered by a run killed before it could record the id.
    CH_ASSIGN(again, ec2_find_own_image_by_name(client, p.region, p.name));
    if (again && contains(again->snapshot_ids(), snapshot_id)) id = again->image_id;
  }
  if (!id.ok()) return id.error();
  op_set(meta, "import", "image_id", *id);
  CH_TRY(opts.checkpoint());
  return *id;
}

}  // namespace

CloudStepResult aws_import(ImageMetadata& meta, const CloudStepOptions& opts) {
  auto plan = plan_import(meta);
  if (!plan.ok()) return CloudStepResult::invalid(plan.error());
  ImportPlan& p = *plan;
  if (auto done = meta.get_string("imported")) {
    std::string id = meta.get_string("import_id").value_or("?");
    if (!opts.force) {
      CloudStepResult r;
      r.skipped = true;
      r.notice = meta.path() + ": import: already imported as " + id + " in " +
                 meta.get_string("import_region").value_or("?") + " at " + *done +
                 " (rollback, then import, makes it again)";
      return r;
    }
    return CloudStepResult::invalid(Error{"already imported as " + id +
                                          "; run rollback first to import it again"});
  }
  auto region = aws_home_region(meta, AwsEnv::from_process());
  if (!region.ok()) return CloudStepResult::invalid(region.error());
  p.region = *region;
  std::unique_ptr<ImageReader> reader;
  if (p.method == "ebs-direct") {
    // Opened now, so a bad image is exit 2 before any request.
    auto opened = open_image(p.image_path);
    if (!opened.ok()) return CloudStepResult::invalid(opened.error());
    reader = std::move(*opened);
  }
  if (opts.validate_only) return {};

  if (opts.dry_run) {
    CloudStepResult r;
    if (p.method == "ebs-direct") {
      r.lines.push_back("would StartSnapshot in " + p.region + " (EBS direct), PutSnapshotBlock for every "
                        "non-zero 512 KiB block of " + p.image_path + ", CompleteSnapshot");
    } else {
      r.lines.push_back("would ImportSnapshot " + p.disk_format + " from " + p.upload_url + " in " +
                        p.region + " and poll DescribeImportSnapshotTasks");
    }
    r.lines.push_back("would RegisterImage '" + p.name + "' (" + p.reg.architecture +
                      (p.reg.boot_mode.empty() ? "" : ", " + p.reg.boot_mode) + ", ENA, gp3) in " +
                      p.region + " and wait until available");
    return r;
  }

  CH_STEP_ASSIGN(session, open_aws_session(p.region));
  AwsClient& client = *session->client;
  CloudStepResult r;
  CH_STEP_ASSIGN(snapshot_id, make_snapshot(meta, p, client, reader.get(), opts, r.lines));
  CH_STEP_ASSIGN(image_id, make_image(meta, p, client, snapshot_id, opts));
  auto image = ec2_wait_image_available(client, p.region, image_id);
  if (!image.ok()) return CloudStepResult::failure(image.error());
  CH_STEP_TRY(ec2_create_tags(client, p.region, {image_id, snapshot_id}, p.tags));

  meta.set_string("import_id", image_id);
  meta.set_string("import_region", p.region);
  meta.set_timestamp("imported", utc_now_iso8601());
  r.lines.push_back("imported " + image_id + " in " + p.region + " ('" + p.name + "')");
  r.extra["import_id"] = image_id;
  r.extra["import_region"] = p.region;
  return r;
}

}  // namespace ch
