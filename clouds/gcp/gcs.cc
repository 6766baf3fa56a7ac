#include "clouds/gcp/gcs.h"

#include <fcntl.h>
#include <unistd.h>

#include <isa-l/crc.h>
#include <openssl/evp.h>

#include <memory>
#include <vector>

#include "base/file.h"
#include "clouds/http/http_url.h"
#include "clouds/signing/digest.h"
#include "clouds/signing/sigv4.h"
#include "helper/output.h"

namespace ch {

namespace {

using json = nlohmann::json;

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

GcsObject object_from(const json& j) {
  GcsObject o;
  o.size = std::strtoull(str(j, "size").c_str(), nullptr, 10);
  o.crc32c = str(j, "crc32c");
  o.md5_hash = str(j, "md5Hash");
  o.generation = str(j, "generation");
  return o;
}

// "bytes=0-1048575" -> 1048576 persisted; no header: nothing persisted.
uint64_t persisted_from_range(std::string_view range) {
  size_t dash = range.rfind('-');
  if (dash == std::string_view::npos) return 0;
  return std::strtoull(std::string(range.substr(dash + 1)).c_str(), nullptr, 10) + 1;
}

// The session URI carries upload_id, which lets anyone write the object.
void hide_session(const std::string& session) {
  size_t at = session.find("upload_id=");
  if (at == std::string::npos) return;
  std::string id = session.substr(at + 10, session.find('&', at) - (at + 10));
  if (id.size() >= 8) add_secret(id);
}

}  // namespace

uint32_t crc32c(std::string_view bytes, uint32_t crc) {
  // ISA-L's crc32_iscsi neither pre- nor post-inverts: the standard CRC32C
  // (0xE3069283 for "123456789") is ~crc32_iscsi(buf, len, ~0).
  return ~crc32_iscsi(reinterpret_cast<unsigned char*>(const_cast<char*>(bytes.data())),
                      static_cast<int>(bytes.size()), ~crc);
}

std::string crc32c_base64(uint32_t crc) {
  uint8_t be[4] = {uint8_t(crc >> 24), uint8_t(crc >> 16), uint8_t(crc >> 8), uint8_t(crc)};
  return base64_encode(be);
}

Result<LocalDigests> gcs_file_digests(const std::string& path, Progress* progress) {
  CH_ASSIGN(file, File::open_read(path));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md5(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  CH_CHECK(md5 && EVP_DigestInit_ex(md5.get(), EVP_md5(), nullptr) == 1);
  std::vector<char> buf(8 << 20);
  uint32_t crc = 0;
  for (uint64_t off = 0;;) {
    CH_ASSIGN(n, file.pread_some(off, buf.data(), buf.size()));
    if (n == 0) break;
    crc = crc32c({buf.data(), n}, crc);
    EVP_DigestUpdate(md5.get(), buf.data(), n);
    off += n;
    advance(progress, n);
  }
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(md5.get(), digest, &len);
  return LocalDigests{crc32c_base64(crc), base64_encode({digest, len})};
}

std::string gcs_base_url(const GcpEnv& env) {
  std::string host = env.get("STORAGE_EMULATOR_HOST");
  if (host.empty()) return "https://storage.googleapis.com";
  if (host.find("://") == std::string::npos) host = "http://" + host;
  while (!host.empty() && host.back() == '/') host.pop_back();
  return host;
}

Result<GcsObjectRef> parse_gs_url(std::string_view url) {
  if (url.substr(0, 5) != "gs://")
    return Error{"storage_url '" + std::string(url) + "' is not a gs://bucket/prefix/ URL"};
  std::string rest(url.substr(5));
  size_t slash = rest.find('/');
  GcsObjectRef ref;
  ref.bucket = rest.substr(0, slash);
  ref.name = slash == std::string::npos ? "" : rest.substr(slash + 1);
  // Bucket names: 3-63 of [a-z0-9-_.], starting and ending alphanumeric.
  bool ok = ref.bucket.size() >= 3 && ref.bucket.size() <= 222;
  for (char c : ref.bucket)
    ok &= (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
  if (!ok || !std::isalnum(static_cast<unsigned char>(ref.bucket.front())) ||
      !std::isalnum(static_cast<unsigned char>(ref.bucket.back())))
    return Error{"storage_url '" + std::string(url) + "': '" + ref.bucket + "' is not a valid bucket name"};
  return ref;
}

std::string GcsClient::object_url(const GcsObjectRef& ref) const {
  return base_ + "/storage/v1/b/" + ref.bucket + "/o/" + aws_uri_encode(ref.name, false);
}

Result<std::optional<GcsObject>> GcsClient::get(const GcsObjectRef& ref) {
  CH_ASSIGN(doc, rest_.call("GET", object_url(ref), nullptr, true));
  if (!doc) return std::optional<GcsObject>();
  return std::optional<GcsObject>(object_from(*doc));
}

Status GcsClient::remove(const GcsObjectRef& ref) {
  CH_ASSIGN(doc, rest_.call("DELETE", object_url(ref), nullptr, true));
  (void)doc;
  return {};
}

Result<std::string> GcsClient::start_session(const GcsObjectRef& ref, uint64_t size, const LocalDigests& digests,
                                             bool if_absent, const std::string& image_name) {
  std::string url = base_ + "/upload/storage/v1/b/" + ref.bucket + "/o?uploadType=resumable&name=" +
                    aws_uri_encode(ref.name, false) + (if_absent ? "&ifGenerationMatch=0" : "");
  json body = {{"name", ref.name},
               {"contentType", "application/gzip"},
               {"crc32c", digests.crc32c},
               {"md5Hash", digests.md5},
               {"metadata", {{"cloudhelper_image", image_name}}}};
  CH_ASSIGN(r, rest_.send("POST", url, body.dump(),
                          {{"X-Upload-Content-Type", "application/gzip"},
                           {"X-Upload-Content-Length", std::to_string(size)}}));
  std::string what = "starting the resumable upload of " + ref.gs_url();
  if (r.status == 412)
    return Error{what + ": the object exists and no run for this image made it; not overwritten (--force replaces it)",
                 "conditionNotMet", 412};
  if (r.status != 200 && r.status != 201) return google_error(what, r);
  std::string session = r.header("Location");
  if (session.empty()) return Error{what + ": HTTP " + std::to_string(r.status) + " without a Location (session URI)"};
  hide_session(session);
  return session;
}

Result<SessionState> GcsClient::query(const std::string& session, uint64_t size) {
  hide_session(session);
  CH_ASSIGN(r, rest_.send("PUT", session, "", {{"Content-Range", "bytes */" + std::to_string(size)}}));
  SessionState s;
  if (r.status == 404 || r.status == 410) {
    s.gone = true;
  } else if (r.status == 200 || r.status == 201) {
    s.complete = true;
    json doc = json::parse(r.body, nullptr, false);
    if (doc.is_object()) s.object = object_from(doc);
  } else if (r.status == 308) {
    s.persisted = persisted_from_range(r.header("Range"));
  } else {
    return google_error("asking the resumable upload session where it is", r);
  }
  return s;
}

Result<GcsObject> GcsClient::upload(const std::string& session, const std::string& path, uint64_t size,
                                    uint64_t chunk, const std::function<void(uint64_t)>& progress) {
  hide_session(session);
  CH_ASSIGN(file, File::open_read(path));
  CH_ASSIGN(state, query(session, size));
  if (state.gone) return Error{"the resumable upload session expired or was cancelled (re-run to start a new one)"};
  uint64_t offset = state.persisted;
  if (offset && progress) progress(offset);
  while (!state.complete) {
    uint64_t n = std::min(chunk, size - offset);
    FileBody body{file.fd(), offset, n};
    SendOptions opts;
    opts.file_body = &body;
    opts.label = "GCS upload of bytes " + std::to_string(offset) + "-" + std::to_string(offset + n - 1) + " of " +
                 std::to_string(size) + " of " + path;
    CH_ASSIGN(auth, rest_.auth_headers());
    // A failed chunk may have been partly persisted: a retry asks the
    // session (an empty PUT, bytes */SIZE) instead of sending it again; the
    // loop goes on from the Range the answer gives.
    auto r = send_with_retry(rest_.http(), rest_.policy(), [&](int attempt) -> Result<HttpRequest> {
      CH_ASSIGN(req, request_from_url(session));
      req.method = "PUT";
      req.headers = auth;
      if (attempt == 1) {
        body.length = n;
        req.headers.push_back({"Content-Range", "bytes " + std::to_string(offset) + "-" + std::to_string(offset + n - 1) +
                                                    "/" + std::to_string(size)});
      } else {
        body.length = 0;
        req.headers.push_back({"Content-Range", "bytes */" + std::to_string(size)});
      }
      return req;
    }, opts);
    if (!r.ok()) return r.error().wrap("uploading to " + path.substr(path.rfind('/') + 1));
    if (r->status == 308) {
      uint64_t now = persisted_from_range(r->header("Range"));
      if (now > size || now < offset)
        return Error{"the resumable upload session answered Range " + r->header("Range") + " after offset " +
                     std::to_string(offset)};
      if (progress) progress(now - offset);
      offset = now;
      continue;
    }
    if (r->status == 200 || r->status == 201) {
      json doc = json::parse(r->body, nullptr, false);
      if (!doc.is_object()) return Error{"the upload ended without an object resource"};
      if (progress) progress(size - offset);
      state.complete = true;
      state.object = object_from(doc);
      break;
    }
    if (r->status == 404 || r->status == 410)
      return google_error("the resumable upload session expired or was cancelled (re-run to start a new one)", *r);
    return google_error("PUT bytes " + std::to_string(offset) + "+" + std::to_string(n) + " to the upload session", *r);
  }
  return state.object;
}

Status GcsClient::cancel(const std::string& session) {
  hide_session(session);
  CH_ASSIGN(r, rest_.send("DELETE", session));
  // GCS answers a cancelled session with 499 (Client Closed Request).
  if (r.status == 499 || r.status == 204 || r.status == 200 || r.status == 404 || r.status == 410) return {};
  return google_error("cancelling the resumable upload session", r);
}

}  // namespace ch
