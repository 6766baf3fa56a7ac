// cloud: gcp, upload — the GCE tarball to storage_url by a resumable upload.
//
// operations.upload records {url: gs://b/o, session: URI, state: uploading}
// before the first byte: a re-run after a kill asks the session where it is
// and sends only the rest. An object that is there without such a record
// belongs to someone else: it is adopted when its crc32c, MD5 and size are
// the file's, and otherwise never overwritten without --force (the session
// is started with ifGenerationMatch=0, so even a racing writer is not
// overwritten). The object's crc32c and md5Hash are checked against the
// file at the end (GCS also checks both, sent when the session starts).

#include "base/file.h"
#include "clouds/gcp/gcp_config.h"
#include "clouds/gcp/gcp_session.h"
#include "clouds/gcp/gcp_steps.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

struct UploadPlan {
  std::string path;
  uint64_t size = 0;
  GcsObjectRef object;
  uint64_t chunk = 0;
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string mib(uint64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

Result<UploadPlan> plan_upload(const ImageMetadata& meta) {
  UploadPlan p;
  auto storage = meta.get_string("storage_url");
  if (!storage) return Error{"no storage_url (set it to gs://bucket/prefix/)"};
  CH_ASSIGN(file, image_file_of(meta));
  p.path = file.path;
  p.size = file.size;
  if (p.size == 0) return Error{"image_file " + p.path + " is empty"};
  CH_ASSIGN(cfg, read_gcp_config(meta, ""));
  p.chunk = cfg.chunk_size;
  CH_ASSIGN(loc, parse_gs_url(*storage));
  std::string base = p.path.substr(p.path.rfind('/') + 1);
  p.object = loc;
  if (loc.name.empty() || loc.name.back() == '/') p.object.name = loc.name + base;
  return p;
}

// Compute Engine imports only the GCE tarball; gcp_store (cloud nocloud)
// stores any file. Without an image_file, gcp_store says what is missing.
Status import_format(const ImageMetadata& meta) {
  auto image_file = meta.get_string("image_file");
  if (!image_file) return {};
  std::string format = meta.get_string("image_format").value_or(ends_with(*image_file, ".tar.gz") ? "gce-tar" : "");
  if (format != "gce-tar")
    return Error{"Compute Engine imports a gzipped tar holding disk.raw, not image_format '" + format +
                 "': convert with image_format: gce-tar"};
  return {};
}

}  // namespace

CloudStepResult gcp_upload(ImageMetadata& meta, const CloudStepOptions& opts) {
  if (Status s = import_format(meta); !s.ok()) return CloudStepResult::invalid(s.error());
  return gcp_store(meta, opts);
}

CloudStepResult gcp_store(ImageMetadata& meta, const CloudStepOptions& opts) {
  auto plan = plan_upload(meta);
  if (!plan.ok()) return CloudStepResult::invalid(plan.error());
  if (opts.validate_only) return {};
  const UploadPlan& p = *plan;
  const std::string gs = p.object.gs_url();
  if (auto done = upload_already_done(meta, opts, gs)) return *done;
  GcpEnv env = GcpEnv::from_process();
  if (opts.dry_run) {
    CloudStepResult r;
    r.lines.push_back("would GET " + gcs_base_url(env) + "/storage/v1/b/" + p.object.bucket + "/o/" + p.object.name +
                      " (is the object there?)");
    r.lines.push_back("would POST " + gcs_base_url(env) + "/upload/storage/v1/b/" + p.object.bucket +
                      "/o?uploadType=resumable&name=" + p.object.name + (opts.force ? "" : "&ifGenerationMatch=0") +
                      " and PUT " + p.path + " (" + std::to_string(p.size) + " bytes) in chunks of " +
                      std::to_string(p.chunk) + " bytes, then check crc32c and md5Hash");
    return r;
  }

  CH_STEP_ASSIGN(session, open_gcp_session(false, ""));
  GcsClient& gcs = *session->gcs;
  if (opts.progress) opts.progress->start("crc32c+md5 " + p.path.substr(p.path.rfind('/') + 1), p.size);
  CH_STEP_ASSIGN(local, gcs_file_digests(p.path, opts.progress));

  std::string session_uri;
  bool ours = op_get(meta, "upload", "url") == gs;
  if (ours && op_get(meta, "upload", "state") == "uploading" && !opts.force) {
    if (auto s = op_get(meta, "upload", "session")) {
      CH_STEP_ASSIGN(state, gcs.query(*s, p.size));
      if (!state.gone) {
        session_uri = *s;
        log_info(meta.path() + ": upload: resuming the resumable upload of " + gs + " at byte " +
                 std::to_string(state.complete ? p.size : state.persisted));
      } else {
        log_info(meta.path() + ": upload: the recorded upload session of " + gs + " is gone; starting a new one");
      }
    }
  }
  CloudStepResult r;
  GcsObject object;
  bool adopted = false;
  if (session_uri.empty()) {
    CH_STEP_ASSIGN(existing, gcs.get(p.object));
    if (existing && existing->crc32c == local.crc32c && existing->md5_hash == local.md5 && existing->size == p.size) {
      log_info(meta.path() + ": upload: " + gs + " is already there with the same crc32c and MD5; not sent again");
      object = *existing;
      adopted = true;
    } else if (existing && !ours && !opts.force) {
      return CloudStepResult::failure(Error{"object " + gs + " already exists (size " + std::to_string(existing->size) +
                                            ", crc32c " + existing->crc32c + ") and no run for this image made it; "
                                            "not overwritten (--force replaces it)"});
    } else {
      std::string name = meta.get_string("name").value_or(p.object.name);
      // ours or --force: replace; else create only (ifGenerationMatch=0).
      CH_STEP_ASSIGN(uri, gcs.start_session(p.object, p.size, local, !(existing || ours || opts.force), name));
      session_uri = uri;
      op_set(meta, "upload", "url", gs);
      op_set(meta, "upload", "session", session_uri);
      op_set(meta, "upload", "state", "uploading");
      CH_STEP_TRY(opts.checkpoint());
    }
  }
  uint64_t sent = 0;
  if (!adopted) {
    if (opts.progress) opts.progress->start("upload " + p.path.substr(p.path.rfind('/') + 1), p.size);
    auto up = gcs.upload(session_uri, p.path, p.size, p.chunk, [&](uint64_t n) {
      sent += n;
      advance(opts.progress, n);
    });
    if (!up.ok()) return CloudStepResult::failure(up.error().wrap("uploading " + p.path + " to " + gs));
    object = *up;
  }
  if (object.crc32c != local.crc32c || object.md5_hash != local.md5 || object.size != p.size)
    return CloudStepResult::failure(Error{"object " + gs + " does not match " + p.path + ": crc32c " + object.crc32c +
                                          " (file " + local.crc32c + "), md5Hash " + object.md5_hash + " (file " +
                                          local.md5 + "), size " + std::to_string(object.size) + " (file " +
                                          std::to_string(p.size) + ")"});
  op_set(meta, "upload", "url", gs);
  op_remove(meta, "upload", "session");
  op_set(meta, "upload", "state", "complete");
  meta.set_string("upload_url", gs);
  meta.set_timestamp("uploaded", utc_now_iso8601());
  r.lines.push_back("uploaded " + p.path + " to " + gs + (adopted ? " (already there)" : ": " + mib(p.size)) +
                    ", crc32c " + local.crc32c + ", md5 " + local.md5);
  r.extra["upload_url"] = gs;
  r.extra["crc32c"] = local.crc32c;
  r.extra["md5"] = local.md5;
  r.extra["generation"] = object.generation;
  return r;
}

}  // namespace ch
