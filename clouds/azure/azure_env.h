// Azure: the process environment and the endpoints of each Azure cloud
// (public, China, US Government), with the overrides tests and private
// deployments use. Pure data and lookups; no I/O but reading the
// environment in from_process().
//
// Variables read (names as the Azure SDKs and az use them):
//   AZURE_CLOUD                     AzureCloud (default) | AzureChinaCloud |
//                                   AzureUSGovernment (also: public, china, usgov)
//   AZURE_AUTHORITY_HOST            Entra ID login endpoint override
//                                   (https://login.microsoftonline.com)
//   AZURE_RESOURCE_MANAGER_ENDPOINT Resource Manager override
//                                   (https://management.azure.com)
//   AZURE_SUBSCRIPTION_ID, AZURE_TENANT_ID, AZURE_CLIENT_ID,
//   AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH,
//   AZURE_CLIENT_CERTIFICATE_PASSWORD, AZURE_FEDERATED_TOKEN_FILE,
//   IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service managed identity),
//   AZURE_POD_IDENTITY_AUTHORITY_HOST (IMDS override, as the SDKs read it)
//   AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT,
//   AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN (see clouds/azure/storage.h)
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "base/result.h"

namespace ch {

struct AzureEnv {
  std::map<std::string, std::string> vars;  // environment variables
  std::string home;                         // $HOME
  static AzureEnv from_process();
  std::string get(std::string_view name) const;  // "" when unset
};

struct AzureCloud {
  std::string name;             // "AzureCloud", "AzureChinaCloud", "AzureUSGovernment"
  std::string authority_host;   // "https://login.microsoftonline.com" (no trailing /)
  std::string resource_manager; // "https://management.azure.com" (no trailing /)
  std::string arm_scope;        // "https://management.azure.com/.default"
  std::string storage_suffix;   // "core.windows.net" (blob host: ACCOUNT.blob.SUFFIX)
  std::string storage_scope;    // "https://storage.azure.com/.default"
};

// The cloud named by AZURE_CLOUD (default public), with AZURE_AUTHORITY_HOST
// and AZURE_RESOURCE_MANAGER_ENDPOINT applied (an override changes the URL,
// never the scopes). Errors: an unknown cloud name ("AZURE_CLOUD: unknown
// cloud 'X' (AzureCloud, AzureChinaCloud, AzureUSGovernment)"), an override
// that is not an http(s) URL.
Result<AzureCloud> azure_cloud(const AzureEnv& env);

}  // namespace ch
