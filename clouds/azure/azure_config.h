// cloud: azure — what the steps read from the per-image YAML: the `azure`
// mapping plus the shared keys (name, arch, firmware, release, regions,
// public, end_of_life, tags), checked once, before any request.
//
//   azure:
//     subscription_id: S            # else AZURE_SUBSCRIPTION_ID
//     resource_group: images        # gallery, managed images, definitions
//     location: westeurope          # home region; default: first of `regions`
//     gallery: alpine_images
//     image_definition: alpine-3.21-x86_64       # the Gen2 (or only) definition
//     image_definition_gen1: alpine-3.21-x86_64-gen1   # default: <image_definition>-gen1
//     publisher: alpinelinux        # identifier; the Gen1 SKU gets "-gen1" appended
//     offer: alpine
//     sku: 3.21-x86_64
//     image_version: 3.21.1         # default: derived from release (azure_gallery_version)
//     hyper_v_generations: [V1, V2] # default: x86_64 + bios → [V1, V2]; else [V2]
//     source: blob                  # blob (version straight from the VHD) | managed-image
//     replica_count: 1
//     storage_account_type: Standard_LRS
//     exclude_from_latest: false
//     storage_resource_group: rg    # the storage account's group; default resource_group
//     create: [resource_group, storage_account, container, gallery]   # or true: all four
//     features: {disk_controller_types: "SCSI, NVMe", accelerated_networking: true,
//                trusted_launch: false}
//     community: {enable: false, public_name_prefix: alpine, publisher_uri: https://..,
//                 publisher_contact: a@b, eula: https://..}
//     description / eula / release_note_uri / privacy_statement_uri
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "metadata/image_metadata.h"

namespace ch {

// One gallery image definition this image goes into (one per Hyper-V generation).
struct AzureDefinition {
  std::string name;
  std::string generation;  // "V1" | "V2"
  std::string sku;
};

struct AzureConfig {
  std::string subscription_id;
  std::string resource_group, location, gallery;
  std::string storage_resource_group;
  std::vector<AzureDefinition> definitions;  // V2 first when present
  std::string publisher, offer;
  std::string version;                      // N.N.N
  std::string architecture;                 // "x64" | "Arm64"
  bool managed_image = false;               // source: managed-image
  int replica_count = 1;
  std::string storage_account_type = "Standard_LRS";
  bool exclude_from_latest = false;
  bool create_resource_group = false, create_storage_account = false, create_container = false,
       create_gallery = false;
  std::string disk_controller_types = "SCSI, NVMe";
  bool accelerated_networking = true;
  bool trusted_launch = false;
  bool community_enable = false;
  std::string public_name_prefix, publisher_uri, publisher_contact, community_eula;
  std::string description, eula, release_note_uri, privacy_statement_uri;
  std::vector<std::string> regions;  // target regions, location first; empty with all_regions
  bool all_regions = false;
  bool is_public = false;
  std::string end_of_life;           // "2027-06-01T00:00:00Z" or ""
  std::vector<std::pair<std::string, std::string>> tags;  // `tags` + Name
};

// Reads and checks everything the import/publish/rollback steps need.
// Errors (one line, for exit 2): "azure.gallery is missing", "azure.image_version
// '1.2' is not N.N.N", "arch 'ppc64le' is not supported on Azure (x86_64,
// aarch64)", "firmware bios is not possible for arm64 on Azure (Gen2, UEFI only)", ...
// SUBSCRIPTION_FROM_ENV fills subscription_id when the YAML has none.
Result<AzureConfig> read_azure_config(const ImageMetadata& meta, const std::string& subscription_from_env);

// What upload needs of the `azure` mapping (all optional there): whether
// to create the storage account and container, and where.
struct AzureStorageOptions {
  bool create_storage_account = false, create_container = false, create_resource_group = false;
  std::string subscription_id, resource_group, location;  // for creating the account
  // azure.upload_merge_gap: non-zero page runs at most this far apart go
  // in one Put Page (PageBlobUploadOptions::merge_gap_bytes).
  uint64_t merge_gap = 4096;
};
// Errors: a bad azure.create; creating an account without subscription,
// resource group or location.
Result<AzureStorageOptions> read_azure_storage_options(const ImageMetadata& meta,
                                                       const std::string& subscription_from_env);

// The gallery image version for RELEASE (see docs/azure.md):
//   "3.21.0"        → "3.21.0"          N.N.N as is
//   "3.21.0-r1"     → "3.21.1"          -rK: third part × 100 + K (K < 100)
//   "3.21.2-r3"     → "3.21.203"
//   "1592.4"        → "1592.4.0"        N.N  → N.N.0;  "N.N-rK" → N.N.K
//   "1592"          → "1592.0.0"
//   "9.6-20250522.1" or "9.6.20250522.1" → "9.6.2025052201"   date-index (index < 100)
//   "10-20250522.0" → "10.20250522.0"
// Each part must fit in a signed 32-bit integer. Errors name the release
// and ask for azure.image_version.
Result<std::string> azure_gallery_version(std::string_view release);

// "N.N.N" with each part 0..2147483647, no leading '+' or sign.
bool is_azure_gallery_version(std::string_view v);

}  // namespace ch
