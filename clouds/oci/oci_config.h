// Where cloud: oci settings come from.
//
// Credentials, as the OCI CLI and SDKs read them: the config file
// (OCI_CLI_CONFIG_FILE, else OCI_CONFIG_FILE, else ~/.oci/config), profile
// OCI_CLI_PROFILE (default DEFAULT; keys missing from a profile come from
// [DEFAULT], as the SDKs do), keys user, fingerprint, key_file, pass_phrase,
// tenancy, region; each overridden by OCI_CLI_USER, OCI_CLI_FINGERPRINT,
// OCI_CLI_KEY_FILE, OCI_CLI_PASS_PHRASE, OCI_CLI_TENANCY, OCI_CLI_REGION.
// A key_file of "~/..." is under HOME.
//
// Endpoints: https://objectstorage.REGION.oraclecloud.com and
// https://iaas.REGION.oraclecloud.com (the oc1 realm). Overrides, most
// specific first: OCI_IAAS_ENDPOINT_<REGION> / OCI_OBJECTSTORAGE_ENDPOINT_<REGION>
// (REGION upper-cased, '-' as '_': OCI_IAAS_ENDPOINT_EU_FRANKFURT_1), then
// OCI_IAAS_ENDPOINT / OCI_OBJECTSTORAGE_ENDPOINT, where "{region}" is
// replaced by the region id. An override without "{region}" is one endpoint
// for whatever region is asked (emulators, other realms): it cannot tell
// regions apart, so publish refuses to use it for a second region.
//
// The per-image YAML:
//   storage_url: oci://BUCKET@NAMESPACE/PREFIX/   (or oci://BUCKET/PREFIX/: namespace looked up)
//   region: us-ashburn-1        # or regions: [...]; the first is home; default: the config's region
//   oci:
//     compartment_id: ocid1.compartment.oc1..   # required by import
//     launch_mode: PARAVIRTUALIZED              # NATIVE | EMULATED | PARAVIRTUALIZED
//     shapes: [VM.Standard.E4.Flex, VM.Standard.A1.Flex]
//     secure_boot: false
//     nic_attachment: PARAVIRTUALIZED           # Network.AttachmentType: VFIO | PARAVIRTUALIZED | E1000
//     operating_system: Alpine Linux
//     operating_system_version: "3.21"
//     part_size_mib: 128                        # multipart upload part size, 1..50000
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "metadata/image_metadata.h"

namespace ch {

using OciEnv = std::map<std::string, std::string>;

struct OciCredentials {
  std::string user, fingerprint, key_file, pass_phrase, tenancy, region;
  std::string source;  // "config file F, profile P" (+ " and OCI_CLI_* variables")
  std::string key_id() const { return tenancy + "/" + user + "/" + fingerprint; }
};

// Reads the config file and the variables; an error names the file, the
// profile and what is missing. Needs user, fingerprint, key_file, tenancy.
Result<OciCredentials> load_oci_credentials(const OciEnv& env);

struct OciEndpoints {
  std::string objectstorage;  // no trailing slash
  std::string iaas;
  // From an override without "{region}" (the same for any region).
  bool objectstorage_single = false, iaas_single = false;
  // The Core Services (Compute) API base: images, schemas, work requests.
  std::string core() const { return iaas + "/20160918"; }
};
OciEndpoints oci_endpoints(const std::string& region, const OciEnv& env);
// eu-frankfurt-1 -> EU_FRANKFURT_1, as in OCI_IAAS_ENDPOINT_<REGION>.
std::string oci_region_env_suffix(const std::string& region);
// An OCI region id: "us-ashburn-1", "eu-frankfurt-1", "us-gov-ashburn-1".
bool oci_region_id_valid(const std::string& region);

struct OciStorageUrl {
  std::string bucket, namespace_name, prefix;  // namespace "" : look it up
};
// oci://bucket@namespace/prefix/ or oci://bucket/prefix/.
Result<OciStorageUrl> parse_oci_storage_url(const std::string& url);

struct OciImageConfig {
  std::string name;            // displayName
  std::string compartment_id;  // "" when absent (import refuses)
  std::string home_region;     // "" : the credentials' region
  std::vector<std::string> other_regions;
  std::string launch_mode = "PARAVIRTUALIZED";
  std::string firmware = "UEFI_64";  // Compute.Firmware, from `firmware`
  bool secure_boot = false;
  std::string nic_attachment = "PARAVIRTUALIZED";
  std::string operating_system, operating_system_version;
  std::vector<std::string> shapes;
  uint64_t part_size = 128ull << 20;
  std::map<std::string, std::string> tags;  // freeformTags, from `tags`
};
// The YAML's oci mapping and the keys above; errors are bad input.
Result<OciImageConfig> read_oci_config(const ImageMetadata& meta);

}  // namespace ch
