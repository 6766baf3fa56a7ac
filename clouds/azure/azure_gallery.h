// cloud: azure — Compute Gallery request bodies and the create-or-adopt
// logic the import, publish and rollback steps share.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "clouds/azure/arm.h"
#include "clouds/azure/azure_config.h"
#include "metadata/image_metadata.h"

namespace ch {

// The gallery, when azure.create makes it: community-shareable
// (sharingProfile.permissions Community) when azure.community has a
// public_name_prefix, private otherwise.
nlohmann::json gallery_body(const AzureConfig& c);

// The image definition for D: identifier, Linux, Generalized, generation,
// architecture, features (DiskControllerTypes — NVMe only on Gen2 —,
// IsAcceleratedNetworkSupported, SecurityType TrustedLaunchSupported on
// Gen2 when asked), description/eula/URIs, end of life.
nlohmann::json definition_body(const AzureConfig& c, const AzureDefinition& d);

// "" when EXISTING (a GET body) has the identifier, OS type and state,
// generation and architecture of WANT; else what differs ("hyperVGeneration
// V1 (needs V2)").
std::string definition_mismatch(const nlohmann::json& existing, const nlohmann::json& want);

// Where a version's disk comes from.
struct VersionSource {
  std::string blob_url;            // the VHD page blob
  std::string storage_account_id;  // its account's resource id
  std::string managed_image_id;    // when azure.source is managed-image
};

// The publishing profile for REGIONS (each with the replica count and
// storage type of C), end of life and exclude-from-latest.
nlohmann::json publishing_profile(const AzureConfig& c, const std::vector<std::string>& regions);
nlohmann::json version_body(const AzureConfig& c, const VersionSource& src);

// Managed image name for D: `name` (+ "-gen1" for a Gen1 definition).
std::string managed_image_name(const ImageMetadata& meta, const AzureDefinition& d);

// META updates from the parallel per-definition workers are made under MU;
// CHECKPOINT takes MU itself.
using LockedCheckpoint = std::function<Status()>;

// Creates (or adopts: recorded in operations, or the same blob) the managed
// image NAME; returns its id.
Result<std::string> ensure_managed_image(ArmClient& arm, const AzureConfig& c, const AzureDefinition& d,
                                         const std::string& name, const std::string& blob_url,
                                         ImageMetadata& meta, std::mutex& mu, const LockedCheckpoint& checkpoint);

// Creates the gallery image version of D (or adopts one this image asked
// for, waiting for it; a Failed one is deleted and made again). A version
// of that number made from another source is an error.
Status ensure_version(ArmClient& arm, const AzureConfig& c, const AzureDefinition& d, const VersionSource& src,
                      ImageMetadata& meta, std::mutex& mu, const LockedCheckpoint& checkpoint);

// A region's name from its display name ("East US" → "eastus"), as Azure
// answers targetRegions; names pass unchanged.
std::string azure_region_name(std::string_view name);

// The target region names of a version (GET body), as names.
std::vector<std::string> version_regions(const nlohmann::json& version);

}  // namespace ch
