#include "helper/cloud_table.h"

#include "clouds/aws/aws_steps.h"
#include "clouds/azure/azure_steps.h"
#include "clouds/gcp/gcp_steps.h"
#include "clouds/openstack/openstack_steps.h"
#include "clouds/alicloud/alicloud_steps.h"
#include "clouds/oci/oci_steps.h"
#include "clouds/nocloud/nocloud_steps.h"

namespace ch {

const std::vector<CloudCapabilities>& cloud_table() {
  // Default formats are what each cloud's import accepts most directly:
  // EC2 snapshot import/EBS direct take raw bytes, Azure only fixed VHD,
  // GCE a gzipped tar holding disk.raw, the rest qcow2.
  static const std::vector<CloudCapabilities> table = {
      {"aws", "raw", aws_upload, aws_import, aws_publish, aws_rollback},
      {"azure", "vhd", azure_upload, azure_import, azure_publish, azure_rollback},
      {"gcp", "gce-tar", gcp_upload, gcp_import, gcp_publish, gcp_rollback},
      {"alicloud", "qcow2", alicloud_upload, alicloud_import, alicloud_publish, alicloud_rollback},
      {"oci", "qcow2", oci_upload, oci_import, oci_publish, oci_rollback},
      {"openstack", "qcow2", openstack_upload, openstack_import, openstack_publish, openstack_rollback},
      {"nocloud", "qcow2", nocloud_upload, nocloud_import, nocloud_publish, nocloud_rollback},
  };
  return table;
}

const CloudCapabilities* find_cloud(std::string_view name) {
  for (const CloudCapabilities& c : cloud_table())
    if (c.name == name) return &c;
  return nullptr;
}

std::string cloud_names() {
  std::string s;
  for (const CloudCapabilities& c : cloud_table()) {
    if (!s.empty()) s += ", ";
    s += c.name;
  }
  return s;
}

}  // namespace ch
