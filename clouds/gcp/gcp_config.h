// cloud: gcp — the YAML mapping of an image to a Compute Engine image
// (https://cloud.google.com/compute/docs/reference/rest/v1/images), checked
// before any request:
//
//   gcp:
//     project: my-project            # else GOOGLE_CLOUD_PROJECT, CLOUDSDK_CORE_PROJECT,
//                                    # the credentials' project_id, the metadata server
//     image_name: alpine-3-21-0      # default: `name` made valid (see gcp_image_name)
//     family: alpine-3-21
//     labels: {team: images}         # merged over `tags` (both made valid label text)
//     guest_os_features: [UEFI_COMPATIBLE, GVNIC]   # replaces the per-arch default
//     licenses: [projects/p/global/licenses/l]
//     storage_locations: [eu]
//     image_users: [group:devs@example.com]         # imageUser role, besides `public`
//     shielded_instance_initial_state: {pk: pk.pem, keks: [kek.der], dbs: [db.pem], dbxs: [dbx.bin]}
//     obsolete_on: 2027-06-01        # deprecation timestamps beside end_of_life
//     delete_on: 2027-12-01
//     upload_chunk_size: 16777216    # bytes per resumable PUT, a multiple of 256 KiB
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "metadata/image_metadata.h"

namespace ch {

inline constexpr uint64_t kGcsChunkQuantum = 256 * 1024;  // GCS: chunks are multiples of 256 KiB

struct GcpConfig {
  std::string project;  // "" : from the environment or the credentials
  std::string image_name;
  std::string family;
  std::string description;
  std::string architecture;  // X86_64 | ARM64
  std::vector<std::string> guest_os_features;
  std::map<std::string, std::string> labels;
  std::vector<std::string> licenses;
  std::vector<std::string> storage_locations;
  std::vector<std::string> image_users;  // IAM members
  bool is_public = false;
  // shieldedInstanceInitialState, ready for the request ({} when not given).
  nlohmann::json shielded = nlohmann::json::object();
  std::string deprecated_on, obsolete_on, delete_on;  // RFC 3339, "" when not set
  uint64_t chunk_size = 16 << 20;
};

// Reads and checks the mapping above and the top-level keys it uses (name,
// arch, firmware, description, tags, public, end_of_life). ENV_PROJECT is
// the environment's project. Errors name the key: "gcp.guest_os_features:
// unknown feature 'FOO' (UEFI_COMPATIBLE, ...)".
Result<GcpConfig> read_gcp_config(const ImageMetadata& meta, const std::string& env_project);

// A valid Compute resource name from any text: lowercase, [a-z0-9-], starts
// with a letter, no trailing "-", at most 63 characters; a longer name is
// cut and gets "-" + 8 hex digits of the SHA-256 of the original, so that
// two long names differing at the end stay apart, and the same input always
// gives the same name.
std::string gcp_image_name(std::string_view text);

// A valid label key or value: lowercase, [a-z0-9_-], at most 63 characters
// (keys start with a letter; hashed as above when cut).
std::string gcp_label_text(std::string_view text, bool key);

// The default guestOsFeatures for ARCH (X86_64|ARM64) and FIRMWARE (uefi|bios).
std::vector<std::string> gcp_default_features(const std::string& architecture, const std::string& firmware);

// The images.insert body for an image whose disk is at SOURCE_URL.
nlohmann::json gcp_image_body(const GcpConfig& c, const std::string& source_url);

}  // namespace ch
