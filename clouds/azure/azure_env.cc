// The three Azure clouds as data. Values are those of `az cloud show` and
// the SDKs' AzureAuthorityHosts / cloud configurations
// (https://learn.microsoft.com/azure/china/resources-developer-guide,
// https://learn.microsoft.com/azure/azure-government/compare-azure-government-global-azure).
// Storage's Entra ID scope is https://storage.azure.com/.default in every
// cloud; only the blob host suffix differs.
#include "clouds/azure/azure_env.h"

#include <array>

#include "base/env.h"
#include "clouds/http/ascii_case.h"


namespace ch {

namespace {

struct KnownCloud {
  std::string_view name;
  std::string_view alias;
  std::string_view authority_host;
  std::string_view resource_manager;
  std::string_view storage_suffix;
};

constexpr std::array<KnownCloud, 3> kClouds = {{
    {"AzureCloud", "public", "https://login.microsoftonline.com", "https://management.azure.com",
     "core.windows.net"},
    {"AzureChinaCloud", "china", "https://login.chinacloudapi.cn", "https://management.chinacloudapi.cn",
     "core.chinacloudapi.cn"},
    {"AzureUSGovernment", "usgov", "https://login.microsoftonline.us",
     "https://management.usgovcloudapi.net", "core.usgovcloudapi.net"},
}};

constexpr std::string_view kStorageScope = "https://storage.azure.com/.default";

// "scheme://host[:port][/path]" with the trailing '/' removed. The value
// becomes the prefix of every token or ARM URL, so a query, fragment or user
// information in it would corrupt them: refused.
Result<std::string> override_url(std::string_view var, std::string value) {
  auto fail = [&](const std::string& why) {
    return Error{std::string(var) + "='" + value + "': " + why};
  };
  while (!value.empty() && value.back() == '/') value.pop_back();
  if (!ascii_istarts_with(value, "http://") && !ascii_istarts_with(value, "https://"))
    return fail("not an http(s) URL");
  size_t host_start = value.find("://") + 3;
  std::string_view rest = std::string_view(value).substr(host_start);
  if (rest.empty() || rest.front() == '/' || rest.front() == ':') return fail("no host");
  if (rest.find_first_of("?#@") != std::string_view::npos)
    return fail("a query, fragment or user information is not allowed");
  // Schemes compare case-insensitively; the rest of the URL goes on as given.
  return ascii_lowercase(value.substr(0, host_start)) + std::string(rest);
}

}  // namespace

AzureEnv AzureEnv::from_process() {
  AzureEnv env;
  env.vars = process_environment();
  env.home = env.get("HOME");
  return env;
}

std::string AzureEnv::get(std::string_view name) const {
  auto it = vars.find(std::string(name));
  return it == vars.end() ? std::string() : it->second;
}

Result<AzureCloud> azure_cloud(const AzureEnv& env) {
  std::string requested = env.get("AZURE_CLOUD");
  const KnownCloud* known = &kClouds[0];
  if (!requested.empty()) {
    known = nullptr;
    for (const KnownCloud& c : kClouds)
      if (ascii_iequals(requested, c.name) || ascii_iequals(requested, c.alias) ||
          (c.name == "AzureCloud" && ascii_iequals(requested, "AzurePublicCloud")))
        known = &c;
    if (known == nullptr)
      return Error{"AZURE_CLOUD: unknown cloud '" + requested +
                   "' (AzureCloud, AzureChinaCloud, AzureUSGovernment)"};
  }
  AzureCloud cloud;
  cloud.name = std::string(known->name);
  cloud.authority_host = std::string(known->authority_host);
  cloud.resource_manager = std::string(known->resource_manager);
  // The ARM audience is the cloud's own endpoint, also when an override
  // points elsewhere (an emulator or proxy still wants real-looking tokens).
  cloud.arm_scope = std::string(known->resource_manager) + "/.default";
  cloud.storage_suffix = std::string(known->storage_suffix);
  cloud.storage_scope = std::string(kStorageScope);
  if (std::string v = env.get("AZURE_AUTHORITY_HOST"); !v.empty()) {
    CH_ASSIGN(url, override_url("AZURE_AUTHORITY_HOST", v));
    cloud.authority_host = url;
  }
  if (std::string v = env.get("AZURE_RESOURCE_MANAGER_ENDPOINT"); !v.empty()) {
    CH_ASSIGN(url, override_url("AZURE_RESOURCE_MANAGER_ENDPOINT", v));
    cloud.resource_manager = url;
  }
  return cloud;
}

}  // namespace ch
