// The single calls of an S3 multipart upload, and the part layout, below
// s3_upload_file (s3.h). Exposed for s3_upload_file's driver and for tests
// that need to build a half-finished upload (send parts 1..3, then resume).
//
// S3 limits (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html):
// part numbers 1..10000; every part but the last 5 MiB..5 GiB; the last part
// may be smaller. A part's ETag is the hex MD5 of its bytes (unless the
// bucket encrypts with SSE-KMS/SSE-C), which is what makes a resume able to
// tell a good part from a torn one without downloading it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/result.h"
#include "clouds/aws/aws_client.h"
#include "clouds/aws/s3.h"

namespace ch {

constexpr uint64_t kS3MinPartSize = 5ull << 20;     // 5 MiB
constexpr uint64_t kS3MaxPartSize = 5ull << 30;     // 5 GiB
constexpr uint64_t kS3DefaultPartSize = 16ull << 20;
constexpr uint32_t kS3MaxParts = 10000;

// How FILE_SIZE bytes split into parts.
struct S3PartLayout {
  uint64_t part_size = 0;
  uint32_t count = 0;  // 0 for an empty file
  uint64_t offset(uint32_t number) const { return uint64_t{number - 1} * part_size; }  // 1-based
  uint64_t length(uint32_t number, uint64_t file_size) const;
};

// REQUESTED 0 picks the automatic size (s3.h S3UploadOptions::part_size).
// Errors: "part size 1048576 is outside S3's 5 MiB..5 GiB",
// "part size 5242880 splits 60 GiB into 12288 parts; S3 allows 10000".
Result<S3PartLayout> s3_part_layout(uint64_t file_size, uint64_t requested);

// The MD5 and SHA-256 of a byte range of a file, from one pread pass in
// 1 MiB chunks (the only copy of the data ever held in memory).
struct RangeDigests {
  std::string md5_hex;
  std::string md5_base64;  // for Content-MD5
  std::string sha256_hex;  // the signed payload hash
  std::string sha256_base64;  // for x-amz-checksum-sha256
};
Result<RangeDigests> digest_file_range(const File& file, uint64_t offset, uint64_t length);

// One part as S3 lists it or as UploadPart returned it.
struct S3Part {
  uint32_t number = 0;
  uint64_t size = 0;
  std::string etag;  // without quotes
  // Base64 SHA-256 that S3 acknowledged for the part (x-amz-checksum-sha256
  // of UploadPart's answer, ChecksumSHA256 in ListParts); "" when none.
  // CompleteMultipartUpload repeats it, as S3 requires for an upload made
  // with a checksum algorithm.
  std::string checksum_sha256;
};

// CreateMultipartUpload of URL; returns the upload id. OPTIONS supplies
// content type, tags and metadata (x-amz-meta-sha256 from options.sha256).
// The upload is made with x-amz-checksum-algorithm SHA256: every part then
// carries its SHA-256 (s3_upload_part with part_checksum), which S3 checks
// and combines into the object's composite checksum (rather than reading
// the whole object again for its default full-object CRC).
Result<std::string> s3_create_multipart_upload(AwsClient& client, const std::string& region,
                                               const S3Url& url, const S3UploadOptions& options);

// UploadPart NUMBER: LENGTH bytes at OFFSET of FILE, streamed, with
// Content-MD5 and the payload SHA-256 from DIGESTS (computed by the caller
// with digest_file_range); with PART_CHECKSUM also x-amz-checksum-sha256
// (uploads created by s3_create_multipart_upload). PROGRESS gets byte
// deltas as they are sent (per attempt: a retry starts again from 0).
Result<S3Part> s3_upload_part(AwsClient& client, const std::string& region, const S3Url& url,
                              const std::string& upload_id, uint32_t number, const File& file,
                              uint64_t offset, uint64_t length, const RangeDigests& digests,
                              const std::function<void(uint64_t)>& progress = {},
                              bool part_checksum = true);

// ListParts of an upload, every page (PAGE_SIZE parts per request: S3's
// maximum is 1000; tests use less to exercise paging). A gone upload is an
// error with code "NoSuchUpload". CHECKSUM_ALGORITHM, if given, gets the
// upload's ChecksumAlgorithm ("SHA256"; "" when S3 names none).
Result<std::vector<S3Part>> s3_list_parts(AwsClient& client, const std::string& region,
                                          const S3Url& url, const std::string& upload_id,
                                          int page_size = 1000,
                                          std::string* checksum_algorithm = nullptr);

// CompleteMultipartUpload with PARTS (ascending numbers; each with its
// checksum_sha256 when it has one). FILE_SIZE fills S3Object::size.
Result<S3Object> s3_complete_multipart_upload(AwsClient& client, const std::string& region,
                                              const S3Url& url, const std::string& upload_id,
                                              const std::vector<S3Part>& parts, uint64_t file_size);

// The headers shared by PutObject and CreateMultipartUpload: Content-Type,
// x-amz-tagging, x-amz-meta-* (sha256 from options.sha256 included).
std::vector<HttpHeader> s3_object_headers(const S3UploadOptions& options);

// Checks what s3_object_headers will send, before anything is: metadata
// names are header tokens (a-z 0-9 - _, lowercased), values and the content
// type printable US-ASCII (S3 takes nothing else in headers), at most 2 KiB
// of user metadata and 10 tags (S3's limits), sha256 64 hex digits.
Status check_s3_object_options(const S3UploadOptions& options);

// The RestCall for one object: METHOD on "/KEY" of URL's bucket; WHAT
// ("S3 PutObject") gets the URL appended for messages.
AwsClient::RestCall s3_object_call(const std::string& region, const S3Url& url, std::string method,
                                   std::string what);

// Base64 of the MD5 of BYTES: a Content-MD5 header value.
std::string content_md5(std::string_view bytes);

}  // namespace ch
