// cloud: aws, upload — image_file and its checksum sidecars to storage_url.
#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <string>

#include "base/file.h"
#include "clouds/aws/aws_session.h"
#include "clouds/aws/aws_steps.h"
#include "clouds/aws/s3.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

std::string mib(uint64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

}  // namespace

CloudStepResult aws_upload(ImageMetadata& meta, const CloudStepOptions& opts) {
  // ---- validate: nothing is sent before every input is known good.
  auto storage = meta.get_string("storage_url");
  if (!storage) return CloudStepResult::invalid(Error{"no storage_url (set it to s3://bucket/prefix/)"});
  auto base = parse_s3_url(*storage);
  if (!base.ok()) return CloudStepResult::invalid(base.error().wrap("storage_url"));
  auto file = image_file_of(meta);
  if (!file.ok()) return CloudStepResult::invalid(file.error());
  const std::string path = file->path;
  const uint64_t size = file->size;

  if (opts.validate_only) return {};
  S3Url dst = s3_object_url(*base, base_name(path));
  std::string dst_url = s3_url_string(dst);
  if (auto done = upload_already_done(meta, opts, dst_url)) return *done;
  std::vector<std::string> sidecars;
  for (const char* ext : {".sha256", ".sha512", ".md5", ".asc", ".sig"})
    if (regular_file(path + ext, nullptr)) sidecars.push_back(path + ext);

  if (opts.dry_run) {
    CloudStepResult r;
    r.lines.push_back("would upload " + path + " (" + std::to_string(size) + " bytes) to " + dst_url +
                      (size > (16u << 20) ? " as a multipart upload (CreateMultipartUpload, "
                                            "UploadPart x" +
                                                std::to_string((size + (16u << 20) - 1) / (16u << 20)) +
                                                ", CompleteMultipartUpload)"
                                          : " with PutObject"));
    for (const std::string& s : sidecars)
      r.lines.push_back("would PutObject " + s3_url_string(s3_object_url(*base, base_name(s))));
    return r;
  }

  // ---- the upload.
  auto home = aws_home_region(meta, AwsEnv::from_process());
  std::string hint = home.ok() ? *home : "us-east-1";
  CH_STEP_ASSIGN(session, open_aws_session(hint));
  AwsClient& client = *session->client;
  auto bucket_region = s3_bucket_region(client, dst.bucket, hint);
  // A 403 without the region header (a refused signature, a policy without
  // s3:ListBucket): go on in the home region; the upload's own first call
  // then names the real cause.
  if (!bucket_region.ok() && bucket_region.error().http_status != 403)
    return CloudStepResult::failure(bucket_region.error());
  std::string region = bucket_region.ok() ? *bucket_region : hint;

  S3UploadOptions up;
  up.sha256 = recorded_sha256(meta);
  up.skip_if_present = !opts.force;
  if (auto old_url = op_get(meta, "upload", "url"); old_url && *old_url == dst_url)
    up.resume_upload_id = op_get(meta, "upload", "upload_id").value_or("");
  if (opts.progress) {
    opts.progress->start("upload " + base_name(path), size);
    up.progress = [p = opts.progress](uint64_t n) { p->advance(n); };
  }
  up.on_started = [&](const std::string& upload_id) -> Status {
    op_set(meta, "upload", "url", dst_url);
    op_set(meta, "upload", "region", region);
    op_set(meta, "upload", "upload_id", upload_id);
    return opts.checkpoint();
  };
  if (!up.resume_upload_id.empty())
    log_info(meta.path() + ": upload: resuming multipart upload of " + dst_url);
  auto res = s3_upload_file(client, region, dst, path, up);
  if (!res.ok()) return CloudStepResult::failure(res.error().wrap("uploading " + path + " to " + dst_url));

  // The object is complete: from here it is what rollback deletes.
  op_set(meta, "upload", "url", dst_url);
  op_set(meta, "upload", "region", region);
  op_remove(meta, "upload", "upload_id");
  CH_STEP_TRY(opts.checkpoint());

  for (const std::string& s : sidecars) {
    std::ifstream in(s, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) return CloudStepResult::failure(Error{"reading " + s + " failed"});
    auto* body = &text;
    S3Url side = s3_object_url(*base, base_name(s));
    auto put = s3_put_object_bytes(client, region, side, *body, "text/plain");
    if (!put.ok()) return CloudStepResult::failure(put.error());
  }

  meta.set_string("upload_url", dst_url);
  meta.set_timestamp("uploaded", utc_now_iso8601());
  CloudStepResult r;
  std::string how = res->already_present ? "already present, nothing sent"
                    : res->multipart
                        ? std::to_string(res->parts_sent) + " of " + std::to_string(res->parts_total) +
                              " parts sent" +
                              (res->parts_reused ? ", " + std::to_string(res->parts_reused) + " resumed" : "")
                        : "one PUT";
  r.lines.push_back("uploaded " + dst_url + " (" + mib(size) + ", " + how + ")");
  r.extra["upload_url"] = dst_url;
  return r;
}

}  // namespace ch
