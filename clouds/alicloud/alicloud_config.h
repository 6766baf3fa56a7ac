// cloud: alicloud — what the steps read from the per-image YAML, checked
// before any request, and the session every step opens.
//
//   storage_url: oss://bucket/prefix/      # the object is PREFIX + basename(image_file)
//   regions: [cn-hangzhou, eu-central-1]   # the first is home (import); publish copies to the rest
//   image_format: qcow2                    # or raw (ImportImage takes both, and VHD)
//   arch: x86_64 | aarch64, firmware: uefi | bios, public, description, tags
//   alicloud:
//     region: cn-hangzhou                  # home region; default the first of `regions`
//     platform: Others Linux               # ImportImage Platform
//     nvme: true                           # Features.NvmeSupport supported/unsupported
//     delete_object_after_import: false
//     part_size: 16777216                  # multipart part size (OSS: 100 KiB..5 GiB, 10000 parts)
//     oss_signature: v4                    # or v1
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "clouds/alicloud/alicloud_client.h"
#include "metadata/image_metadata.h"

namespace ch {

struct AliConfig {
  std::string name;         // ImageName
  std::string description;
  std::string home_region;  // import region (and the bucket's)
  std::vector<std::string> regions;  // every region, home first
  std::string bucket, prefix;
  std::string architecture;  // x86_64 | arm64
  std::string boot_mode;     // UEFI | BIOS
  std::string platform = "Others Linux";
  bool nvme = true;
  bool is_public = false;
  bool delete_object_after_import = false;
  uint64_t part_size = 16ull << 20;
  OssSignature oss_signature = OssSignature::kV4;
  std::vector<std::pair<std::string, std::string>> tags;
};

// The YAML fields above; errors name the field.
Result<AliConfig> read_alicloud_config(const ImageMetadata& meta);

// "oss://bucket/prefix/": bucket and prefix ("" or ending in "/", or a full key).
Result<std::pair<std::string, std::string>> parse_oss_url(const std::string& url);

struct AliSession {
  AliEnv env;
  std::unique_ptr<HttpClient> http;
  std::unique_ptr<AliClient> client;
};
// Credentials resolved (and their source logged), endpoints read.
Result<std::unique_ptr<AliSession>> open_alicloud_session(const AliConfig& c);

// A ClientToken (ECS: at most 64 ASCII characters) derived from PARTS, so
// a repeated call of a killed run is recognised as the same request.
std::string ali_client_token(const std::vector<std::string>& parts);

// ECS image states.
struct AliImage {
  std::string id, name, status, progress, region;
};
// DescribeImages of one image id (any state), or by name (owned by us);
// nullopt when there is none.
Result<std::optional<AliImage>> describe_image(AliClient& c, const std::string& region, const std::string& id,
                                               const std::string& name = "");
// Waits until the image is Available (ok) or CreateFailed/gone (error).
Status wait_image_available(AliClient& c, const std::string& region, const std::string& id,
                            const std::function<void(const std::string& progress)>& on_progress = {});

}  // namespace ch
