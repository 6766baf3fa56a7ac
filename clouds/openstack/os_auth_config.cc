#include "clouds/openstack/os_auth_config.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "metadata/image_metadata.h"

namespace ch {

namespace {

using Env = std::map<std::string, std::string>;

std::string get(const Env& env, std::string_view name) {
  auto it = env.find(std::string(name));
  return it == env.end() ? "" : it->second;
}

std::string first_of(const Env& env, std::initializer_list<std::string_view> names) {
  for (std::string_view n : names) {
    std::string v = get(env, n);
    if (!v.empty()) return v;
  }
  return "";
}

bool is_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot be read"};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Merges OVER into BASE key by key (mappings recursively; anything else
// replaced), as openstacksdk merges secure.yaml over clouds.yaml.
void merge(MetaValue& base, const MetaValue& over) {
  if (!base.is_map() || !over.is_map()) {
    base = over;
    return;
  }
  for (const auto& [k, v] : over.map()) {
    bool found = false;
    for (auto& [bk, bv] : base.map())
      if (bk == k) {
        merge(bv, v);
        found = true;
        break;
      }
    if (!found) base.map().emplace_back(k, v);
  }
}

std::string scalar(const MetaValue* m, std::string_view key) {
  const MetaValue* v = m ? m->find(key) : nullptr;
  return v && v->is_scalar() && !v->is_null() ? v->scalar() : "";
}

// "password", "v3password" → password; the application credential spellings
// → v3applicationcredential; "" → chosen from what is given.
Result<std::string> normalise_auth_type(std::string type, const OpenStackAuthConfig& c) {
  if (type.empty())
    return std::string(!c.app_cred_id.empty() || !c.app_cred_name.empty() ? "v3applicationcredential" : "password");
  if (type == "password" || type == "v3password") return std::string("password");
  if (type == "v3applicationcredential" || type == "applicationcredential" || type == "application_credential")
    return std::string("v3applicationcredential");
  return Error{"auth_type '" + type + "' is not supported (password, v3applicationcredential)"};
}

// What a usable configuration must have, named the way the user set it.
Status check(const OpenStackAuthConfig& c, bool from_env) {
  auto name = [&](std::string_view env_name, std::string_view yaml_name) {
    return from_env ? std::string(env_name) : "auth." + std::string(yaml_name);
  };
  auto missing = [&](std::string_view env_name, std::string_view yaml_name) {
    return Error{c.source + ": " + name(env_name, yaml_name) + " is not set"};
  };
  if (c.auth_url.empty()) return missing("OS_AUTH_URL", "auth_url");
  if (c.auth_url.rfind("http://", 0) != 0 && c.auth_url.rfind("https://", 0) != 0)
    return Error{c.source + ": " + name("OS_AUTH_URL", "auth_url") + " '" + c.auth_url + "' is not an http(s) URL"};
  if (c.auth_type == "v3applicationcredential") {
    if (c.app_cred_secret.empty())
      return missing("OS_APPLICATION_CREDENTIAL_SECRET", "application_credential_secret");
    if (c.app_cred_id.empty()) {
      if (c.app_cred_name.empty()) return missing("OS_APPLICATION_CREDENTIAL_ID", "application_credential_id");
      if (c.user_id.empty() && c.username.empty())
        return Error{c.source + ": an application credential given by name needs " + name("OS_USERNAME", "username") +
                     " or " + name("OS_USER_ID", "user_id")};
    }
    return {};
  }
  if (c.username.empty() && c.user_id.empty()) return missing("OS_USERNAME", "username");
  if (c.password.empty()) return missing("OS_PASSWORD", "password");
  if (c.project_name.empty() && c.project_id.empty()) return missing("OS_PROJECT_NAME", "project_name");
  return {};
}

}  // namespace

std::vector<std::string> clouds_yaml_paths(const Env& env, const std::string& cwd, std::string_view file_name) {
  std::vector<std::string> out;
  std::string fname(file_name);
  std::string override_var = fname == "secure.yaml" ? "OS_CLIENT_SECURE_FILE" : "OS_CLIENT_CONFIG_FILE";
  if (std::string o = get(env, override_var); !o.empty()) out.push_back(o);
  out.push_back(cwd + "/" + fname);
  if (std::string home = get(env, "HOME"); !home.empty()) out.push_back(home + "/.config/openstack/" + fname);
  out.push_back("/etc/openstack/" + fname);
  return out;
}

Result<OpenStackAuthConfig> openstack_auth_from_clouds_yaml(const std::string& clouds_text,
                                                            const std::string& clouds_path,
                                                            const std::string& secure_text,
                                                            const std::string& secure_path,
                                                            const std::string& cloud) {
  CH_ASSIGN(doc, ImageMetadata::parse(clouds_text, clouds_path));
  const MetaValue* clouds = doc.get("clouds");
  if (!clouds || !clouds->is_map()) return Error{clouds_path + ": no 'clouds' mapping"};
  const MetaValue* entry = clouds->find(cloud);
  if (!entry) {
    std::string names;
    for (const auto& [k, v] : clouds->map()) names += (names.empty() ? "" : ", ") + k;
    return Error{"OS_CLOUD=" + cloud + ": no cloud '" + cloud + "' in " + clouds_path + " (clouds: " +
                 (names.empty() ? "none" : names) + ")"};
  }
  if (!entry->is_map()) return Error{clouds_path + ": clouds." + cloud + " must be a mapping"};
  MetaValue merged = *entry;
  if (!secure_text.empty()) {
    CH_ASSIGN(sec, ImageMetadata::parse(secure_text, secure_path));
    const MetaValue* sc = sec.get("clouds");
    if (const MetaValue* se = sc ? sc->find(cloud) : nullptr; se && se->is_map()) merge(merged, *se);
  }
  OpenStackAuthConfig c;
  c.source = "clouds.yaml cloud " + cloud + " (" + clouds_path + ")";
  std::string api = scalar(&merged, "identity_api_version");
  if (!api.empty() && api != "3" && api.rfind("3.", 0) != 0)
    return Error{c.source + ": identity_api_version " + api + " is not supported (Keystone v3 only)"};
  const MetaValue* auth = merged.find("auth");
  if (!auth || !auth->is_map()) return Error{c.source + ": no 'auth' mapping"};
  c.auth_url = scalar(auth, "auth_url");
  c.username = scalar(auth, "username");
  c.user_id = scalar(auth, "user_id");
  c.password = scalar(auth, "password");
  c.project_name = scalar(auth, "project_name");
  if (c.project_name.empty()) c.project_name = scalar(auth, "tenant_name");
  c.project_id = scalar(auth, "project_id");
  if (c.project_id.empty()) c.project_id = scalar(auth, "tenant_id");
  std::string domain_name = scalar(auth, "domain_name"), domain_id = scalar(auth, "domain_id");
  c.user_domain_name = scalar(auth, "user_domain_name");
  c.user_domain_id = scalar(auth, "user_domain_id");
  c.project_domain_name = scalar(auth, "project_domain_name");
  c.project_domain_id = scalar(auth, "project_domain_id");
  // openstacksdk: domain_name/domain_id fill both when the specific ones are absent.
  if (c.user_domain_name.empty() && c.user_domain_id.empty()) c.user_domain_name = domain_name, c.user_domain_id = domain_id;
  if (c.project_domain_name.empty() && c.project_domain_id.empty())
    c.project_domain_name = domain_name, c.project_domain_id = domain_id;
  c.app_cred_id = scalar(auth, "application_credential_id");
  c.app_cred_name = scalar(auth, "application_credential_name");
  c.app_cred_secret = scalar(auth, "application_credential_secret");
  CH_ASSIGN(type, normalise_auth_type(scalar(&merged, "auth_type"), c));
  c.auth_type = type;
  if (std::string r = scalar(&merged, "region_name"); !r.empty()) c.regions.push_back(r);
  if (const MetaValue* rs = merged.find("regions"); rs && rs->is_list())
    for (const MetaValue& r : rs->list()) {
      // An item is a name or {name: R, values: {...}}.
      std::string n = r.is_scalar() ? r.scalar() : scalar(&r, "name");
      if (!n.empty() && (c.regions.empty() || c.regions[0] != n)) c.regions.push_back(n);
    }
  if (std::string i = scalar(&merged, "interface"); !i.empty()) c.interface = i;
  c.cacert = scalar(&merged, "cacert");
  CH_TRY(check(c, false));
  return c;
}

Result<OpenStackAuthConfig> resolve_openstack_auth(const Env& env, const std::string& cwd) {
  std::string cloud = get(env, "OS_CLOUD");
  OpenStackAuthConfig c;
  if (!cloud.empty()) {
    std::string clouds_path;
    for (const std::string& p : clouds_yaml_paths(env, cwd, "clouds.yaml"))
      if (is_file(p)) {
        clouds_path = p;
        break;
      }
    if (clouds_path.empty()) {
      std::string tried;
      for (const std::string& p : clouds_yaml_paths(env, cwd, "clouds.yaml")) tried += (tried.empty() ? "" : ", ") + p;
      return Error{"OS_CLOUD=" + cloud + ": no clouds.yaml found (looked in " + tried + ")"};
    }
    CH_ASSIGN(text, read_text(clouds_path));
    std::string secure_path, secure_text;
    for (const std::string& p : clouds_yaml_paths(env, cwd, "secure.yaml"))
      if (is_file(p)) {
        secure_path = p;
        CH_ASSIGN(st, read_text(p));
        secure_text = st;
        break;
      }
    CH_ASSIGN(parsed, openstack_auth_from_clouds_yaml(text, clouds_path, secure_text, secure_path, cloud));
    c = parsed;
    if (c.regions.empty())
      if (std::string r = get(env, "OS_REGION_NAME"); !r.empty()) c.regions.push_back(r);
    if (std::string i = get(env, "OS_INTERFACE"); !i.empty() && c.interface == "public") c.interface = i;
    if (c.cacert.empty()) c.cacert = get(env, "OS_CACERT");
  } else {
    c.source = "OS_* variables";
    std::string api = get(env, "OS_IDENTITY_API_VERSION");
    if (!api.empty() && api != "3" && api.rfind("3.", 0) != 0)
      return Error{"OS_IDENTITY_API_VERSION=" + api + " is not supported (Keystone v3 only)"};
    c.auth_url = get(env, "OS_AUTH_URL");
    c.username = get(env, "OS_USERNAME");
    c.user_id = get(env, "OS_USER_ID");
    c.password = get(env, "OS_PASSWORD");
    c.project_name = first_of(env, {"OS_PROJECT_NAME", "OS_TENANT_NAME"});
    c.project_id = first_of(env, {"OS_PROJECT_ID", "OS_TENANT_ID"});
    std::string domain_name = get(env, "OS_DOMAIN_NAME"), domain_id = get(env, "OS_DOMAIN_ID");
    c.user_domain_name = first_of(env, {"OS_USER_DOMAIN_NAME"});
    c.user_domain_id = get(env, "OS_USER_DOMAIN_ID");
    c.project_domain_name = get(env, "OS_PROJECT_DOMAIN_NAME");
    c.project_domain_id = get(env, "OS_PROJECT_DOMAIN_ID");
    if (c.user_domain_name.empty() && c.user_domain_id.empty()) c.user_domain_name = domain_name, c.user_domain_id = domain_id;
    if (c.project_domain_name.empty() && c.project_domain_id.empty())
      c.project_domain_name = domain_name, c.project_domain_id = domain_id;
    c.app_cred_id = get(env, "OS_APPLICATION_CREDENTIAL_ID");
    c.app_cred_name = get(env, "OS_APPLICATION_CREDENTIAL_NAME");
    c.app_cred_secret = get(env, "OS_APPLICATION_CREDENTIAL_SECRET");
    CH_ASSIGN(type, normalise_auth_type(get(env, "OS_AUTH_TYPE"), c));
    c.auth_type = type;
    if (std::string r = get(env, "OS_REGION_NAME"); !r.empty()) c.regions.push_back(r);
    if (std::string i = get(env, "OS_INTERFACE"); !i.empty()) c.interface = i;
    c.cacert = get(env, "OS_CACERT");
    if (c.auth_url.empty())
      return Error{"OpenStack credentials: OS_AUTH_URL is not set (set the OS_* variables of an openrc file, "
                   "or OS_CLOUD with a clouds.yaml)"};
    CH_TRY(check(c, true));
  }
  // Keystone and the catalog spell interfaces without the "URL" suffix the
  // old clients used.
  if (c.interface == "publicURL") c.interface = "public";
  if (c.interface == "internalURL") c.interface = "internal";
  if (c.interface == "adminURL") c.interface = "admin";
  if (c.interface != "public" && c.interface != "internal" && c.interface != "admin")
    return Error{c.source + ": interface '" + c.interface + "' is not public, internal or admin"};
  // Keystone's defaults when neither domain is named (the openstack CLI
  // leaves them to Keystone, which needs one for a name).
  if (c.user_domain_name.empty() && c.user_domain_id.empty() && c.user_id.empty()) c.user_domain_id = "default";
  if (c.project_domain_name.empty() && c.project_domain_id.empty() && c.project_id.empty())
    c.project_domain_id = "default";
  return c;
}

}  // namespace ch
