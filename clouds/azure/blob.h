// Azure Blob service REST calls cloud_helper needs, and the sparse page-blob
// upload of a fixed VHD. All requests go through the shared retry policy and
// are authorised per clouds/azure/storage.h. Errors are one line naming the
// call, the blob, the HTTP status, the service's error code and message,
// and x-ms-request-id: "Put Page az://a/c/d.vhd (bytes 0-4194303): HTTP 403
// AuthenticationFailed: Server failed to authenticate the request.
// (request id 1-2-3)".
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "clouds/azure/storage.h"
#include "clouds/http/http_client.h"
#include "clouds/http/retry.h"

namespace ch {

struct BlobProperties {
  uint64_t content_length = 0;
  std::string blob_type;         // "PageBlob", "BlockBlob", "AppendBlob"
  std::string content_md5;       // base64, "" when unset
  std::string content_type;
  std::string etag;
  std::map<std::string, std::string> metadata;  // x-ms-meta-* (names lower-cased)
};

struct PageRange {
  uint64_t start = 0;  // first byte
  uint64_t end = 0;    // last byte, inclusive (as the service reports it)
};

class BlobClient {
 public:
  // CLIENT must outlive this. AUTH is copied.
  BlobClient(HttpClient& client, StorageAuth auth, RetryPolicy policy = RetryPolicy::from_env());

  // Get Blob Properties (HEAD); nullopt on 404.
  Result<std::optional<BlobProperties>> properties(const BlobLocation& blob);
  // Get Container Properties; false on 404.
  Result<bool> container_exists(const BlobLocation& container);
  // Create Container (private); an existing one (409 ContainerAlreadyExists) is fine.
  Status create_container(const BlobLocation& container);
  // Put Blob, x-ms-blob-type PageBlob, x-ms-blob-content-length SIZE (a
  // multiple of 512), content type application/octet-stream, METADATA as
  // x-ms-meta-*. When if_none_match, sends If-None-Match: * and an existing
  // blob fails with code "BlobAlreadyExists" (Error::code set).
  Status create_page_blob(const BlobLocation& blob, uint64_t size,
                          const std::map<std::string, std::string>& metadata, bool if_none_match);
  // Put Page, x-ms-page-write: update, x-ms-range bytes=OFFSET-(OFFSET+len-1),
  // Content-MD5 = MD5_BASE64. The body is DATA (in memory) or BODY (a file
  // range); exactly one is given; length a multiple of 512, ≤ 4 MiB.
  Status put_page(const BlobLocation& blob, uint64_t offset, std::string_view data,
                  const FileBody* body, const std::string& md5_base64);
  // Get Page Ranges (all of them, following NextMarker), in order.
  Result<std::vector<PageRange>> page_ranges(const BlobLocation& blob);
  // Set Blob Properties with x-ms-blob-content-md5 MD5_BASE64 (keeps the
  // content type: Set Blob Properties clears every x-ms-blob-content-*
  // header not sent, so it re-sends CONTENT_TYPE).
  Status set_content_md5(const BlobLocation& blob, const std::string& md5_base64,
                         const std::string& content_type);
  // Delete Blob with x-ms-delete-snapshots: include; a missing blob (404) is fine.
  Status delete_blob(const BlobLocation& blob);
  // List Blobs under PREFIX (flat, following NextMarker): names only.
  Result<std::vector<std::string>> list_blobs(const BlobLocation& container, const std::string& prefix);

  const StorageAuth& auth() const { return auth_; }

 private:
  HttpClient& client_;
  StorageAuth auth_;
  RetryPolicy policy_;
};

// What to upload: a fixed VHD file (size a multiple of 512: data + footer),
// or a raw image whose VHD footer is made on the fly (formats/formats.h
// vhd_fixed_footer), its data padded with zeros to a whole MiB.
struct PageBlobSource {
  std::string path;
  bool raw_with_footer = false;
  std::string footer_file_name;  // raw_with_footer: the name the footer UUID is derived from
};

struct PageBlobUploadOptions {
  int parallel = 8;                  // Put Page requests in flight
  uint64_t chunk_bytes = 4u << 20;   // ≤ 4 MiB, multiple of 512
  // Within a chunk only the non-zero 512-byte pages are sent; runs of them
  // at most this far apart are sent as one Put Page. The default, one
  // filesystem block, sends the zero pages inside a 4 KiB block that holds
  // data (a file's tail) and nothing else: on the bench image 1.09x the
  // non-zero pages in 592 requests, against 1.004x in 61,684 requests for
  // 1024 (bench/azure.sh --merge-gap).
  uint64_t merge_gap_bytes = 4096;
  // The blob already exists, made by an earlier run of this same upload
  // (the caller checked operations and the metadata): read its page ranges
  // and send only chunks not wholly written. Otherwise the blob is created
  // (with if_none_match unless overwrite).
  bool resume = false;
  bool overwrite = false;            // --force: replace an existing blob
  std::map<std::string, std::string> metadata;  // x-ms-meta-* at creation
  // Hex MD5 of the whole source as uploaded (checksums.md5 of a VHD), or ""
  // to compute it while reading.
  std::string known_md5_hex;
  // Called once the blob exists (created or found for resume), before the
  // first Put Page: the caller records it in operations and checkpoints.
  std::function<Status()> on_created;
  std::function<void(uint64_t bytes)> progress;  // source bytes handled (sent or skipped)
};

struct PageBlobUploadResult {
  uint64_t blob_size = 0;        // bytes of the page blob (= VHD size)
  uint64_t bytes_sent = 0;       // Put Page body bytes sent (final attempts)
  uint64_t zero_bytes_skipped = 0;
  uint64_t resumed_bytes = 0;    // already present, not re-sent
  uint64_t put_page_requests = 0;
  std::string md5_base64;        // set as the blob's Content-MD5
};

// Reads SOURCE once, in order: MD5 of everything, all-zero chunks skipped
// (never sent), other chunks sent with Put Page by OPTS.parallel workers
// (memory bounded: at most 2 × parallel chunks buffered). Then sets the
// blob's Content-MD5. Resume per OPTS.resume. Errors: the file's size is not
// a multiple of 512 (VHD) — checked before any request.
Result<PageBlobUploadResult> upload_page_blob(BlobClient& client, const BlobLocation& blob,
                                              const PageBlobSource& source,
                                              const PageBlobUploadOptions& opts);

}  // namespace ch
