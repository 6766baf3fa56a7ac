// cloud: oci, upload — image_file to Object Storage by multipart upload
// (https://docs.oracle.com/iaas/Content/Object/Tasks/usingmultipartuploads.htm).
//
// operations.upload records {url: oci://bucket@ns/object, upload_id,
// state: uploading|complete} before the first part goes out: a re-run after a
// kill lists the parts already there (ListMultipartUploadParts) and sends
// only the rest, each part checked by size and MD5. An object that is there
// without such a record belongs to someone else: CreateMultipartUpload and
// CommitMultipartUpload carry if-none-match: * so it is never replaced
// without --force (the same object, by size and opc-meta-sha256, is adopted).
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "base/file.h"
#include "clouds/oci/oci_client.h"
#include "clouds/oci/oci_steps.h"
#include "clouds/operations.h"
#include "clouds/signing/digest.h"
#include "helper/output.h"

namespace ch {

namespace {

constexpr int kParallelParts = 8;
constexpr uint64_t kMaxParts = 10000;  // Object Storage: part numbers 1..10000

struct Plan {
  std::string path;
  uint64_t size = 0;
  OciStorageUrl url;
  OciImageConfig config;
  std::string object;
  std::string sha256;  // checksums.sha256, when recorded
  uint64_t part_size = 0;
  uint64_t parts = 0;
};

Result<Plan> plan_upload(const ImageMetadata& meta) {
  Plan p;
  auto storage = meta.get_string("storage_url");
  if (!storage) return Error{"no storage_url (set it to oci://bucket@namespace/prefix/)"};
  CH_ASSIGN(url, parse_oci_storage_url(*storage));
  p.url = url;
  CH_ASSIGN(file, image_file_of(meta));
  p.path = file.path;
  p.size = file.size;
  CH_ASSIGN(config, read_oci_config(meta));
  p.config = config;
  p.object = p.url.prefix + base_name(p.path);
  const MetaValue* c = meta.get("checksums");
  const MetaValue* v = c ? c->find("sha256") : nullptr;
  if (v && v->is_scalar() && v->scalar().size() == 64) p.sha256 = v->scalar();
  p.part_size = std::max(p.config.part_size, (p.size + kMaxParts - 1) / kMaxParts);
  p.parts = std::max<uint64_t>(1, (p.size + p.part_size - 1) / p.part_size);
  return p;
}

std::string mib(uint64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

struct PartInfo {
  uint64_t size = 0;
  std::string md5;   // base64
  std::string etag;
};

// MD5 of LENGTH bytes at OFFSET, base64 (Content-MD5).
Result<std::string> part_md5(int fd, uint64_t offset, uint64_t length, std::array<uint8_t, 16>* raw) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1) return Error{"MD5 unavailable (OpenSSL)"};
  std::vector<char> buf(1 << 20);
  while (length > 0) {
    ssize_t n = ::pread(fd, buf.data(), std::min<uint64_t>(length, buf.size()), static_cast<off_t>(offset));
    if (n <= 0) return Error{"reading the image at offset " + std::to_string(offset) + " failed"};
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
    length -= static_cast<uint64_t>(n);
  }
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), raw->data(), &len);
  return base64_encode(*raw);
}

class Uploader {
 public:
  Uploader(OciSession& s, const Plan& p, std::string base, std::string upload_id, const CloudStepOptions& opts)
      : s_(s), p_(p), base_(std::move(base)), upload_id_(std::move(upload_id)), opts_(opts) {}

  std::string object_url() const { return base_ + "/o/" + oci_segment(p_.object); }
  std::string upload_url() const { return base_ + "/u/" + oci_segment(p_.object); }

  // ListMultipartUploadParts, every page. NotFound: the upload is gone.
  Result<std::map<uint64_t, PartInfo>> list_parts() {
    std::map<uint64_t, PartInfo> out;
    std::string page;
    do {
      OciCall c{"ListMultipartUploadParts", "GET", upload_url(), {{"uploadId", upload_id_}, {"limit", "1000"}}};
      if (!page.empty()) c.query.push_back({"page", page});
      CH_ASSIGN(r, s_.client->call(c));
      nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
      if (!j.is_array()) return Error{"OCI ListMultipartUploadParts: the answer is not a JSON array"};
      for (const auto& part : j)
        out[part.value("partNumber", 0ull)] = {part.value("size", 0ull), part.value("md5", ""), part.value("etag", "")};
      page = r.header("opc-next-page");
    } while (!page.empty());
    return out;
  }

  // Sends every part not already there (same size and MD5); PARTS gets
  // each part's etag. Parts go kParallelParts at a time; the first error
  // stops the others from starting.
  Status send_parts(std::map<uint64_t, PartInfo>& parts, uint64_t* bytes_sent, uint64_t* reused) {
    int fd = ::open(p_.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Error{"cannot open " + p_.path};
    md5_raw_.assign(p_.parts, {});
    std::atomic<uint64_t> next{0}, sent{0}, kept{0};
    std::mutex mu;
    std::optional<Error> first_error;
    auto worker = [&] {
      for (;;) {
        {
          std::lock_guard<std::mutex> lock(mu);
          if (first_error) return;
        }
        uint64_t i = next.fetch_add(1);
        if (i >= p_.parts) return;
        uint64_t number = i + 1, offset = i * p_.part_size, length = std::min(p_.part_size, p_.size - offset);
        auto md5 = part_md5(fd, offset, length, &md5_raw_[i]);
        Status st;
        if (!md5.ok()) {
          st = md5.error();
        } else {
          PartInfo have;
          {
            std::lock_guard<std::mutex> lock(mu);
            auto it = parts.find(number);
            if (it != parts.end()) have = it->second;
          }
          if (have.size == length && have.md5 == *md5 && !have.etag.empty()) {
            kept += length;
            advance(opts_.progress, length);
            continue;
          }
          FileBody body{fd, offset, length};
          OciCall c{"UploadPart", "PUT", upload_url(),
                    {{"uploadId", upload_id_}, {"uploadPartNum", std::to_string(number)}},
                    "", {{"Content-MD5", *md5}, {"Content-Type", "application/octet-stream"}}, &body};
          c.on_upload_progress = [this](uint64_t n) { advance(opts_.progress, n); };
          auto r = s_.client->call(c);
          if (!r.ok()) {
            st = r.error().wrap("part " + std::to_string(number) + " of " + std::to_string(p_.parts));
          } else {
            std::lock_guard<std::mutex> lock(mu);
            parts[number] = {length, *md5, r->header("etag")};
            sent += length;
          }
        }
        if (!st.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (!first_error) first_error = st.error();
          return;
        }
      }
    };
    std::vector<std::thread> threads;
    int n = static_cast<int>(std::min<uint64_t>(kParallelParts, p_.parts));
    for (int t = 1; t < n; ++t) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
    ::close(fd);
    *bytes_sent = sent;
    *reused = kept;
    if (first_error) return *first_error;
    return {};
  }

  // opc-multipart-md5 of the committed object: base64 MD5 of the parts'
  // binary MD5s, "-", the part count.
  std::string multipart_md5() const {
    std::string all;
    for (const auto& m : md5_raw_) all.append(reinterpret_cast<const char*>(m.data()), m.size());
    unsigned char out[16];
    unsigned int len = 0;
    EVP_Digest(all.data(), all.size(), out, &len, EVP_md5(), nullptr);
    return base64_encode({out, 16}) + "-" + std::to_string(md5_raw_.size());
  }

  Status commit(const std::map<uint64_t, PartInfo>& parts, bool force) {
    nlohmann::json list = nlohmann::json::array();
    for (uint64_t n = 1; n <= p_.parts; ++n) list.push_back({{"partNum", n}, {"etag", parts.at(n).etag}});
    OciCall c{"CommitMultipartUpload", "POST", upload_url(), {{"uploadId", upload_id_}},
              nlohmann::json{{"partsToCommit", list}}.dump()};
    if (!force) c.headers.push_back({"if-none-match", "*"});
    CH_ASSIGN(r, s_.client->send(c));
    if (r.status >= 200 && r.status < 300) return {};
    // An answer lost after the commit happened: the retry finds no upload.
    if (r.status == 404) {
      CH_ASSIGN(head, head_object());
      if (head && head->header("opc-multipart-md5") == multipart_md5()) return {};
    }
    return oci_error(c, r);
  }

  // Aborts every other unfinished upload of this object: one whose
  // CreateMultipartUpload answer was lost (a retry made ours), or a killed
  // run's that was never recorded. Run after our commit, under the image's
  // lock: a later commit of any of them would replace our object.
  Result<int> abort_strays() {
    int aborted = 0;
    std::string page;
    std::vector<std::string> stray;
    do {
      OciCall c{"ListMultipartUploads", "GET", base_ + "/u", {{"limit", "1000"}}};
      if (!page.empty()) c.query.push_back({"page", page});
      CH_ASSIGN(r, s_.client->call(c));
      nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
      if (j.is_array())
        for (const auto& u : j)
          if (u.value("object", "") == p_.object && u.value("uploadId", "") != upload_id_)
            stray.push_back(u.value("uploadId", ""));
      page = r.header("opc-next-page");
    } while (!page.empty());
    for (const std::string& id : stray) {
      OciCall c{"AbortMultipartUpload", "DELETE", upload_url(), {{"uploadId", id}}};
      CH_ASSIGN(r, s_.client->send(c));
      if (r.status != 404 && (r.status < 200 || r.status > 299)) return oci_error(c, r);
      log_info("oci: aborted a stray multipart upload " + id + " of " + p_.object);
      ++aborted;
    }
    return aborted;
  }

  // HeadObject: nullopt when there is no such object.
  Result<std::optional<HttpResponse>> head_object() {
    OciCall c{"HeadObject", "HEAD", object_url()};
    CH_ASSIGN(r, s_.client->send(c));
    if (r.status == 404) return std::optional<HttpResponse>();
    if (r.status != 200) return oci_error(c, r);
    return std::optional<HttpResponse>(r);
  }

  Status create(bool force, const std::string& sha256) {
    nlohmann::json body = {{"object", p_.object}, {"contentType", "application/octet-stream"}};
    if (!sha256.empty()) body["metadata"] = {{"opc-meta-sha256", sha256}};
    OciCall c{"CreateMultipartUpload", "POST", base_ + "/u", {}, body.dump()};
    if (!force) c.headers.push_back({"if-none-match", "*"});
    CH_ASSIGN(j, s_.client->call_json(c));
    upload_id_ = j.value("uploadId", "");
    if (upload_id_.empty()) return Error{"OCI CreateMultipartUpload: no uploadId in the answer"};
    return {};
  }
  const std::string& upload_id() const { return upload_id_; }

 private:
  OciSession& s_;
  const Plan& p_;
  std::string base_, upload_id_;
  const CloudStepOptions& opts_;
  std::vector<std::array<uint8_t, 16>> md5_raw_;
};

Result<std::string> object_namespace(OciSession& s, const OciStorageUrl& url) {
  if (!url.namespace_name.empty()) return url.namespace_name;
  CH_ASSIGN(j, s.client->call_json({"GetNamespace", "GET", s.endpoints.objectstorage + "/n/"}));
  if (!j.is_string()) return Error{"OCI GetNamespace: the answer is not a JSON string"};
  return j.get<std::string>();
}

}  // namespace

CloudStepResult oci_upload(ImageMetadata& meta, const CloudStepOptions& opts) {
  // What CreateImage imports; oci_store (cloud nocloud) stores any file.
  std::string format = meta.get_string("image_format").value_or("qcow2");
  if (format != "qcow2" && format != "vmdk")
    return CloudStepResult::invalid(Error{"OCI imports QCOW2 or VMDK images, not image_format '" + format +
                                          "': convert with image_format: qcow2"});
  return oci_store(meta, opts);
}

CloudStepResult oci_store(ImageMetadata& meta, const CloudStepOptions& opts) {
  auto plan = plan_upload(meta);
  if (!plan.ok()) return CloudStepResult::invalid(plan.error());
  if (opts.validate_only) return {};
  const Plan& p = *plan;
  if (auto done = upload_already_done(meta, opts, "?")) return *done;
  std::string where =
      OciObjectRef{p.url.namespace_name.empty() ? "<namespace>" : p.url.namespace_name, p.url.bucket, p.object}.url();
  if (opts.dry_run) {
    CloudStepResult r;
    if (p.url.namespace_name.empty()) r.lines.push_back("would GET /n/ (the tenancy's Object Storage namespace)");
    r.lines.push_back("would upload " + p.path + " (" + std::to_string(p.size) + " bytes) to " + where +
                      " by multipart upload: CreateMultipartUpload" + (opts.force ? "" : " (if-none-match: *)") + ", " +
                      std::to_string(p.parts) + " UploadPart of up to " + mib(p.part_size) +
                      " with Content-MD5, CommitMultipartUpload");
    return r;
  }

  CH_STEP_ASSIGN(session, open_oci_session(p.config.home_region));
  CH_STEP_ASSIGN(ns, object_namespace(*session, p.url));
  std::string oci_url = OciObjectRef{ns, p.url.bucket, p.object}.url();
  std::string base = session->endpoints.objectstorage + "/n/" + oci_segment(ns) + "/b/" + oci_segment(p.url.bucket);
  bool ours = op_get(meta, "upload", "url") == oci_url;
  Uploader up(*session, p, base, ours ? op_get(meta, "upload", "upload_id").value_or("") : "", opts);
  std::string https_url = up.object_url();

  std::map<uint64_t, PartInfo> parts;
  bool resumed = false;
  if (!up.upload_id().empty() && !opts.force) {
    auto listed = up.list_parts();
    if (listed.ok()) {
      parts = std::move(listed).value();
      resumed = true;
      log_info(meta.path() + ": upload: resuming multipart upload " + up.upload_id() + " of " + oci_url + " (" +
               std::to_string(parts.size()) + " part(s) there)");
    } else if (listed.error().http_status != 404) {
      return CloudStepResult::failure(listed.error());
    }
  }
  if (!resumed) {
    CH_STEP_ASSIGN(head, up.head_object());
    if (head && !opts.force) {
      bool same = std::to_string(p.size) == head->header("content-length") && !p.sha256.empty() &&
                  head->header("opc-meta-sha256") == p.sha256;
      if (!same)
        return CloudStepResult::failure(Error{"object " + oci_url + " already exists and is not this image "
                                              "(size or opc-meta-sha256 differ); not overwritten (--force replaces it)"});
      op_set(meta, "upload", "url", oci_url);
      op_set(meta, "upload", "state", "complete");
      op_remove(meta, "upload", "upload_id");
      meta.set_string("upload_url", https_url);
      meta.set_timestamp("uploaded", utc_now_iso8601());
      CloudStepResult r;
      r.lines.push_back("adopted " + oci_url + ": the object is there with the same size and SHA-256");
      r.extra["upload_url"] = https_url;
      return r;
    }
    auto made = up.create(opts.force, p.sha256);
    if (!made.ok()) {
      if (made.error().http_status == 412 || made.error().http_status == 409)
        return CloudStepResult::failure(Error{"object " + oci_url + " appeared meanwhile; not overwritten "
                                              "(--force replaces it): " + made.error().message});
      return CloudStepResult::failure(made.error());
    }
    op_set(meta, "upload", "url", oci_url);
    op_set(meta, "upload", "upload_id", up.upload_id());
    op_set(meta, "upload", "state", "uploading");
    CH_STEP_TRY(opts.checkpoint());
  }

  if (opts.progress) opts.progress->start("upload " + base_name(p.path), p.size);
  uint64_t sent = 0, reused = 0;
  Status st = up.send_parts(parts, &sent, &reused);
  if (!st.ok()) return CloudStepResult::failure(st.error().wrap("uploading " + p.path + " to " + oci_url));
  Status committed = up.commit(parts, opts.force);
  if (!committed.ok()) return CloudStepResult::failure(committed.error().wrap("uploading " + p.path + " to " + oci_url));
  CH_STEP_ASSIGN(head, up.head_object());
  if (!head || head->header("content-length") != std::to_string(p.size) ||
      head->header("opc-multipart-md5") != up.multipart_md5())
    return CloudStepResult::failure(Error{"uploading " + p.path + " to " + oci_url +
                                          ": the committed object does not match the file (size or opc-multipart-md5)"});
  op_set(meta, "upload", "state", "complete");
  op_remove(meta, "upload", "upload_id");
  meta.set_string("upload_url", https_url);
  meta.set_timestamp("uploaded", utc_now_iso8601());
  CH_STEP_TRY(opts.checkpoint());
  CH_STEP_TRY(up.abort_strays());
  CloudStepResult r;
  r.lines.push_back("uploaded " + p.path + " to " + oci_url + ": " + std::to_string(p.parts) + " part(s), " + mib(sent) +
                    " sent" + (reused ? ", " + mib(reused) + " already there" : ""));
  r.extra["upload_url"] = https_url;
  r.extra["bytes_sent"] = sent;
  r.extra["resumed_bytes"] = reused;
  r.extra["multipart_md5"] = up.multipart_md5();
  return r;
}

}  // namespace ch
