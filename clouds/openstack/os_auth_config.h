// OpenStack: where the credentials come from, as the openstack CLI and
// openstacksdk find them. No I/O but reading the environment map and the
// clouds.yaml / secure.yaml files.
//
// OS_CLOUD=NAME picks `clouds: NAME:` from the first clouds.yaml found in
// OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/clouds.yaml,
// /etc/openstack/clouds.yaml; the first secure.yaml found the same way
// (OS_CLIENT_SECURE_FILE, ./, ~/.config/openstack/, /etc/openstack/) is
// merged over it key by key (where passwords usually live). Without
// OS_CLOUD, the OS_* variables: OS_AUTH_URL, OS_AUTH_TYPE, OS_USERNAME /
// OS_USER_ID, OS_PASSWORD, OS_PROJECT_NAME / OS_PROJECT_ID (OS_TENANT_*
// too), OS_USER_DOMAIN_NAME / _ID, OS_PROJECT_DOMAIN_NAME / _ID,
// OS_DOMAIN_NAME (both domains), OS_APPLICATION_CREDENTIAL_ID / _NAME /
// _SECRET, OS_REGION_NAME, OS_INTERFACE, OS_CACERT. With OS_CLOUD,
// OS_REGION_NAME and OS_INTERFACE still apply when the cloud entry has none.
//
// Keystone v3 only (identity_api_version 2 is refused): auth_type password
// (also v3password) or v3applicationcredential (also application_credential,
// chosen by default when an application credential id or name is given).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace ch {

struct OpenStackAuthConfig {
  std::string source;      // "OS_* variables" | "clouds.yaml cloud NAME (PATH)"
  std::string auth_url;    // Keystone, as given ("https://keystone:5000/v3")
  std::string auth_type;   // "password" | "v3applicationcredential"
  std::string username, user_id, password;
  std::string user_domain_name, user_domain_id;
  std::string project_name, project_id;
  std::string project_domain_name, project_domain_id;
  std::string app_cred_id, app_cred_name, app_cred_secret;
  std::vector<std::string> regions;  // region_name (or regions) of the cloud entry / OS_REGION_NAME
  std::string interface = "public";  // public | internal | admin
  std::string cacert;                // CA file, "" : the system's store
};

// The clouds.yaml search list for a HOME and working directory, as above.
std::vector<std::string> clouds_yaml_paths(const std::map<std::string, std::string>& env,
                                           const std::string& cwd, std::string_view file_name);

// Resolves the configuration from ENV (the process environment) with files
// searched from CWD. Errors, one line each, name what is missing and where
// it was looked for ("OS_CLOUD=x: no cloud 'x' in ./clouds.yaml (clouds: a, b)",
// "OpenStack credentials: OS_AUTH_URL is not set (set OS_* variables or OS_CLOUD)").
Result<OpenStackAuthConfig> resolve_openstack_auth(const std::map<std::string, std::string>& env,
                                                   const std::string& cwd);

// Parses the text of a clouds.yaml (and optionally a secure.yaml) and picks
// cloud NAME; for tests and resolve_openstack_auth.
Result<OpenStackAuthConfig> openstack_auth_from_clouds_yaml(const std::string& clouds_text,
                                                            const std::string& clouds_path,
                                                            const std::string& secure_text,
                                                            const std::string& secure_path,
                                                            const std::string& cloud);

}  // namespace ch
