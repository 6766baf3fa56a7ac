// What each cloud can do, as data. Shared code asks this table instead of
// testing the cloud's name: a cloud gains `upload` by filling in its entry,
// and every action, message and test follows. A null step means "not built
// yet", which the CLI reports as an error (exit 2), never a silent success.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "clouds/cloud_step.h"
#include "metadata/image_metadata.h"

namespace ch {

struct CloudCapabilities {
  std::string_view name;
  std::string_view default_format;  // image_format when the YAML gives none
  CloudStep upload = nullptr;
  CloudStep import = nullptr;
  CloudStep publish = nullptr;
  CloudStep rollback = nullptr;
};

const std::vector<CloudCapabilities>& cloud_table();
const CloudCapabilities* find_cloud(std::string_view name);
// "aws, azure, gcp, alicloud, oci, openstack, nocloud"
std::string cloud_names();

}  // namespace ch
