// cloud: alicloud, upload — image_file to OSS by multipart upload.
//
// operations.upload records {url: oss://b/k, region, upload_id, part_size}
// before the first part goes out: a re-run after a kill lists the parts OSS
// has (ListParts), keeps those whose size and ETag (the part's MD5) match
// the file, and sends only the rest. Without such a record an object that is
// already there is adopted when its size and CRC-64 equal the file's, and
// otherwise never overwritten without --force.

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "base/file.h"
#include "clouds/alicloud/alicloud_config.h"
#include "clouds/alicloud/alicloud_steps.h"
#include "clouds/alicloud/oss.h"
#include "clouds/aws/s3_multipart.h"
#include "clouds/http/ascii_case.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

constexpr uint32_t kOssMaxParts = 10000;
constexpr int kPartsInFlight = 8;

struct UploadPlan {
  std::string path;
  uint64_t size = 0;
  OssObject object;
  uint64_t part_size = 0;
  uint32_t parts = 0;
};

Result<UploadPlan> plan_upload(const ImageMetadata& meta, const AliConfig& c) {
  UploadPlan p;
  CH_ASSIGN(file, image_file_of(meta));
  p.path = file.path;
  p.size = file.size;
  std::string key = c.prefix.empty() || c.prefix.back() == '/' ? c.prefix + base_name(p.path) : c.prefix;
  p.object = {c.home_region, c.bucket, key};
  p.part_size = c.part_size;
  if (p.size > p.part_size * kOssMaxParts) p.part_size = (p.size + kOssMaxParts - 1) / kOssMaxParts;
  if (p.part_size > (5ull << 30)) return Error{"image_file is larger than OSS's largest object (48.8 TiB)"};
  p.parts = static_cast<uint32_t>(std::max<uint64_t>(1, (p.size + p.part_size - 1) / p.part_size));
  return p;
}

}  // namespace

CloudStepResult alicloud_upload(ImageMetadata& meta, const CloudStepOptions& opts) {
  // What ECS imports; alicloud_store (cloud nocloud) stores any file.
  std::string format = meta.get_string("image_format").value_or("qcow2");
  if (format != "qcow2" && format != "raw" && format != "vhd")
    return CloudStepResult::invalid(Error{"ECS ImportImage takes qcow2, raw or vhd, not image_format '" + format + "'"});
  return alicloud_store(meta, opts);
}

CloudStepResult alicloud_store(ImageMetadata& meta, const CloudStepOptions& opts) {
  auto cfg = read_alicloud_config(meta);
  if (!cfg.ok()) return CloudStepResult::invalid(cfg.error());
  auto plan = plan_upload(meta, *cfg);
  if (!plan.ok()) return CloudStepResult::invalid(plan.error());
  if (opts.validate_only) return {};
  const UploadPlan& p = *plan;
  const std::string url = p.object.url();
  if (auto done = upload_already_done(meta, opts, url)) return *done;
  if (opts.dry_run) {
    CloudStepResult r;
    r.lines.push_back("would upload " + p.path + " (" + std::to_string(p.size) + " bytes) to " + url + " in " +
                      p.object.region + " by multipart upload: InitiateMultipartUpload, " + std::to_string(p.parts) +
                      " x UploadPart of " + std::to_string(p.part_size) + " bytes with Content-MD5, "
                      "CompleteMultipartUpload, then compare x-oss-hash-crc64ecma with the file's CRC-64");
    return r;
  }

  CH_STEP_ASSIGN(session, open_alicloud_session(*cfg));
  AliClient& c = *session->client;
  CH_STEP_ASSIGN(file, File::open_read(p.path));
  CH_STEP_ASSIGN(local_crc, file_crc64(file, 0, p.size));
  const std::string crc = std::to_string(local_crc);

  auto finish = [&](const std::string& how) {
    op_remove(meta, "upload", "upload_id");
    op_set(meta, "upload", "url", url);
    op_set(meta, "upload", "region", p.object.region);
    op_set(meta, "upload", "state", "complete");
    meta.set_string("upload_url", url);
    meta.set_timestamp("uploaded", utc_now_iso8601());
    CloudStepResult r;
    r.lines.push_back(how + " " + p.path + " to " + url + " (" + std::to_string(p.size) + " bytes, CRC-64 " + crc + ")");
    r.extra["upload_url"] = url;
    r.extra["crc64ecma"] = crc;
    return r;
  };

  std::string upload_id;
  if (op_get(meta, "upload", "url") == url) upload_id = op_get(meta, "upload", "upload_id").value_or("");
  if (upload_id.empty() && !opts.force) {
    CH_STEP_ASSIGN(head, oss_head(c, p.object));
    if (head) {
      if (head->size == p.size && head->crc64 == crc) return finish("adopted the object already holding");
      return CloudStepResult::failure(Error{"object " + url + " already exists (" + std::to_string(head->size) +
                                            " bytes, CRC-64 " + (head->crc64.empty() ? "?" : head->crc64) +
                                            ") and differs from " + p.path + "; not overwritten (--force replaces it)"});
    }
  }

  std::map<uint32_t, OssPart> have;  // parts OSS already holds
  if (!upload_id.empty()) {
    auto listed = oss_list_parts(c, p.object, upload_id);
    if (!listed.ok() && listed.error().code != "NoSuchUpload") return CloudStepResult::failure(listed.error());
    if (listed.ok()) {
      for (const OssPart& part : *listed) have[part.number] = part;
      log_info(meta.path() + ": upload: resuming multipart upload " + upload_id + " of " + url + " (" +
               std::to_string(have.size()) + " of " + std::to_string(p.parts) + " parts there)");
    } else {
      log_info(meta.path() + ": upload: multipart upload " + upload_id + " is gone; starting a new one");
      upload_id.clear();
    }
  }
  if (upload_id.empty()) {
    CH_STEP_ASSIGN(id, oss_initiate_multipart(c, p.object));
    upload_id = id;
    op_set(meta, "upload", "url", url);
    op_set(meta, "upload", "region", p.object.region);
    op_set(meta, "upload", "upload_id", upload_id);
    op_set(meta, "upload", "state", "uploading");
    CH_STEP_TRY(opts.checkpoint());
  }

  if (opts.progress) opts.progress->start("upload " + base_name(p.path), p.size);
  std::vector<OssPart> done(p.parts);
  std::vector<Status> errors(p.parts);
  std::atomic<uint32_t> next{1};
  std::atomic<bool> failed{false};
  std::atomic<uint64_t> sent{0}, kept{0};
  auto worker = [&] {
    for (uint32_t n; !failed && (n = next++) <= p.parts;) {
      uint64_t off = uint64_t{n - 1} * p.part_size, len = std::min(p.part_size, p.size - off);
      auto d = digest_file_range(file, off, len);
      if (!d.ok()) {
        errors[n - 1] = d.error();
        failed = true;
        return;
      }
      auto it = have.find(n);
      if (it != have.end() && it->second.size == len && ascii_iequals(it->second.etag, d->md5_hex)) {
        done[n - 1] = it->second;
        kept += len;
        advance(opts.progress, len);
        continue;
      }
      auto part = oss_upload_part(c, p.object, upload_id, n, file, off, len, d->md5_base64, d->md5_hex,
                                  [&](uint64_t b) { advance(opts.progress, b); });
      if (!part.ok()) {
        errors[n - 1] = part.error();
        failed = true;
        return;
      }
      sent += len;
      done[n - 1] = *part;
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < std::min<int>(kPartsInFlight, static_cast<int>(p.parts)); ++i) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  for (const Status& s : errors)
    if (!s.ok()) return CloudStepResult::failure(s.error().wrap("uploading " + p.path + " to " + url));

  auto completed = oss_complete_multipart(c, p.object, upload_id, done);
  // A Complete whose answer was lost is retried and finds the upload gone
  // (NoSuchUpload): the object then tells whether it went through.
  if (!completed.ok() && completed.error().code != "NoSuchUpload") return CloudStepResult::failure(completed.error());
  std::string remote_crc = completed.ok() ? *completed : "";
  if (remote_crc.empty()) {
    CH_STEP_ASSIGN(head, oss_head(c, p.object));
    if (head) remote_crc = head->crc64;
  }
  if (remote_crc != crc)
    return CloudStepResult::failure(Error{"uploaded " + url + " but OSS reports CRC-64 " +
                                          (remote_crc.empty() ? std::string("none") : remote_crc) + ", the file has " +
                                          crc + "; re-run with --force to upload it again"});
  CloudStepResult r = finish("uploaded");
  r.lines.back() += ": " + std::to_string(sent.load()) + " bytes sent" +
                    (kept ? ", " + std::to_string(kept.load()) + " already there" : "");
  r.extra["bytes_sent"] = sent.load();
  r.extra["resumed_bytes"] = kept.load();
  return r;
}

}  // namespace ch
