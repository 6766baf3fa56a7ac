// s3_upload_file: the skip check, the single PUT, and the parallel,
// resumable multipart upload (s3.h states the contract).
//
// Memory stays bounded by design: each worker holds one 1 MiB hashing
// buffer; part bodies stream from the shared descriptor (FileBody), so a
// part is read twice (hash, then send) and never held whole. The SHA-256
// from the hashing pass is the signed payload hash, which saves AwsClient a
// third read and makes S3 verify it; Content-MD5 makes S3 verify the MD5,
// which is also the part's ETag that a resume compares. The same SHA-256
// goes as the part's x-amz-checksum-sha256 (the upload is made with
// checksum algorithm SHA256), so S3 keeps a composite checksum of the
// object instead of reading it whole again at Complete for its default
// full-object CRC64 (moto copies the object twice more for that).
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "base/file.h"
#include "clouds/aws/s3.h"
#include "clouds/aws/s3_multipart.h"
#include "helper/output.h"

namespace ch {

namespace {

// Reports a part's progress to the caller without ever exceeding the part's
// length, whatever retries resend: the sum over parts then reaches the file
// size exactly once.
class PartProgress {
 public:
  PartProgress(const std::function<void(uint64_t)>& sink, uint64_t length)
      : sink_(sink), length_(length) {}
  void add(uint64_t delta) {
    if (!sink_) return;
    uint64_t cur = reported_.load();
    uint64_t add = 0;
    do {
      add = std::min(delta, length_ - cur);
    } while (add > 0 && !reported_.compare_exchange_weak(cur, cur + add));
    if (add > 0) sink_(add);
  }
  void finish() { add(length_); }

 private:
  const std::function<void(uint64_t)>& sink_;
  uint64_t length_;
  std::atomic<uint64_t> reported_{0};
};

// An upload id the caller asked to resume but that is no longer needed
// (the object is already there, or the file fits one PUT): abort it so it
// does not linger (and cost storage) until a lifecycle rule removes it.
void drop_unneeded_upload(AwsClient& client, const std::string& region, const S3Url& dst,
                          const std::string& upload_id) {
  if (upload_id.empty()) return;
  Status st = s3_abort_upload(client, region, dst, upload_id);
  if (!st.ok()) log_info("S3: could not abort the unneeded upload " + upload_id + ": " + st.message());
}

Result<S3Object> put_whole_file(AwsClient& client, const std::string& region, const S3Url& dst,
                                const File& file, uint64_t size, const S3UploadOptions& options) {
  CH_ASSIGN(digests, digest_file_range(file, 0, size));
  AwsClient::RestCall call = s3_object_call(region, dst, "PUT", "S3 PutObject");
  call.request.headers = s3_object_headers(options);
  call.request.headers.push_back({"Content-MD5", digests.md5_base64});
  call.payload_sha256 = digests.sha256_hex;
  PartProgress progress(options.progress, size);
  FileBody body{file.fd(), 0, size};
  SendOptions so;
  if (size > 0) so.file_body = &body;  // an empty body needs no file
  so.on_upload_progress = [&](uint64_t d) { progress.add(d); };
  CH_ASSIGN(resp, client.rest(call, so));
  progress.finish();
  S3Object o;
  o.bucket = dst.bucket;
  o.key = dst.key;
  std::string etag = resp.header("ETag");
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  o.etag = etag;
  o.size = size;
  o.version_id = resp.header("x-amz-version-id");
  o.content_type = options.content_type;
  return o;
}

// What the workers share while sending parts.
struct PartRun {
  AwsClient& client;
  const std::string& region;
  const S3Url& dst;
  const File& file;
  uint64_t file_size;
  S3PartLayout layout;
  const std::string& upload_id;
  const std::map<uint32_t, S3Part>& existing;  // from ListParts on resume
  const S3UploadOptions& options;
  bool part_checksums;  // the upload was made with checksum algorithm SHA256

  std::atomic<uint32_t> next{1};
  std::atomic<bool> failed{false};
  std::atomic<uint32_t> sent{0};
  std::atomic<uint32_t> reused{0};
  std::vector<S3Part> parts{};  // index number-1; each slot written by one worker
  std::mutex mu{};
  std::optional<Error> error{};  // the first failure

  void fail(Error e) {
    std::lock_guard<std::mutex> lock(mu);
    if (!error) error = std::move(e);
    failed.store(true);
  }

  Status one_part(uint32_t number) {
    const uint64_t offset = layout.offset(number);
    const uint64_t length = layout.length(number, file_size);
    const std::string what = "S3 UploadPart " + std::to_string(number) + " of " + s3_url_string(dst);
    Result<RangeDigests> digests = digest_file_range(file, offset, length);
    if (!digests.ok()) return digests.error().wrap(what);
    PartProgress progress(options.progress, length);
    auto have = existing.find(number);
    if (have != existing.end() && have->second.size == length && have->second.etag == digests->md5_hex) {
      parts[number - 1] = have->second;
      if (part_checksums && parts[number - 1].checksum_sha256.empty())
        parts[number - 1].checksum_sha256 = digests->sha256_base64;
      reused.fetch_add(1);
      progress.finish();
      return ok_status();
    }
    Result<S3Part> part = s3_upload_part(client, region, dst, upload_id, number, file, offset, length,
                                         *digests, [&](uint64_t d) { progress.add(d); }, part_checksums);
    if (!part.ok()) return part.error();
    parts[number - 1] = std::move(*part);
    sent.fetch_add(1);
    progress.finish();
    return ok_status();
  }

  void worker() {
    while (!failed.load()) {
      uint32_t number = next.fetch_add(1);
      if (number > layout.count) return;
      Status st = one_part(number);
      if (!st.ok()) fail(st.error());
    }
  }
};

Result<S3UploadResult> upload_multipart(AwsClient& client, const std::string& region,
                                        const S3Url& dst, const File& file, uint64_t size,
                                        const S3PartLayout& layout, const S3UploadOptions& options) {
  S3UploadResult result;
  result.multipart = true;
  result.parts_total = layout.count;
  std::map<uint32_t, S3Part> existing;
  bool part_checksums = true;
  if (!options.resume_upload_id.empty()) {
    std::string algorithm;
    Result<std::vector<S3Part>> listed =
        s3_list_parts(client, region, dst, options.resume_upload_id, 1000, &algorithm);
    if (listed.ok()) {
      result.upload_id = options.resume_upload_id;
      // Part checksums only for an upload S3 says was made with them (one
      // started by an older version was not, and S3 refuses them there).
      part_checksums = algorithm == "SHA256";
      for (S3Part& p : *listed) {
        part_checksums |= !p.checksum_sha256.empty();
        existing[p.number] = std::move(p);
      }
      log_info("S3: resuming upload " + result.upload_id + " of " + s3_url_string(dst) + " (" +
               std::to_string(existing.size()) + " parts already there)");
    } else if (listed.error().code == "NoSuchUpload") {
      log_info("S3: upload " + options.resume_upload_id + " of " + s3_url_string(dst) +
               " no longer exists; starting a new one");
    } else {
      return listed.error();
    }
  }
  if (result.upload_id.empty()) {
    CH_ASSIGN(id, s3_create_multipart_upload(client, region, dst, options));
    result.upload_id = id;
    if (options.on_started) {
      Status st = options.on_started(id);
      if (!st.ok()) {
        drop_unneeded_upload(client, region, dst, id);  // nobody could resume it
        return st.error();
      }
    }
  }

  PartRun run{client, region, dst, file, size, layout, result.upload_id, existing, options, part_checksums};
  run.parts.resize(layout.count);
  const int threads = static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(options.parallel), layout.count));
  std::vector<std::thread> workers;
  for (int i = 1; i < threads; ++i) workers.emplace_back([&run] { run.worker(); });
  run.worker();
  for (std::thread& t : workers) t.join();
  result.parts_sent = run.sent.load();
  result.parts_reused = run.reused.load();
  if (run.error) return *run.error;

  CH_ASSIGN(object, s3_complete_multipart_upload(client, region, dst, result.upload_id, run.parts, size));
  object.content_type = options.content_type;
  result.object = std::move(object);
  return result;
}

}  // namespace

Result<S3UploadResult> s3_upload_file(AwsClient& client, const std::string& region,
                                      const S3Url& dst, const std::string& path,
                                      const S3UploadOptions& options) {
  const std::string url = s3_url_string(dst);
  const std::string context = "uploading " + path + " to " + url;
  Status bucket_ok = check_s3_bucket_name(dst.bucket);
  if (!bucket_ok.ok()) return Error{context + ": invalid S3 bucket name '" + dst.bucket + "': " + bucket_ok.message()};
  if (dst.is_prefix()) return Error{context + ": the destination is a prefix, not an object key"};
  if (options.parallel < 1) return Error{context + ": parallel must be at least 1"};
  Status opts_ok = check_s3_object_options(options);
  if (!opts_ok.ok()) return opts_ok.error().wrap(context);
  CH_ASSIGN(file, File::open_read(path));
  CH_ASSIGN(size, file.size());
  Result<S3PartLayout> layout = s3_part_layout(size, options.part_size);
  if (!layout.ok()) return layout.error().wrap(context);

  if (!options.sha256.empty() && options.skip_if_present) {
    Result<std::optional<S3Object>> head = s3_head_object(client, region, dst);
    // S3 answers 403 to a HEAD without s3:GetObject (and for a missing key
    // without s3:ListBucket); an upload-only policy must still upload.
    if (!head.ok() && head.error().http_status == 403) {
      log_debug(head.message() + "; uploading without the already-present check");
      head = std::optional<S3Object>();
    }
    if (!head.ok()) return head.error();
    if (*head && (*head)->size == size) {
      auto it = (*head)->metadata.find("sha256");
      if (it != (*head)->metadata.end() && it->second == options.sha256) {
        log_info("S3: " + url + " already holds " + path + " (same size and sha256); not sending it");
        drop_unneeded_upload(client, region, dst, options.resume_upload_id);
        if (options.progress) options.progress(size);
        S3UploadResult r;
        r.object = std::move(**head);
        r.already_present = true;
        return r;
      }
    }
  }

  if (size <= layout->part_size) {
    drop_unneeded_upload(client, region, dst, options.resume_upload_id);
    CH_ASSIGN(object, put_whole_file(client, region, dst, file, size, options));
    S3UploadResult r;
    r.object = std::move(object);
    return r;
  }
  return upload_multipart(client, region, dst, file, size, *layout, options);
}

}  // namespace ch
