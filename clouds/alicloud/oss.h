// The OSS calls the alicloud steps make: the multipart upload
// (InitiateMultipartUpload, UploadPart, ListParts, CompleteMultipartUpload,
// AbortMultipartUpload) and HeadObject / DeleteObject, over AliClient.
//
// OSS limits (https://www.alibabacloud.com/help/en/oss/user-guide/multipart-upload):
// parts 1..10000, every part but the last 100 KiB..5 GiB. A part's ETag is
// the uppercase hex MD5 of its bytes in quotes, which lets a resume tell a
// good part from a torn one without reading it back. OSS keeps a CRC-64
// (ECMA-182 polynomial, reflected, init and final XOR all ones: CRC-64/XZ,
// what ISA-L's crc64_ecma_refl computes) of every object and part and
// returns it as x-oss-hash-crc64ecma (decimal).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/result.h"
#include "clouds/alicloud/alicloud_client.h"

namespace ch {

struct OssObject {
  std::string region, bucket, key;
  std::string url() const { return "oss://" + bucket + "/" + key; }
};

struct OssPart {
  uint32_t number = 0;
  uint64_t size = 0;
  std::string etag;  // as OSS returns it, quotes removed
};

struct OssHead {
  uint64_t size = 0;
  std::string etag;
  std::string crc64;  // x-oss-hash-crc64ecma, decimal; "" when absent
};

// CRC-64/XZ of LENGTH bytes at OFFSET of FILE, in 1 MiB preads.
Result<uint64_t> file_crc64(const File& file, uint64_t offset, uint64_t length);

Result<std::string> oss_initiate_multipart(AliClient& c, const OssObject& o);
// UploadPart NUMBER from FILE with Content-MD5 MD5_BASE64; checks that the
// ETag OSS returns is MD5_HEX.
Result<OssPart> oss_upload_part(AliClient& c, const OssObject& o, const std::string& upload_id, uint32_t number,
                                const File& file, uint64_t offset, uint64_t length, const std::string& md5_base64,
                                const std::string& md5_hex, const std::function<void(uint64_t)>& progress);
// Every part (following NextPartNumberMarker). A gone upload: code NoSuchUpload.
Result<std::vector<OssPart>> oss_list_parts(AliClient& c, const OssObject& o, const std::string& upload_id);
// Returns the object's x-oss-hash-crc64ecma.
Result<std::string> oss_complete_multipart(AliClient& c, const OssObject& o, const std::string& upload_id,
                                           const std::vector<OssPart>& parts);
Status oss_abort_multipart(AliClient& c, const OssObject& o, const std::string& upload_id);
Result<std::optional<OssHead>> oss_head(AliClient& c, const OssObject& o);
Status oss_delete(AliClient& c, const OssObject& o);

}  // namespace ch
