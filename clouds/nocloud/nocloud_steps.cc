// cloud: nocloud — upload to a local (or mounted) directory or to an object
// store (S3, GCS, OSS, OCI Object Storage); the other steps do not apply.
//
// An object store upload is that cloud's own upload step without its import
// format check (aws_upload, gcp_store, alicloud_store, oci_store): the same
// resume after a kill, verification, --force rule, operations and
// credentials; rollback is that cloud's rollback, which for an image never
// imported deletes only the object (or aborts the unfinished upload).
//
// A file:// upload is a copy made safe to interrupt: the bytes go to a
// hidden temporary name beside the destination, which is recorded in
// operations.upload first; only a complete, fsynced copy is renamed into
// place. A killed run leaves at most that temporary file, which the re-run
// overwrites and rollback deletes. Holes of the image stay holes, and all-
// zero 64 KiB pieces of its data become holes, so a sparse image stays
// sparse on the storage side.
#include "clouds/nocloud/nocloud_steps.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "base/file.h"
#include "clouds/alicloud/alicloud_steps.h"
#include "clouds/aws/aws_steps.h"
#include "clouds/gcp/gcp_steps.h"
#include "clouds/http/http_url.h"
#include "clouds/oci/oci_steps.h"
#include "clouds/operations.h"
#include "formats/hole_map.h"

namespace ch {

namespace {

constexpr const char* kSidecars[] = {".sha256", ".sha512", ".md5", ".asc", ".sig"};
constexpr size_t kChunk = 4 << 20;      // one pread/pwrite
constexpr size_t kZeroUnit = 64 << 10;  // all-zero pieces of this size stay holes

struct FileTarget {
  std::string url;   // file:///dir/name, as recorded in upload_url
  std::string path;  // /dir/name
  std::string temp;  // /dir/.name.cloud_helper-partial
};

constexpr const char kForms[] =
    "file:///dir/, s3://bucket/prefix/, gs://bucket/prefix/, oss://bucket/prefix/ or "
    "oci://bucket@namespace/prefix/";

// The object stores, by storage_url scheme: whose upload and rollback.
struct ObjectStore {
  const char* scheme;
  CloudStep upload;
  CloudStep rollback;
};
constexpr ObjectStore kStores[] = {
    {"s3://", aws_upload, aws_rollback},
    {"gs://", gcp_store, gcp_rollback},
    {"oss://", alicloud_store, alicloud_rollback},
    {"oci://", oci_store, oci_rollback},
};

const ObjectStore* object_store(const std::string& url) {
  for (const ObjectStore& s : kStores)
    if (url.rfind(s.scheme, 0) == 0) return &s;
  return nullptr;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// file:///dir/ (the image's own name inside dir) or file:///dir/name;
// file://localhost/... is the same. Percent escapes are decoded.
Result<FileTarget> file_target(const std::string& url, const std::string& image_path) {
  std::string rest;
  if (url.rfind("file:///", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("file://localhost/", 0) == 0) {
    rest = url.substr(16);
  } else {
    return Error{"'" + url + "' is not a local file URL (file:///absolute/dir/)"};
  }
  std::string path;
  if (!percent_decode(rest, &path) || path.find('\0') != std::string::npos)
    return Error{"'" + url + "' has a bad percent escape"};
  if (path.back() == '/') path += base_name(image_path);
  FileTarget t;
  t.path = path;
  t.url = "file://" + path;
  t.temp = dir_of(path) + "/." + base_name(path) + ".cloud_helper-partial";
  return t;
}

// Copies SRC to DST (created or truncated), data extents only, all-zero
// pieces left as holes; fsyncs DST. PROGRESS advances by source bytes.
Status sparse_copy(const std::string& src, const std::string& dst, Progress* progress) {
  CH_ASSIGN(in, File::open_read(src));
  CH_ASSIGN(size, in.size());
  CH_ASSIGN(extents, map_holes(in, size));
  CH_ASSIGN(out, File::create(dst));
  std::vector<char> buf(kChunk);
  static const std::vector<char> zeros(kZeroUnit, 0);
  for (const Extent& e : extents) {
    if (!e.data) {
      advance(progress, e.length);
      continue;
    }
    for (uint64_t off = e.offset; off < e.offset + e.length;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, e.offset + e.length - off));
      CH_TRY(in.pread_full(off, buf.data(), n));
      // Write only the runs of pieces that hold data.
      for (size_t p = 0; p < n;) {
        size_t q = p;
        while (q < n && memcmp(buf.data() + q, zeros.data(), std::min(kZeroUnit, n - q)) == 0) q += kZeroUnit;
        if (q >= n) break;
        size_t r = q;
        while (r < n && memcmp(buf.data() + r, zeros.data(), std::min(kZeroUnit, n - r)) != 0) r += kZeroUnit;
        r = std::min(r, n);
        CH_TRY(out.pwrite_full(off + q, buf.data() + q, r - q));
        p = r;
      }
      off += n;
      advance(progress, n);
    }
  }
  CH_TRY(out.truncate(size));
  return out.sync();
}

// Copies SRC to TARGET through TEMP: never a half-written file at TARGET.
Status atomic_copy(const std::string& src, const std::string& temp, const std::string& target,
                   Progress* progress) {
  CH_TRY(sparse_copy(src, temp, progress));
  if (::rename(temp.c_str(), target.c_str()) != 0) return errno_error("rename " + temp + " to " + target);
  return fsync_dir(dir_of(target));
}

Status remove_if_there(const std::string& path, std::vector<std::string>& lines) {
  if (::unlink(path.c_str()) == 0) {
    lines.push_back("deleted " + path);
    return {};
  }
  if (errno == ENOENT) return {};
  return errno_error("delete " + path);
}

}  // namespace

CloudStepResult nocloud_upload(ImageMetadata& meta, const CloudStepOptions& opts) {
  auto storage = meta.get_string("storage_url");
  if (!storage) return CloudStepResult::invalid(Error{std::string("no storage_url (set it to ") + kForms + ")"});
  if (const ObjectStore* s = object_store(*storage)) return s->upload(meta, opts);
  if (storage->rfind("file://", 0) != 0)
    return CloudStepResult::invalid(
        Error{"storage_url '" + *storage + "' is not a place cloud nocloud stores to (" + kForms + ")"});
  auto file = image_file_of(meta);
  if (!file.ok()) return CloudStepResult::invalid(file.error());
  const std::string image = file->path;
  const uint64_t size = file->size;
  auto target = file_target(*storage, image);
  if (!target.ok())
    return CloudStepResult::invalid(target.error().wrap(std::string("storage_url (") + kForms + ")"));
  std::string dir = dir_of(target->path);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return CloudStepResult::invalid(Error{"storage_url: directory " + dir + " does not exist"});
  if (::access(dir.c_str(), W_OK) != 0)
    return CloudStepResult::invalid(Error{"storage_url: directory " + dir + " is not writable"});
  if (opts.validate_only) return {};

  if (auto done = upload_already_done(meta, opts, target->url)) return *done;
  std::vector<std::string> sidecars;
  for (const char* ext : kSidecars)
    if (regular_file(image + ext, nullptr)) sidecars.push_back(ext);
  // Someone else's file is never replaced silently; ours (a re-run after a
  // kill, or --force) is.
  bool ours = op_get(meta, "upload", "url") == target->url || meta.get_string("upload_url") == target->url;
  if (exists(target->path) && !ours && !opts.force)
    return CloudStepResult::failure(
        Error{target->path + " already exists and no run of this image made it (--force replaces it)"});

  if (opts.dry_run) {
    CloudStepResult r;
    r.lines.push_back("would copy " + image + " (" + std::to_string(size) + " bytes, holes kept) to " +
                      target->path + " through " + target->temp);
    for (const std::string& ext : sidecars) r.lines.push_back("would copy " + image + ext + " to " + target->path + ext);
    return r;
  }

  op_set(meta, "upload", "url", target->url);
  op_set(meta, "upload", "partial", target->temp);
  CH_STEP_TRY(opts.checkpoint());
  if (opts.progress) opts.progress->start("upload " + base_name(image), size);
  CH_STEP_TRY(atomic_copy(image, target->temp, target->path, opts.progress));
  // Sidecars after the image: their presence says the image beside them is whole.
  std::string names;
  for (const std::string& ext : sidecars) {
    CH_STEP_TRY(atomic_copy(image + ext, target->temp + ext, target->path + ext, nullptr));
    names += (names.empty() ? "" : ",") + ext;
  }
  op_remove(meta, "upload", "partial");
  if (!names.empty()) op_set(meta, "upload", "sidecars", names);
  meta.set_string("upload_url", target->url);
  meta.set_timestamp("uploaded", utc_now_iso8601());
  CloudStepResult r;
  r.lines.push_back("uploaded " + image + " to " + target->path +
                    (sidecars.empty() ? "" : " (with " + names + ")"));
  r.extra["upload_url"] = target->url;
  return r;
}

CloudStepResult nocloud_import(ImageMetadata& meta, const CloudStepOptions&) {
  return CloudStepResult::not_applicable(meta.path() +
                                         ": import: does not apply to cloud nocloud (storage only)");
}

CloudStepResult nocloud_publish(ImageMetadata& meta, const CloudStepOptions&) {
  return CloudStepResult::not_applicable(meta.path() +
                                         ": publish: does not apply to cloud nocloud (storage only)");
}

CloudStepResult nocloud_rollback(ImageMetadata& meta, const CloudStepOptions& opts) {
  // The other clouds' rollbacks also delete images and copies; nocloud
  // never makes any, so a record of one came from another cloud's run of
  // this file and is left to that cloud.
  if (meta.get_string("import_id") || !op_entries(meta, "import").empty() || !op_entries(meta, "publish").empty())
    return CloudStepResult::invalid(Error{"the YAML records an import (import_id or operations.import/publish), "
                                          "which cloud nocloud never makes: roll it back with the cloud that "
                                          "imported it"});
  // Where upload stored it: operations.upload.url (oci:// for OCI, whose
  // upload_url is https), else upload_url. Nothing recorded: nothing to
  // delete, and no credentials needed to say so (below).
  for (const std::string& where :
       {op_get(meta, "upload", "url").value_or(""), meta.get_string("upload_url").value_or("")}) {
    if (const ObjectStore* s = object_store(where)) return s->rollback(meta, opts);
    if (!where.empty()) break;
  }
  std::string url = meta.get_string("upload_url").value_or(op_get(meta, "upload", "url").value_or(""));
  if (opts.validate_only) return {};
  CloudStepResult r;
  if (url.empty() && !op_get(meta, "upload", "partial")) {
    // `uploaded` without a recorded place: nothing this tool can delete.
    if (!opts.dry_run) meta.remove("uploaded");
    return r;
  }
  std::string path = url.rfind("file://", 0) == 0 ? url.substr(7) : "";
  std::vector<std::string> files;
  if (auto partial = op_get(meta, "upload", "partial")) {
    files.push_back(*partial);
    for (const char* ext : kSidecars) files.push_back(*partial + ext);
  }
  if (!path.empty()) {
    files.push_back(path);
    std::string names = op_get(meta, "upload", "sidecars").value_or("");
    for (size_t p = 0; p < names.size();) {
      size_t c = std::min(names.find(',', p), names.size());
      files.push_back(path + names.substr(p, c - p));
      p = c + 1;
    }
  }
  if (opts.dry_run) {
    for (const std::string& f : files)
      if (exists(f)) r.lines.push_back("would delete " + f);
    return r;
  }
  for (const std::string& f : files) CH_STEP_TRY(remove_if_there(f, r.lines));
  op_remove_section(meta, "upload");
  meta.remove("upload_url");
  meta.remove("uploaded");
  return r;
}

}  // namespace ch
