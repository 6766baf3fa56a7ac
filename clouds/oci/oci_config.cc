#include "clouds/oci/oci_config.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <regex>
#include <sstream>

namespace ch {

namespace {

std::string trim(std::string s) {
  size_t a = s.find_first_not_of(" \t\r");
  size_t b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::string env_get(const OciEnv& env, const std::string& name) {
  auto it = env.find(name);
  return it == env.end() ? "" : it->second;
}

std::string expand_home(const std::string& path, const OciEnv& env) {
  if (path == "~" || path.starts_with("~/")) return env_get(env, "HOME") + path.substr(1);
  return path;
}

using IniSections = std::map<std::string, std::map<std::string, std::string>>;

// The OCI config file: INI sections, "key=value" lines, "#"/";" comments.
Result<IniSections> read_ini(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{"cannot read the OCI config file " + path};
  IniSections out;
  std::string line, section;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = trim(line.substr(1, line.size() - 2));
      out[section];
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos || section.empty()) continue;
    out[section][trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  return out;
}

const MetaValue* oci_map(const ImageMetadata& meta) {
  const MetaValue* v = meta.get("oci");
  return v && v->is_map() ? v : nullptr;
}

std::string text(const MetaValue* m, std::string_view key) {
  const MetaValue* v = m ? m->find(key) : nullptr;
  return v && v->is_scalar() && !v->is_null() ? v->scalar() : "";
}

bool one_of(const std::string& v, std::initializer_list<std::string_view> allowed) {
  return std::find(allowed.begin(), allowed.end(), v) != allowed.end();
}

}  // namespace

Result<OciCredentials> load_oci_credentials(const OciEnv& env) {
  std::string file = env_get(env, "OCI_CLI_CONFIG_FILE");
  if (file.empty()) file = env_get(env, "OCI_CONFIG_FILE");
  if (file.empty()) file = "~/.oci/config";
  file = expand_home(file, env);
  std::string profile = env_get(env, "OCI_CLI_PROFILE");
  if (profile.empty()) profile = "DEFAULT";

  OciCredentials c;
  static const std::pair<const char*, const char*> kVars[] = {
      {"user", "OCI_CLI_USER"},         {"fingerprint", "OCI_CLI_FINGERPRINT"}, {"key_file", "OCI_CLI_KEY_FILE"},
      {"pass_phrase", "OCI_CLI_PASS_PHRASE"}, {"tenancy", "OCI_CLI_TENANCY"}, {"region", "OCI_CLI_REGION"}};
  std::map<std::string, std::string> values;
  bool from_vars_only = !env_get(env, "OCI_CLI_USER").empty() && !env_get(env, "OCI_CLI_TENANCY").empty() &&
                        !env_get(env, "OCI_CLI_FINGERPRINT").empty() && !env_get(env, "OCI_CLI_KEY_FILE").empty();
  auto ini = read_ini(file);
  if (ini.ok()) {
    auto prof = ini->find(profile);
    if (prof == ini->end() && !from_vars_only)
      return Error{"OCI config file " + file + " has no profile [" + profile + "]"};
    auto defaults = ini->find("DEFAULT");
    if (defaults != ini->end()) values = defaults->second;
    if (prof != ini->end())
      for (const auto& [k, v] : prof->second) values[k] = v;
    c.source = "config file " + file + ", profile " + profile;
  } else if (!from_vars_only) {
    return Error{ini.message() + " (set OCI_CLI_CONFIG_FILE, or OCI_CLI_USER, OCI_CLI_TENANCY, "
                 "OCI_CLI_FINGERPRINT, OCI_CLI_KEY_FILE and OCI_CLI_REGION)"};
  }
  bool any_var = false;
  for (const auto& [key, var] : kVars) {
    std::string v = env_get(env, var);
    if (!v.empty()) {
      values[key] = v;
      any_var = true;
    }
  }
  if (any_var) c.source += c.source.empty() ? "OCI_CLI_* variables" : " and OCI_CLI_* variables";
  c.user = values["user"];
  c.fingerprint = values["fingerprint"];
  c.key_file = expand_home(values["key_file"], env);
  c.pass_phrase = values["pass_phrase"];
  c.tenancy = values["tenancy"];
  c.region = values["region"];
  for (const char* k : {"user", "fingerprint", "key_file", "tenancy"})
    if (values[k].empty()) return Error{"OCI credentials (" + c.source + ") have no " + k};
  return c;
}

std::string oci_region_env_suffix(const std::string& region) {
  std::string suffix;
  for (char ch : region) suffix += ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return suffix;
}

OciEndpoints oci_endpoints(const std::string& region, const OciEnv& env) {
  const std::string suffix = oci_region_env_suffix(region);
  OciEndpoints e;
  auto pick = [&](const std::string& var, const std::string& service, bool* single) {
    std::string v = env_get(env, var + "_" + suffix);
    if (v.empty()) {
      v = env_get(env, var);
      size_t at = v.find("{region}");
      if (at != std::string::npos) v.replace(at, 8, region);
      else if (!v.empty()) *single = true;
    }
    if (v.empty()) v = "https://" + service + "." + region + ".oraclecloud.com";
    while (!v.empty() && v.back() == '/') v.pop_back();
    return v;
  };
  e.objectstorage = pick("OCI_OBJECTSTORAGE_ENDPOINT", "objectstorage", &e.objectstorage_single);
  e.iaas = pick("OCI_IAAS_ENDPOINT", "iaas", &e.iaas_single);
  return e;
}

bool oci_region_id_valid(const std::string& region) {
  // A two-letter area, one or more words, a number: ap-chuncheon-1, us-gov-ashburn-1.
  static const std::regex kRegion("[a-z]{2}(-[a-z]+)+-[0-9]{1,2}");
  return region.size() <= 40 && std::regex_match(region, kRegion);
}

Result<OciStorageUrl> parse_oci_storage_url(const std::string& url) {
  constexpr std::string_view kScheme = "oci://";
  if (!url.starts_with(kScheme))
    return Error{"storage_url '" + url + "' is not an oci://bucket@namespace/prefix/ URL"};
  std::string rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  OciStorageUrl u;
  u.prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  size_t at = authority.find('@');
  u.bucket = authority.substr(0, at);
  if (at != std::string::npos) u.namespace_name = authority.substr(at + 1);
  // Object Storage: bucket names are letters, digits, '-', '_', '.', 1-256.
  auto valid = [](const std::string& s) {
    return !s.empty() && s.size() <= 256 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '-' || c == '_' || c == '.';
    });
  };
  if (!valid(u.bucket)) return Error{"storage_url '" + url + "': bad bucket name '" + u.bucket + "'"};
  if (at != std::string::npos && !valid(u.namespace_name))
    return Error{"storage_url '" + url + "': bad namespace '" + u.namespace_name + "'"};
  if (!u.prefix.empty() && u.prefix.back() != '/') u.prefix += '/';
  return u;
}

Result<OciImageConfig> read_oci_config(const ImageMetadata& meta) {
  OciImageConfig c;
  const MetaValue* oci = oci_map(meta);
  if (meta.get("oci") && !oci) return Error{"oci must be a mapping"};
  c.name = meta.get_string("name").value_or("");
  if (c.name.empty()) return Error{"no name (the image's display name)"};
  if (c.name.size() > 255) return Error{"name is longer than the 255 characters OCI allows"};
  c.compartment_id = text(oci, "compartment_id");
  if (!c.compartment_id.empty() && !c.compartment_id.starts_with("ocid1."))
    return Error{"oci.compartment_id '" + c.compartment_id + "' is not an OCID (ocid1.compartment.oc1..)"};
  std::vector<std::string> regions = meta.get_list("regions");
  if (regions.empty()) regions = meta.get_list("region");
  if (regions.size() == 1 && regions[0] == "all")
    return Error{"regions: all is not supported for cloud oci (list the home region)"};
  std::string home = text(oci, "region");
  if (home.empty() && !regions.empty()) home = regions[0];
  c.home_region = home;
  for (const std::string& r : regions)
    if (r != home && std::find(c.other_regions.begin(), c.other_regions.end(), r) == c.other_regions.end())
      c.other_regions.push_back(r);

  std::string lm = text(oci, "launch_mode");
  if (!lm.empty()) {
    std::transform(lm.begin(), lm.end(), lm.begin(), [](unsigned char ch) { return std::toupper(ch); });
    if (!one_of(lm, {"NATIVE", "EMULATED", "PARAVIRTUALIZED"}))
      return Error{"oci.launch_mode must be NATIVE, EMULATED or PARAVIRTUALIZED (got '" + lm + "')"};
    c.launch_mode = lm;
  }
  std::string fw = meta.get_string("firmware").value_or("uefi");
  if (fw == "uefi") c.firmware = "UEFI_64";
  else if (fw == "bios") c.firmware = "BIOS";
  else return Error{"firmware must be uefi or bios (got '" + fw + "')"};
  std::string sb = text(oci, "secure_boot");
  if (!sb.empty()) {
    if (sb == "true" || sb == "yes") c.secure_boot = true;
    else if (sb != "false" && sb != "no") return Error{"oci.secure_boot must be true or false (got '" + sb + "')"};
  }
  if (c.secure_boot && c.firmware != "UEFI_64") return Error{"oci.secure_boot needs firmware: uefi"};
  std::string nic = text(oci, "nic_attachment");
  if (!nic.empty()) {
    if (!one_of(nic, {"VFIO", "PARAVIRTUALIZED", "E1000"}))
      return Error{"oci.nic_attachment must be VFIO, PARAVIRTUALIZED or E1000 (got '" + nic + "')"};
    c.nic_attachment = nic;
  }
  c.operating_system = text(oci, "operating_system");
  c.operating_system_version = text(oci, "operating_system_version");
  const MetaValue* shapes = oci ? oci->find("shapes") : nullptr;
  if (shapes && shapes->is_list()) {
    for (const MetaValue& s : shapes->list()) {
      if (!s.is_scalar() || s.scalar().empty()) return Error{"oci.shapes must be a list of shape names"};
      bool ok = std::all_of(s.scalar().begin(), s.scalar().end(),
                            [](unsigned char ch) { return std::isalnum(ch) || ch == '.' || ch == '-' || ch == '_'; });
      if (!ok) return Error{"oci.shapes: bad shape name '" + s.scalar() + "'"};
      c.shapes.push_back(s.scalar());
    }
  } else if (shapes && !shapes->is_null()) {
    return Error{"oci.shapes must be a list of shape names"};
  }
  std::string part = text(oci, "part_size_mib");
  if (!part.empty()) {
    char* end = nullptr;
    unsigned long long mib = std::strtoull(part.c_str(), &end, 10);
    // Object Storage: a part is at most 50 GiB.
    if (*end != '\0' || mib < 1 || mib > 51200)
      return Error{"oci.part_size_mib must be a whole number from 1 to 51200 (got '" + part + "')"};
    c.part_size = static_cast<uint64_t>(mib) << 20;
  }
  const MetaValue* tags = meta.get("tags");
  if (tags && tags->is_map())
    for (const auto& [k, v] : tags->map())
      if (v.is_scalar()) c.tags[k] = v.scalar();
  return c;
}

}  // namespace ch
