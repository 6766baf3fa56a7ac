#include "clouds/azure/azure_env.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace ch {
namespace {

AzureEnv env_with(std::map<std::string, std::string> vars) {
  AzureEnv env;
  env.vars = std::move(vars);
  return env;
}

TEST(AzureEnvCloud, PublicByDefault) {
  auto c = azure_cloud(AzureEnv{});
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->name, "AzureCloud");
  EXPECT_EQ(c->authority_host, "https://login.microsoftonline.com");
  EXPECT_EQ(c->resource_manager, "https://management.azure.com");
  EXPECT_EQ(c->arm_scope, "https://management.azure.com/.default");
  EXPECT_EQ(c->storage_suffix, "core.windows.net");
  EXPECT_EQ(c->storage_scope, "https://storage.azure.com/.default");
}

TEST(AzureEnvCloud, ChinaAndUsGovernmentByNameOrAliasAnyCase) {
  for (const char* name : {"AzureChinaCloud", "azurechinacloud", "china", "CHINA"}) {
    auto c = azure_cloud(env_with({{"AZURE_CLOUD", name}}));
    ASSERT_TRUE(c.ok()) << name << ": " << c.message();
    EXPECT_EQ(c->name, "AzureChinaCloud");
    EXPECT_EQ(c->authority_host, "https://login.chinacloudapi.cn");
    EXPECT_EQ(c->resource_manager, "https://management.chinacloudapi.cn");
    EXPECT_EQ(c->arm_scope, "https://management.chinacloudapi.cn/.default");
    EXPECT_EQ(c->storage_suffix, "core.chinacloudapi.cn");
    EXPECT_EQ(c->storage_scope, "https://storage.azure.com/.default");
  }
  for (const char* name : {"AzureUSGovernment", "usgov", "UsGov"}) {
    auto c = azure_cloud(env_with({{"AZURE_CLOUD", name}}));
    ASSERT_TRUE(c.ok()) << name << ": " << c.message();
    EXPECT_EQ(c->name, "AzureUSGovernment");
    EXPECT_EQ(c->authority_host, "https://login.microsoftonline.us");
    EXPECT_EQ(c->resource_manager, "https://management.usgovcloudapi.net");
    EXPECT_EQ(c->arm_scope, "https://management.usgovcloudapi.net/.default");
    EXPECT_EQ(c->storage_suffix, "core.usgovcloudapi.net");
  }
  for (const char* name : {"AzurePublicCloud", "public", "azurecloud"})
    EXPECT_EQ(azure_cloud(env_with({{"AZURE_CLOUD", name}}))->name, "AzureCloud") << name;
}

TEST(AzureEnvCloud, UnknownCloudNamesTheChoices) {
  auto c = azure_cloud(env_with({{"AZURE_CLOUD", "AzureGermanCloud"}}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.message(),
            "AZURE_CLOUD: unknown cloud 'AzureGermanCloud' (AzureCloud, AzureChinaCloud, AzureUSGovernment)");
}

TEST(AzureEnvCloud, OverridesChangeUrlsNotScopes) {
  auto c = azure_cloud(env_with({{"AZURE_CLOUD", "china"},
                                 {"AZURE_AUTHORITY_HOST", "HTTP://127.0.0.1:48010/"},
                                 {"AZURE_RESOURCE_MANAGER_ENDPOINT", "https://arm.example:8443/base//"}}));
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->authority_host, "http://127.0.0.1:48010");
  EXPECT_EQ(c->resource_manager, "https://arm.example:8443/base");
  EXPECT_EQ(c->arm_scope, "https://management.chinacloudapi.cn/.default");
  EXPECT_EQ(c->storage_scope, "https://storage.azure.com/.default");
}

TEST(AzureEnvCloud, BadOverridesAreRefused) {
  auto c = azure_cloud(env_with({{"AZURE_AUTHORITY_HOST", "login.microsoftonline.com"}}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.message(), "AZURE_AUTHORITY_HOST='login.microsoftonline.com': not an http(s) URL");
  c = azure_cloud(env_with({{"AZURE_RESOURCE_MANAGER_ENDPOINT", "ftp://x"}}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.message(), "AZURE_RESOURCE_MANAGER_ENDPOINT='ftp://x': not an http(s) URL");
  EXPECT_FALSE(azure_cloud(env_with({{"AZURE_RESOURCE_MANAGER_ENDPOINT", "https://"}})).ok());
  EXPECT_FALSE(azure_cloud(env_with({{"AZURE_AUTHORITY_HOST", "https://h/?x=1"}})).ok());
  EXPECT_FALSE(azure_cloud(env_with({{"AZURE_AUTHORITY_HOST", "https://u:p@h"}})).ok());
}

TEST(AzureEnvProcess, ReadsEnvironmentAndHome) {
  ::setenv("CLOUD_HELPER_AZURE_ENV_TEST", "a=b", 1);
  AzureEnv env = AzureEnv::from_process();
  EXPECT_EQ(env.get("CLOUD_HELPER_AZURE_ENV_TEST"), "a=b");
  EXPECT_EQ(env.get("CLOUD_HELPER_AZURE_ENV_TEST_UNSET"), "");
  const char* home = std::getenv("HOME");
  EXPECT_EQ(env.home, home ? home : "");
  ::unsetenv("CLOUD_HELPER_AZURE_ENV_TEST");
}

}  // namespace
}  // namespace ch
