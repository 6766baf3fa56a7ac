// Cloud Storage through its JSON API (https://cloud.google.com/storage/docs/json_api):
// object metadata, delete, and resumable uploads
// (https://cloud.google.com/storage/docs/performing-resumable-uploads):
//   POST {base}/upload/storage/v1/b/BUCKET/o?uploadType=resumable&name=OBJ
//        [&ifGenerationMatch=0]  body: the object resource (name, crc32c,
//        md5Hash, metadata: GCS checks both digests when the upload ends)
//        -> 200 + Location: the session URI
//   PUT  SESSION  Content-Range: bytes A-B/SIZE  (chunks in 256 KiB
//        multiples, the last excepted) -> 308 + Range: bytes=0-N (what is
//        persisted; may be less than sent), or 200/201 + the object
//   PUT  SESSION  Content-Range: bytes */SIZE, empty: where the session is
//        (308 [+ Range], 200/201 done, 404/410 gone)
//   DELETE SESSION  cancels (GCS answers 499)
// {base} is https://storage.googleapis.com, or STORAGE_EMULATOR_HOST
// ("host:port" or a URL) as the Google libraries take it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/progress.h"
#include "base/result.h"
#include "clouds/gcp/gcp_rest.h"

namespace ch {

struct GcsObjectRef {
  std::string bucket;
  std::string name;  // object name, "" for a prefix ending in "/"
  std::string gs_url() const { return "gs://" + bucket + "/" + name; }
  // What Compute's rawDisk.source takes.
  std::string https_url() const { return "https://storage.googleapis.com/" + bucket + "/" + name; }
};

// gs://bucket/prefix/ (or gs://bucket/object). Errors name the URL.
Result<GcsObjectRef> parse_gs_url(std::string_view url);

struct GcsObject {
  uint64_t size = 0;
  std::string crc32c;    // base64 of the big-endian CRC32C
  std::string md5_hash;  // base64
  std::string generation;
};

// CRC32C (Castagnoli, as GCS computes it) and MD5 of a file in one pass,
// both base64 as GCS writes them.
struct LocalDigests {
  std::string crc32c;
  std::string md5;
};
Result<LocalDigests> gcs_file_digests(const std::string& path, Progress* progress = nullptr);
// CRC32C of bytes (continuing CRC), for tests and the digest above.
uint32_t crc32c(std::string_view bytes, uint32_t crc = 0);
// base64 of the big-endian 4 bytes.
std::string crc32c_base64(uint32_t crc);

// Where a resumable session stands.
struct SessionState {
  bool gone = false;       // 404/410: expired or cancelled
  bool complete = false;   // the object exists
  uint64_t persisted = 0;  // bytes GCS has (when neither of the above)
  GcsObject object;        // when complete
};

class GcsClient {
 public:
  // BASE: "https://storage.googleapis.com" (no trailing slash).
  GcsClient(GcpRest& rest, std::string base) : rest_(rest), base_(std::move(base)) {}

  // nullopt when the object does not exist.
  Result<std::optional<GcsObject>> get(const GcsObjectRef& ref);
  // A missing object is success.
  Status remove(const GcsObjectRef& ref);

  // Starts a session; IF_ABSENT adds ifGenerationMatch=0 (fails with 412 if
  // the object exists when the upload ends).
  Result<std::string> start_session(const GcsObjectRef& ref, uint64_t size, const LocalDigests& digests,
                                    bool if_absent, const std::string& image_name);
  Result<SessionState> query(const std::string& session, uint64_t size);
  // Sends the file from what the session has to the end, CHUNK bytes per
  // PUT (a multiple of 256 KiB). A failed chunk is retried by asking the
  // session where it is and going on from there. PROGRESS gets persisted bytes.
  Result<GcsObject> upload(const std::string& session, const std::string& path, uint64_t size, uint64_t chunk,
                           const std::function<void(uint64_t)>& progress);
  // DELETE SESSION; a session already gone is success.
  Status cancel(const std::string& session);

  std::string object_url(const GcsObjectRef& ref) const;

 private:
  GcpRest& rest_;
  std::string base_;
};

// {base} for storage from STORAGE_EMULATOR_HOST, else Google's.
std::string gcs_base_url(const GcpEnv& env);

}  // namespace ch
