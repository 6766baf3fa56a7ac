#include "clouds/openstack/openstack_config.h"

#include <algorithm>
#include <cctype>

#include "clouds/cloud_step.h"
#include "formats/image_reader.h"

namespace ch {

namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;

const MetaValue* child(const MetaValue* m, std::string_view key) { return m ? m->find(key) : nullptr; }

Result<std::string> text(const MetaValue* os, std::string_view key) {
  const MetaValue* v = child(os, key);
  if (!v || v->is_null()) return std::string();
  if (!v->is_scalar()) return Error{"openstack." + std::string(key) + " must be a single value"};
  return v->scalar();
}

Result<std::optional<bool>> boolean(const MetaValue* os, std::string_view key) {
  CH_ASSIGN(t, text(os, key));
  if (t.empty()) return std::optional<bool>();
  std::string l = t;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  if (l == "true" || l == "yes" || l == "on") return std::optional<bool>(true);
  if (l == "false" || l == "no" || l == "off") return std::optional<bool>(false);
  return Error{"openstack." + std::string(key) + " must be true or false (got '" + t + "')"};
}

Result<uint64_t> number(const MetaValue* os, std::string_view key, uint64_t dflt) {
  CH_ASSIGN(t, text(os, key));
  if (t.empty()) return dflt;
  if (t.find_first_not_of("0123456789") != std::string::npos || t.size() > 12)
    return Error{"openstack." + std::string(key) + " must be a whole number (got '" + t + "')"};
  return static_cast<uint64_t>(std::stoull(t));
}

void set_prop(std::vector<std::pair<std::string, std::string>>& props, const std::string& k, std::string v) {
  for (auto& [pk, pv] : props)
    if (pk == k) {
      pv = std::move(v);
      return;
    }
  props.emplace_back(k, std::move(v));
}

}  // namespace

Result<OpenStackImageConfig> read_openstack_config(const ImageMetadata& meta) {
  OpenStackImageConfig c;
  const MetaValue* os = meta.get("openstack");
  if (os && !os->is_null() && !os->is_map()) return Error{"openstack must be a mapping"};
  auto name = meta.get_string("name");
  if (!name) return Error{"import needs name (missing)"};
  c.name = *name;
  CH_ASSIGN(file, image_file_of(meta));
  c.path = file.path;
  c.file_size = file.size;
  c.disk_format = meta.get_string("image_format").value_or("qcow2");
  if (c.disk_format != "qcow2" && c.disk_format != "vmdk" && c.disk_format != "raw")
    return Error{"Glance takes image_format qcow2, vmdk or raw here, not '" + c.disk_format +
                 "' (convert with image_format: qcow2)"};

  std::string arch = meta.get_string("arch").value_or("x86_64");
  if (arch == "arm64") arch = "aarch64";
  if (arch != "x86_64" && arch != "aarch64") return Error{"arch must be x86_64 or aarch64 (got '" + arch + "')"};
  std::string firmware = meta.get_string("firmware").value_or("");
  if (!firmware.empty() && firmware != "uefi" && firmware != "bios")
    return Error{"firmware must be uefi or bios (got '" + firmware + "')"};

  if (auto vs = meta.get_string("virtual_size"); vs && vs->find_first_not_of("0123456789") == std::string::npos) {
    c.virtual_size = std::stoull(*vs);
  } else {
    auto reader = open_image(c.path, c.disk_format);
    if (!reader.ok()) return reader.error();
    c.virtual_size = (*reader)->virtual_size();
  }

  std::vector<std::string> regions = meta.get_list("regions");
  if (regions.empty()) regions = meta.get_list("region");
  for (const std::string& r : regions)
    if (std::find(c.regions.begin(), c.regions.end(), r) == c.regions.end()) c.regions.push_back(r);
  if (std::find(c.regions.begin(), c.regions.end(), "all") != c.regions.end() && c.regions.size() > 1)
    return Error{"regions: 'all' cannot be combined with named regions"};

  CH_ASSIGN(public_flag, meta.get_bool("public"));
  CH_ASSIGN(visibility, text(os, "visibility"));
  c.visibility = !visibility.empty() ? visibility : public_flag.value_or(false) ? "public" : "private";
  if (c.visibility != "public" && c.visibility != "community" && c.visibility != "shared" && c.visibility != "private")
    return Error{"openstack.visibility must be public, community, shared or private (got '" + c.visibility + "')"};
  if (const MetaValue* m = child(os, "members"); m && !m->is_null()) {
    if (m->is_scalar()) {
      c.members.push_back(m->scalar());
    } else if (m->is_list()) {
      for (const MetaValue& i : m->list()) {
        if (!i.is_scalar()) return Error{"openstack.members must be a list of project ids"};
        c.members.push_back(i.scalar());
      }
    } else {
      return Error{"openstack.members must be a list of project ids"};
    }
  }
  if (!c.members.empty() && c.visibility != "shared")
    return Error{"openstack.members needs openstack.visibility: shared (got " + c.visibility + ")"};

  if (const MetaValue* t = child(os, "tags"); t && !t->is_null()) {
    std::vector<std::string> tags;
    if (t->is_scalar()) tags.push_back(t->scalar());
    else if (t->is_list())
      for (const MetaValue& i : t->list()) {
        if (!i.is_scalar() || i.is_null()) return Error{"openstack.tags must be a list of strings"};
        tags.push_back(i.scalar());
      }
    else return Error{"openstack.tags must be a list of strings"};
    for (const std::string& tag : tags) {
      // Glance's schema: 1..255 characters; a "/" would not survive the
      // /v2/images/ID/tags/TAG route.
      if (tag.empty() || tag.size() > 255 || tag.find('/') != std::string::npos)
        return Error{"openstack.tags: '" + tag + "' must be 1 to 255 characters without '/'"};
      if (std::find(c.tags.begin(), c.tags.end(), tag) == c.tags.end()) c.tags.push_back(tag);
    }
  }
  CH_ASSIGN(method, text(os, "import_method"));
  if (!method.empty()) c.import_method = method;
  if (c.import_method != "upload" && c.import_method != "glance-direct" && c.import_method != "web-download")
    return Error{"openstack.import_method must be upload, glance-direct or web-download (got '" + c.import_method + "')"};
  CH_ASSIGN(source, text(os, "source_url"));
  c.source_url = source;
  if (c.import_method == "web-download" &&
      c.source_url.rfind("http://", 0) != 0 && c.source_url.rfind("https://", 0) != 0)
    return Error{"openstack.import_method web-download needs openstack.source_url, an http(s) URL Glance can fetch" +
                 std::string(c.source_url.empty() ? "" : " (got '" + c.source_url + "')")};
  if (c.import_method != "web-download" && !c.source_url.empty())
    return Error{"openstack.source_url is only used with openstack.import_method: web-download"};

  CH_ASSIGN(min_disk, number(os, "min_disk", (c.virtual_size + kGiB - 1) / kGiB));
  c.min_disk_gib = min_disk;
  CH_ASSIGN(min_ram, number(os, "min_ram", 0));
  c.min_ram_mib = min_ram;
  CH_ASSIGN(prot, boolean(os, "protected"));
  c.is_protected = prot.value_or(false);

  // Properties Nova's libvirt driver reads (glance metadefs
  // compute-libvirt-image, compute-host-capabilities, compute-guest-agent).
  set_prop(c.properties, "architecture", arch);
  if (!firmware.empty()) set_prop(c.properties, "hw_firmware_type", firmware);
  if (firmware == "uefi" && arch == "x86_64") set_prop(c.properties, "hw_machine_type", "q35");
  CH_ASSIGN(bus, text(os, "disk_bus"));
  set_prop(c.properties, "hw_disk_bus", bus.empty() ? "virtio" : bus);
  CH_ASSIGN(mq, boolean(os, "vif_multiqueue"));
  set_prop(c.properties, "hw_vif_multiqueue_enabled", mq.value_or(true) ? "true" : "false");
  CH_ASSIGN(qga, boolean(os, "qemu_guest_agent"));
  if (qga) set_prop(c.properties, "hw_qemu_guest_agent", *qga ? "yes" : "no");
  CH_ASSIGN(distro, text(os, "os_distro"));
  if (distro.empty()) {
    distro = c.name.substr(0, c.name.find_first_of("-_ "));
    std::transform(distro.begin(), distro.end(), distro.begin(), [](unsigned char ch) { return std::tolower(ch); });
  }
  if (!distro.empty()) set_prop(c.properties, "os_distro", distro);
  CH_ASSIGN(version, text(os, "os_version"));
  if (version.empty()) version = meta.get_string("release").value_or(meta.get_string("version").value_or(""));
  if (!version.empty()) set_prop(c.properties, "os_version", version);
  if (c.disk_format == "vmdk") set_prop(c.properties, "vmware_disktype", "streamOptimized");
  if (auto d = meta.get_string("description")) set_prop(c.properties, "description", *d);
  if (const MetaValue* props = child(os, "properties"); props && !props->is_null()) {
    if (!props->is_map()) return Error{"openstack.properties must be a mapping of property: value"};
    for (const auto& [k, v] : props->map()) {
      if (!v.is_scalar() || v.is_null()) return Error{"openstack.properties." + k + " must be a single value"};
      // Glance owns these names; its API refuses them as properties.
      static const char* kReserved[] = {"id", "name", "status", "visibility", "disk_format", "container_format",
                                        "min_disk", "min_ram", "protected", "owner", "size", "virtual_size",
                                        "checksum", "os_hash_algo", "os_hash_value", "tags", "created_at",
                                        "updated_at", "file", "self", "schema", "locations", "direct_url"};
      for (const char* r : kReserved)
        if (k == r) return Error{"openstack.properties." + k + " is a Glance image field, not a property"};
      if (k.rfind("os_glance", 0) == 0) return Error{"openstack.properties." + k + ": os_glance* names are Glance's own"};
      set_prop(c.properties, k, v.scalar());
    }
  }
  return c;
}

nlohmann::json glance_create_body(const OpenStackImageConfig& c, const std::string& id) {
  nlohmann::json b = {{"id", id},
                      {"name", c.name},
                      {"disk_format", c.disk_format},
                      {"container_format", "bare"},
                      {"visibility", "private"},
                      {"min_disk", c.min_disk_gib},
                      {"min_ram", c.min_ram_mib},
                      {"protected", c.is_protected}};
  if (!c.tags.empty()) b["tags"] = c.tags;
  for (const auto& [k, v] : c.properties) b[k] = v;
  return b;
}

}  // namespace ch
