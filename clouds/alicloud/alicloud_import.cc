// cloud: alicloud, import — the uploaded object becomes an ECS custom image.
//
// ImportImage runs asynchronously on ECS (minutes to hours): the call
// answers an ImageId and a TaskId at once, and the image shows Creating in
// DescribeImages until it is Available or CreateFailed. operations.import
// records the ClientToken before the call and the ImageId and TaskId right
// after it, so a re-run after a kill waits for the same image; a run killed
// between the two repeats the call with the same ClientToken (ECS answers
// the image it already made), and an image of the same name owned by the
// account is adopted (ECS refuses duplicate names anyway).
#include "clouds/alicloud/alicloud_config.h"
#include "clouds/alicloud/alicloud_steps.h"
#include "clouds/alicloud/oss.h"
#include "clouds/operations.h"
#include "formats/formats.h"
#include "formats/image_reader.h"
#include "helper/output.h"

namespace ch {

namespace {

constexpr uint64_t kGiB = 1ull << 30;

struct ImportPlan {
  OssObject object;
  std::string format;  // DiskDeviceMapping Format
  uint64_t disk_gib = 0;
};

// The guest's size: recorded by convert, else read from the image.
Result<uint64_t> virtual_size(const ImageMetadata& meta, const std::string& format) {
  if (auto v = meta.get_string("virtual_size")) {
    char* end = nullptr;
    uint64_t n = std::strtoull(v->c_str(), &end, 10);
    if (end && !*end && n > 0) return n;
  }
  auto image_file = meta.get_string("image_file");
  if (!image_file) return Error{"no virtual_size and no image_file to read it from"};
  CH_ASSIGN(file, File::open_read(meta.resolve(*image_file)));
  if (format == "qcow2") {
    CH_ASSIGN(reader, open_qcow2(std::move(file)));
    return reader->virtual_size();
  }
  CH_ASSIGN(size, file.size());
  return format == "vhd" ? size - 512 : size;
}

Result<ImportPlan> plan_import(const ImageMetadata& meta, const AliConfig& c) {
  ImportPlan p;
  auto url = meta.get_string("upload_url");
  if (!meta.get_string("uploaded") || !url) return Error{"no uploaded image (upload_url): run upload first"};
  CH_ASSIGN(bp, parse_oss_url(*url));
  if (bp.first.empty() || bp.second.empty()) return Error{"upload_url '" + *url + "' names no object"};
  std::string region = op_get(meta, "upload", "region").value_or(c.home_region);
  if (region != c.home_region)
    return Error{"the object is in " + region + " but the image would be imported in " + c.home_region +
                 " (ImportImage reads OSS in its own region only)"};
  p.object = {region, bp.first, bp.second};
  std::string format = meta.get_string("image_format").value_or("qcow2");
  if (format == "qcow2") p.format = "QCOW2";
  else if (format == "raw") p.format = "RAW";
  else if (format == "vhd") p.format = "VHD";
  else return Error{"ECS ImportImage takes qcow2, raw or vhd, not image_format '" + format + "'"};
  CH_ASSIGN(vs, virtual_size(meta, format));
  p.disk_gib = std::max<uint64_t>(1, (vs + kGiB - 1) / kGiB);
  return p;
}

}  // namespace

CloudStepResult alicloud_import(ImageMetadata& meta, const CloudStepOptions& opts) {
  auto cfg = read_alicloud_config(meta);
  if (!cfg.ok()) return CloudStepResult::invalid(cfg.error());
  auto plan = plan_import(meta, *cfg);
  if (!plan.ok()) return CloudStepResult::invalid(plan.error());
  if (opts.validate_only) return {};
  const AliConfig& c = *cfg;
  const ImportPlan& p = *plan;
  const std::string& region = c.home_region;
  if (meta.get_string("imported") && !opts.force) {
    CloudStepResult r;
    r.skipped = true;
    r.notice = meta.path() + ": import: already imported as " + meta.get_string("import_id").value_or("?") + " at " +
               *meta.get_string("imported") + " (--force redoes it)";
    return r;
  }
  std::vector<std::pair<std::string, std::string>> params = {
      {"ImageName", c.name},
      {"Architecture", c.architecture},
      {"OSType", "linux"},
      {"Platform", c.platform},
      {"BootMode", c.boot_mode},
      {"Features.NvmeSupport", c.nvme ? "supported" : "unsupported"},
      {"DiskDeviceMapping.1.OSSBucket", p.object.bucket},
      {"DiskDeviceMapping.1.OSSObject", p.object.key},
      {"DiskDeviceMapping.1.Format", p.format},
      {"DiskDeviceMapping.1.DiskImageSize", std::to_string(p.disk_gib)},
  };
  if (!c.description.empty()) params.emplace_back("Description", c.description);
  for (size_t i = 0; i < c.tags.size(); ++i) {
    params.emplace_back("Tag." + std::to_string(i + 1) + ".Key", c.tags[i].first);
    params.emplace_back("Tag." + std::to_string(i + 1) + ".Value", c.tags[i].second);
  }
  const std::string token = ali_client_token({"import", region, c.name, p.object.url()});
  if (opts.dry_run) {
    CloudStepResult r;
    std::string line = "would call ECS ImportImage in " + region + ":";
    for (const auto& [k, v] : params) line += " " + k + "=" + v;
    r.lines.push_back(line + " ClientToken=" + token);
    r.lines.push_back("would poll DescribeImages until the image is Available" +
                      std::string(c.delete_object_after_import ? ", then delete " + p.object.url() : ""));
    return r;
  }

  CH_STEP_ASSIGN(session, open_alicloud_session(c));
  AliClient& client = *session->client;
  std::string image_id = op_get(meta, "import", "image_id").value_or("");
  if (!image_id.empty()) {
    CH_STEP_ASSIGN(img, describe_image(client, region, image_id));
    if (!img || (opts.force && img->status == "CreateFailed")) {
      log_info(meta.path() + ": import: image " + image_id + " is " + (img ? img->status : "gone") + "; importing again");
      op_remove_section(meta, "import");
      image_id.clear();
    }
  }
  if (image_id.empty()) {
    CH_STEP_ASSIGN(named, describe_image(client, region, "", c.name));
    if (named) {
      log_info(meta.path() + ": import: adopting image " + named->id + " named " + c.name + " (" + named->status + ")");
      image_id = named->id;
      op_set(meta, "import", "region", region);
      op_set(meta, "import", "image_id", image_id);
      CH_STEP_TRY(opts.checkpoint());
    }
  }
  if (image_id.empty()) {
    op_set(meta, "import", "region", region);
    op_set(meta, "import", "client_token", token);
    CH_STEP_TRY(opts.checkpoint());
    params.emplace_back("ClientToken", token);
    CH_STEP_ASSIGN(resp, client.ecs(region, "ImportImage", params));
    image_id = resp.value("ImageId", "");
    if (image_id.empty()) return CloudStepResult::failure(Error{"ECS ImportImage (" + region + "): no ImageId in the answer"});
    op_set(meta, "import", "image_id", image_id);
    op_set(meta, "import", "task_id", resp.value("TaskId", ""));
    CH_STEP_TRY(opts.checkpoint());
    log_info(meta.path() + ": import: ImportImage started image " + image_id + " (task " + resp.value("TaskId", "") + ")");
  }

  if (opts.progress) opts.progress->start("import " + c.name, 100);
  uint64_t shown = 0;
  Status waited = wait_image_available(client, region, image_id, [&](const std::string& pct) {
    uint64_t v = std::strtoull(pct.c_str(), nullptr, 10);
    if (v > shown && v <= 100) {
      advance(opts.progress, v - shown);
      shown = v;
    }
  });
  if (!waited.ok()) return CloudStepResult::failure(waited.error().wrap("importing " + p.object.url()));
  op_set(meta, "import", "state", "Available");
  meta.set_string("import_id", image_id);
  meta.set_string("import_region", region);
  meta.set_timestamp("imported", utc_now_iso8601());
  CH_STEP_TRY(opts.checkpoint());

  CloudStepResult r;
  r.lines.push_back("imported " + p.object.url() + " as " + image_id + " in " + region);
  if (c.delete_object_after_import) {
    CH_STEP_TRY(oss_delete(client, p.object));
    op_set(meta, "upload", "state", "deleted");
    r.lines.push_back("deleted " + p.object.url());
  }
  r.extra["import_id"] = image_id;
  r.extra["import_region"] = region;
  return r;
}

}  // namespace ch
