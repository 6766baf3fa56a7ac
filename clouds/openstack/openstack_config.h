// cloud: openstack — what the steps read from the per-image YAML, checked
// once, before any request:
//
//   name: alpine-3.21.0-x86_64-uefi      # the Glance image name
//   arch: x86_64                         # x86_64 | aarch64 → architecture
//   firmware: uefi                       # → hw_firmware_type (+ hw_machine_type q35 on x86_64)
//   image_file / image_format            # qcow2 (default) | vmdk (streamOptimized) | raw
//   virtual_size                         # → min_disk in GiB (else read from the file)
//   regions: [RegionOne, RegionTwo]      # or `all` (every region with an image endpoint);
//                                        # default: OS_REGION_NAME / the cloud's region_name
//   public: true                         # → visibility public, unless openstack.visibility
//   description, release / version
//   openstack:
//     visibility: community              # public | community | shared | private
//     members: [PROJECT_ID, ...]         # with visibility shared
//     os_distro: alpine                  # default: the first word of `name`
//     os_version: '3.21'                 # default: release (or version)
//     disk_bus: virtio                   # hw_disk_bus (default virtio)
//     vif_multiqueue: true               # hw_vif_multiqueue_enabled (default true)
//     qemu_guest_agent: false            # hw_qemu_guest_agent yes|no (default: not set)
//     min_disk: 2                        # GiB; default from virtual_size
//     min_ram: 0                         # MiB
//     protected: false
//     properties: {hw_rng_model: virtio} # any other image properties (win over the above)
//     tags: [alpine, cloud]              # Glance image tags (converged: missing added, others removed)
//     import_method: upload              # upload (PUT .../file, default) | glance-direct (stage,
//                                        # then import) | web-download (Glance fetches source_url)
//     source_url: https://.../x.qcow2    # web-download only: the same bytes as image_file
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "metadata/image_metadata.h"

namespace ch {

struct OpenStackImageConfig {
  std::string name;
  std::string path;         // image_file, resolved
  std::string disk_format;  // qcow2 | vmdk | raw
  uint64_t file_size = 0;
  uint64_t virtual_size = 0;
  std::vector<std::string> regions;  // empty: from the credentials' region; {"all"}: the catalog's
  std::string visibility;            // the publish target
  std::vector<std::string> members;
  uint64_t min_disk_gib = 0, min_ram_mib = 0;
  bool is_protected = false;
  std::vector<std::pair<std::string, std::string>> properties;  // in order, later wins
  std::vector<std::string> tags;
  std::string import_method = "upload";  // upload | glance-direct | web-download
  std::string source_url;                // web-download
};

// Errors (exit 2) name the key: "openstack.visibility must be public,
// community, shared or private (got 'x')".
Result<OpenStackImageConfig> read_openstack_config(const ImageMetadata& meta);

// The POST /v2/images body for C with the client-chosen ID.
nlohmann::json glance_create_body(const OpenStackImageConfig& c, const std::string& id);

}  // namespace ch
