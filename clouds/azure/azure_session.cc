#include "clouds/azure/azure_session.h"

#include "helper/output.h"

namespace ch {

Result<AzureCloud> azure_cloud_from_process(AzureEnv* env_out) {
  AzureEnv env = AzureEnv::from_process();
  auto cloud = azure_cloud(env);
  if (env_out) *env_out = std::move(env);
  return cloud;
}

Result<std::unique_ptr<AzureSession>> open_azure_session(bool need_arm) {
  auto s = std::make_unique<AzureSession>();
  CH_ASSIGN(cloud, azure_cloud_from_process(&s->env));
  s->cloud = cloud;
  HttpClient::Config config;
  config.max_in_flight = 32;  // page uploads and parallel version waits
  config.ca_file = ca_file_from_env();
  s->http = std::make_unique<HttpClient>(config);
  // Managed identity is probed only when Resource Manager is needed: a
  // storage-only upload with a key must not wait on a missing IMDS.
  auto tokens = resolve_azure_credentials(*s->http, s->env, s->cloud, need_arm);
  if (tokens.ok()) {
    s->tokens = std::move(tokens).value();
    s->arm = std::make_unique<ArmClient>(*s->http, *s->tokens, s->cloud);
  } else if (need_arm) {
    return tokens.error();
  }
  return s;
}

Result<std::unique_ptr<BlobClient>> open_blob_client(AzureSession& s, const BlobLocation& blob) {
  CH_ASSIGN(auth, resolve_storage_auth(s.env, s.cloud, blob.account, s.tokens.get()));
  log_info("azure: storage account " + blob.account + ": credentials from " + auth.source);
  return std::make_unique<BlobClient>(*s.http, std::move(auth));
}

std::string azure_rg_id(const AzureConfig& c) {
  return "/subscriptions/" + c.subscription_id + "/resourceGroups/" + c.resource_group;
}

std::string azure_gallery_id(const AzureConfig& c) {
  return azure_rg_id(c) + "/providers/Microsoft.Compute/galleries/" + c.gallery;
}

std::string azure_definition_id(const AzureConfig& c, const std::string& definition) {
  return azure_gallery_id(c) + "/images/" + definition;
}

std::string azure_version_id(const AzureConfig& c, const std::string& definition) {
  return azure_definition_id(c, definition) + "/versions/" + c.version;
}

std::string azure_managed_image_id(const AzureConfig& c, const std::string& image_name) {
  return azure_rg_id(c) + "/providers/Microsoft.Compute/images/" + image_name;
}

std::string azure_storage_account_id(const std::string& subscription, const std::string& resource_group,
                                     const std::string& account) {
  return "/subscriptions/" + subscription + "/resourceGroups/" + resource_group +
         "/providers/Microsoft.Storage/storageAccounts/" + account;
}

}  // namespace ch
