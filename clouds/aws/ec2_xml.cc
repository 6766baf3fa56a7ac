#include "clouds/aws/ec2_xml.h"

#include <cctype>
#include <cstdlib>

namespace ch::ec2xml {

namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

}  // namespace

std::string text(pugi::xml_node node, std::string_view name) {
  pugi::xml_node c = xml_child(node, name);
  return c ? trim(c.text().get()) : std::string();
}

bool flag(pugi::xml_node node, std::string_view name) {
  std::string v = text(node, name);
  for (char& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return v == "true";
}

std::vector<pugi::xml_node> items(pugi::xml_node node, std::string_view name) {
  return xml_children(xml_child(node, name), "item");
}

AwsTags tags(pugi::xml_node node) {
  AwsTags out;
  for (pugi::xml_node item : items(node, "tagSet")) out[text(item, "key")] = text(item, "value");
  return out;
}

void add_tag_specification(Params* params, int* n, const std::string& type, const AwsTags& tags) {
  if (tags.empty()) return;
  const std::string prefix = "TagSpecification." + std::to_string(*n) + ".";
  params->emplace_back(prefix + "ResourceType", type);
  int m = 1;
  for (const auto& [key, value] : tags) {
    const std::string tag = prefix + "Tag." + std::to_string(m++) + ".";
    params->emplace_back(tag + "Key", key);
    params->emplace_back(tag + "Value", value);
  }
  ++*n;
}

void add_filter(Params* params, int* n, const std::string& name,
                const std::vector<std::string>& values) {
  const std::string prefix = "Filter." + std::to_string(*n) + ".";
  params->emplace_back(prefix + "Name", name);
  add_list(params, prefix + "Value", values);
  ++*n;
}

void add_list(Params* params, const std::string& prefix, const std::vector<std::string>& values) {
  int m = 1;
  for (const std::string& v : values) params->emplace_back(prefix + "." + std::to_string(m++), v);
}

Status describe_pages(AwsClient& client, const std::string& region, const std::string& action,
                      const Params& params, std::string_view set_name, const std::string& what,
                      const std::function<void(pugi::xml_node item)>& each) {
  std::string token;
  for (;;) {
    Params p = params;
    if (!token.empty()) p.emplace_back("NextToken", token);
    CH_ASSIGN(body, client.ec2(region, action, p));
    pugi::xml_document doc;
    CH_TRY(parse_aws_xml(body, doc, what));
    for (pugi::xml_node item : items(xml_root(doc), set_name)) each(item);
    std::string next = text(xml_root(doc), "nextToken");
    if (next.empty() || next == token) return Status();
    token = next;
  }
}

Ec2Image image(pugi::xml_node item) {
  Ec2Image image;
  image.image_id = text(item, "imageId");
  image.name = text(item, "name");
  image.description = text(item, "description");
  image.state = text(item, "imageState");
  image.state_reason = text(xml_child(item, "stateReason"), "message");
  image.owner_id = text(item, "imageOwnerId");
  image.architecture = text(item, "architecture");
  image.creation_date = text(item, "creationDate");
  image.deprecation_time = text(item, "deprecationTime");
  image.boot_mode = text(item, "bootMode");
  image.imds_support = text(item, "imdsSupport");
  image.tpm_support = text(item, "tpmSupport");
  image.virtualization_type = text(item, "virtualizationType");
  image.root_device_name = text(item, "rootDeviceName");
  image.sriov_net_support = text(item, "sriovNetSupport");
  image.ena_support = flag(item, "enaSupport");
  image.is_public = flag(item, "isPublic");
  image.tags = tags(item);
  for (pugi::xml_node bd : items(item, "blockDeviceMapping")) {
    Ec2BlockDevice device;
    device.device_name = text(bd, "deviceName");
    pugi::xml_node ebs = xml_child(bd, "ebs");
    device.snapshot_id = text(ebs, "snapshotId");
    device.volume_size_gib = static_cast<uint32_t>(std::strtoul(text(ebs, "volumeSize").c_str(), nullptr, 10));
    device.volume_type = text(ebs, "volumeType");
    device.delete_on_termination = flag(ebs, "deleteOnTermination");
    image.block_devices.push_back(std::move(device));
  }
  return image;
}

Ec2Snapshot snapshot(pugi::xml_node item) {
  Ec2Snapshot s;
  s.snapshot_id = text(item, "snapshotId");
  s.state = text(item, "status");
  s.state_message = text(item, "statusMessage");
  s.progress = text(item, "progress");
  s.volume_size_gib = static_cast<uint32_t>(std::strtoul(text(item, "volumeSize").c_str(), nullptr, 10));
  s.description = text(item, "description");
  s.owner_id = text(item, "ownerId");
  s.start_time = text(item, "startTime");
  s.encrypted = flag(item, "encrypted");
  s.tags = tags(item);
  return s;
}

Ec2ImportSnapshotTask import_task(pugi::xml_node item) {
  Ec2ImportSnapshotTask t;
  t.task_id = text(item, "importTaskId");
  t.description = text(item, "description");
  pugi::xml_node d = xml_child(item, "snapshotTaskDetail");
  t.status = text(d, "status");
  t.status_message = text(d, "statusMessage");
  t.progress = text(d, "progress");
  t.snapshot_id = text(d, "snapshotId");
  t.disk_image_size = static_cast<uint64_t>(std::strtod(text(d, "diskImageSize").c_str(), nullptr));
  t.format = text(d, "format");
  return t;
}

Params register_image_params(const Ec2RegisterImageRequest& r) {
  Params p;
  p.emplace_back("Name", r.name);
  if (!r.description.empty()) p.emplace_back("Description", r.description);
  p.emplace_back("Architecture", r.architecture);
  p.emplace_back("RootDeviceName", r.root_device_name);
  p.emplace_back("BlockDeviceMapping.1.DeviceName", r.root_device_name);
  p.emplace_back("BlockDeviceMapping.1.Ebs.SnapshotId", r.snapshot_id);
  if (!r.volume_type.empty()) p.emplace_back("BlockDeviceMapping.1.Ebs.VolumeType", r.volume_type);
  if (r.volume_size_gib > 0)
    p.emplace_back("BlockDeviceMapping.1.Ebs.VolumeSize", std::to_string(r.volume_size_gib));
  p.emplace_back("BlockDeviceMapping.1.Ebs.DeleteOnTermination",
                 r.delete_on_termination ? "true" : "false");
  p.emplace_back("VirtualizationType", "hvm");
  if (r.ena_support) p.emplace_back("EnaSupport", "true");
  if (!r.sriov_net_support.empty()) p.emplace_back("SriovNetSupport", r.sriov_net_support);
  if (!r.boot_mode.empty()) p.emplace_back("BootMode", r.boot_mode);
  if (!r.imds_support.empty()) p.emplace_back("ImdsSupport", r.imds_support);
  if (!r.tpm_support.empty()) p.emplace_back("TpmSupport", r.tpm_support);
  if (!r.uefi_data.empty()) p.emplace_back("UefiData", r.uefi_data);
  int n = 1;
  add_tag_specification(&p, &n, "image", r.image_tags);
  add_tag_specification(&p, &n, "snapshot", r.snapshot_tags);
  return p;
}

}  // namespace ch::ec2xml
