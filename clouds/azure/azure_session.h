// What every Azure step starts from: the environment, the cloud's
// endpoints, one HTTP client, Entra ID tokens and the Resource Manager
// client (when the step needs them), the Blob client for a storage URL,
// and the resource ids the steps share.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "clouds/azure/arm.h"
#include "clouds/azure/azure_config.h"
#include "clouds/azure/azure_env.h"
#include "clouds/azure/blob.h"
#include "clouds/azure/entra.h"
#include "clouds/http/http_client.h"

namespace ch {

struct AzureSession {
  AzureEnv env;
  AzureCloud cloud;
  std::unique_ptr<HttpClient> http;
  std::unique_ptr<AzureTokenProvider> tokens;  // null when no Entra ID source is configured
  std::unique_ptr<ArmClient> arm;              // null without tokens
};

// Environment and endpoints only: no credentials, no I/O (validation).
Result<AzureCloud> azure_cloud_from_process(AzureEnv* env_out = nullptr);

// Builds the session. NEED_ARM: Entra ID credentials are required (import,
// publish, rollback); otherwise they are used when configured (storage by
// bearer token, creating a storage account).
Result<std::unique_ptr<AzureSession>> open_azure_session(bool need_arm);

// A Blob client for BLOB's account, with its credentials resolved
// (clouds/azure/storage.h order) and their source logged.
Result<std::unique_ptr<BlobClient>> open_blob_client(AzureSession& s, const BlobLocation& blob);

// Resource ids.
std::string azure_rg_id(const AzureConfig& c);
std::string azure_gallery_id(const AzureConfig& c);
std::string azure_definition_id(const AzureConfig& c, const std::string& definition);
std::string azure_version_id(const AzureConfig& c, const std::string& definition);
std::string azure_managed_image_id(const AzureConfig& c, const std::string& image_name);
std::string azure_storage_account_id(const std::string& subscription, const std::string& resource_group,
                                     const std::string& account);

}  // namespace ch
