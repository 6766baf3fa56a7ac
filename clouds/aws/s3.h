// Amazon S3 for the `upload` step: s3:// URLs, uploads of image files (one
// PutObject, or a parallel, resumable multipart upload), and the few object
// and bucket calls around them (head, get, delete, small sidecar objects,
// bucket creation and region lookup, listing and aborting multipart uploads).
//
// Everything goes through AwsClient::rest (clouds/aws/aws_client.h), which
// resolves the endpoint (AWS_ENDPOINT_URL[_S3] → path style, as moto and
// MinIO expect), signs, retries and turns error documents into Errors. REST
// API reference: https://docs.aws.amazon.com/AmazonS3/latest/API/.
//
// Errors read "S3 UploadPart 17 of s3://b/k: HTTP 403 AccessDenied: Access
// Denied (request id 4Q..)" and keep the service's code and HTTP status in
// Error::code / Error::http_status so callers can branch on them
// ("NoSuchBucket", "NoSuchUpload", 404).
//
// Integrity: every body is sent with Content-MD5 and signed with its real
// SHA-256 (never UNSIGNED-PAYLOAD), so S3 verifies both digests of every part
// it stores; a corrupted byte in transit is a 400 BadDigest or
// XAmzContentSHA256Mismatch, never a silently bad image.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "clouds/aws/aws_client.h"

namespace ch {

// ---------------------------------------------------------------------------
// s3:// URLs

// An object ("s3://b/dir/disk.raw": key "dir/disk.raw") or a prefix
// ("s3://b/dir/": key "dir/"; "s3://b" and "s3://b/": key ""). Keys are raw
// bytes (UTF-8), never percent-encoded here; the client encodes them on the
// wire.
struct S3Url {
  std::string bucket;
  std::string key;
  bool is_prefix() const { return key.empty() || key.back() == '/'; }
};

// Parses "s3://BUCKET[/KEY]". Errors, naming the URL:
//   "s3://X: not an s3:// URL"                          (other schemes, "")
//   "s3://Bad_Name/k: invalid S3 bucket name 'Bad_Name': <rule>"
//   "s3://b/<1025 bytes>: S3 object key longer than 1024 bytes"
Result<S3Url> parse_s3_url(std::string_view url);

// Checks a bucket name against S3's general purpose bucket rules
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html):
// 3..63 characters of a-z 0-9 . -, starting and ending with a letter or digit,
// no "..", not an IPv4 address, no reserved prefix (xn--, sthree-,
// amzn-s3-demo-) or suffix (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3).
// The message is the broken rule: "must be 3 to 63 characters long".
Status check_s3_bucket_name(std::string_view bucket);

// "s3://BUCKET/KEY" (KEY raw, as parse_s3_url reads it back).
std::string s3_url_string(const S3Url& url);

// The object URL for a file NAME under BASE: BASE's key + NAME when BASE is a
// prefix (key "" or ending in "/"), else BASE itself (the YAML named the
// object exactly). s3_object_url({"b","img/"}, "disk.raw") → s3://b/img/disk.raw.
S3Url s3_object_url(const S3Url& base, std::string_view name);

// ---------------------------------------------------------------------------
// Objects

struct S3Object {
  std::string bucket;
  std::string key;
  std::string etag;        // without the quotes S3 puts around it
  uint64_t size = 0;       // bytes
  std::string version_id;  // "" when the bucket is not versioned
  std::string content_type;
  // User metadata, from the x-amz-meta-* headers, names lowercased without
  // the prefix ({"sha256": "..."}). Filled by s3_head_object only.
  std::map<std::string, std::string> metadata;
};

// HEAD of the object: nullopt on 404 (no such key, and also no such bucket:
// a HEAD answer has no body to tell them apart; the next call that writes
// names NoSuchBucket). Other statuses (403, 301 wrong region) are errors.
Result<std::optional<S3Object>> s3_head_object(AwsClient& client, const std::string& region,
                                               const S3Url& url);

// GET of the whole object, handed to SINK in order, in ranged GETs of
// 8 MiB (each retried on its own, so SINK never sees a byte twice; false
// from SINK aborts). For verification and small sidecars; images are not
// downloaded by cloud_helper.
Status s3_get_object(AwsClient& client, const std::string& region, const S3Url& url,
                     const std::function<bool(std::string_view chunk)>& sink);
// The same into memory (small objects only).
Result<std::string> s3_get_object_bytes(AwsClient& client, const std::string& region,
                                        const S3Url& url);

// PutObject of a small body held in memory (sidecars such as "disk.raw.sha256").
// CONTENT_TYPE "" sends none (S3 then stores binary/octet-stream).
Result<S3Object> s3_put_object_bytes(AwsClient& client, const std::string& region,
                                     const S3Url& url, const std::string& body,
                                     const std::string& content_type = "",
                                     const std::map<std::string, std::string>& metadata = {});

// DeleteObject. Deleting a missing key succeeds (S3 answers 204 either way).
Status s3_delete_object(AwsClient& client, const std::string& region, const S3Url& url);

// ---------------------------------------------------------------------------
// Uploading a file

struct S3UploadOptions {
  // Bytes per part; 0 = automatic: 16 MiB, grown (in whole MiB) so that the
  // file needs at most 10000 parts. An explicit size must lie in S3's
  // 5 MiB..5 GiB and give at most 10000 parts (else an error before anything
  // is sent). The last part may be smaller. A file of at most one part's
  // size goes up as a single PutObject instead.
  uint64_t part_size = 0;
  // Parts in flight at once (>= 1). Each holds a 1 MiB hashing buffer only:
  // parts stream from the file (FileBody), they are never loaded whole.
  int parallel = 8;
  // Bytes sent, as deltas; called from worker threads, possibly at the same
  // time (must be thread-safe; Progress::advance is). The sum reaches the
  // file size on success: parts found already uploaded on resume and an
  // object found already present count as sent. A retried part never makes
  // the sum exceed its size.
  std::function<void(uint64_t bytes)> progress;
  // Called once, right after CreateMultipartUpload and before any part is
  // sent, with the new upload id, so the caller can record it (YAML
  // `operations`, then checkpoint) for a resume after a kill. An error from
  // it aborts the new upload (nobody could resume it) and is returned.
  // Not called for single-PUT files, nor when resuming an existing upload.
  std::function<Status(const std::string& upload_id)> on_started;
  // Resume this multipart upload (from a previous run's on_started): list
  // its parts (ListParts, all pages) and send only the parts whose size or
  // ETag (the MD5 S3 computed; with SSE-KMS it is not an MD5 and every part
  // is re-sent) differs from the local part. If S3 no longer knows the id
  // (NoSuchUpload: completed, aborted, or expired by a lifecycle rule) a new
  // upload is started, and on_started is called for it. When the id is not
  // needed after all (the object is already present, or the file now fits
  // one PutObject) it is aborted, so it does not linger.
  std::string resume_upload_id;
  // Lowercase hex SHA-256 of the whole file, if the caller knows it (the
  // `checksum` step). Stored as user metadata x-amz-meta-sha256, and enables
  // the skip below.
  std::string sha256;
  // With sha256 set: HEAD the destination first, and when an object of the
  // same size carries the same x-amz-meta-sha256, send nothing and return
  // it (S3UploadResult::already_present). A 403 on that HEAD (a policy
  // allowing PutObject only) just means "upload". --force sets this false.
  bool skip_if_present = true;
  // Object tags (x-amz-tagging) and user metadata (x-amz-meta-NAME; names
  // are sent lowercased; "sha256" is set from the field above).
  std::map<std::string, std::string> tags;
  std::map<std::string, std::string> metadata;
  std::string content_type;  // "" : none (S3 stores binary/octet-stream)
};

struct S3UploadResult {
  S3Object object;               // bucket, key, etag, size, version_id
  bool already_present = false;  // the HEAD check matched: nothing was sent
  bool multipart = false;
  std::string upload_id;         // the multipart upload completed ("" for a single PUT)
  uint32_t parts_total = 0;      // 0 for a single PUT
  uint32_t parts_sent = 0;       // UploadPart requests that succeeded
  uint32_t parts_reused = 0;     // found on S3 with matching size and MD5 (resume)
};

// Uploads the regular file PATH to DST (an object URL, not a prefix) in
// REGION (the bucket's region: see s3_bucket_region). Steps:
//   1. validate (file readable, part size, parallel) — nothing sent yet;
//   2. the skip check (sha256 + skip_if_present);
//   3. size <= part size: one PutObject with Content-MD5;
//      else CreateMultipartUpload (or ListParts of resume_upload_id), the
//      parts in parallel from one shared descriptor, each hashed (MD5 and
//      SHA-256, one pread pass in 1 MiB chunks) and then streamed, and
//      CompleteMultipartUpload with the part list (a 200 carrying an <Error>
//      document, which S3 may send, is an error too).
// On failure after CreateMultipartUpload the upload is left in place so a
// re-run can resume it (the caller recorded its id); s3_abort_upload cleans
// it up (rollback). The file must not change during the upload.
Result<S3UploadResult> s3_upload_file(AwsClient& client, const std::string& region,
                                      const S3Url& dst, const std::string& path,
                                      const S3UploadOptions& options);

// ---------------------------------------------------------------------------
// Multipart uploads in progress

struct S3MultipartUpload {
  std::string key;
  std::string upload_id;
  std::string initiated;  // ISO-8601 as S3 gives it ("2025-05-01T12:00:00.000Z")
};

// ListMultipartUploads of BUCKET under PREFIX ("" : all), every page.
Result<std::vector<S3MultipartUpload>> s3_list_uploads(AwsClient& client, const std::string& region,
                                                       const std::string& bucket,
                                                       const std::string& prefix = "");

// AbortMultipartUpload. An id S3 no longer knows (NoSuchUpload, 404) counts
// as aborted: rollback and cleanup must be re-runnable.
Status s3_abort_upload(AwsClient& client, const std::string& region, const S3Url& url,
                       const std::string& upload_id);

// ---------------------------------------------------------------------------
// Buckets

// CreateBucket in REGION (with a LocationConstraint outside us-east-1). A
// bucket we already own (BucketAlreadyOwnedByYou) is success. For tests and
// demos; the upload step never creates buckets.
Status s3_create_bucket(AwsClient& client, const std::string& region, const std::string& bucket);

// The region BUCKET lives in, so uploads go to the right endpoint: the
// x-amz-bucket-region header of HEAD bucket (sent to HINT_REGION, S3 answers
// with it even on a 301 or 403), else GetBucketLocation ("" or null means
// us-east-1, "EU" eu-west-1). Errors: "S3 HeadBucket b: HTTP 404
// NoSuchBucket: the bucket does not exist (request id ..)" (code NoSuchBucket).
Result<std::string> s3_bucket_region(AwsClient& client, const std::string& bucket,
                                     const std::string& hint_region = "us-east-1");

}  // namespace ch
