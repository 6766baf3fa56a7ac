// The chain: each step either yields a provider, declines (nothing
// configured, go on), or fails (configured but broken: stop, so that a typo
// in a profile is never papered over by instance credentials). The first
// provider is fetched once here, so errors surface at resolve time.
#include "clouds/aws/credentials.h"

#include <mutex>
#include <vector>

#include "clouds/aws/aws_config_file.h"
#include "clouds/aws/credentials_sources.h"
#include "helper/output.h"

namespace ch {

namespace {

using ProviderPtr = std::shared_ptr<AwsCredentialProvider>;

class StaticProvider : public AwsCredentialProvider {
 public:
  StaticProvider(AwsCredentials c, std::string source)
      : credentials_(std::move(c)), source_(std::move(source)) {}
  Result<AwsCredentials> get() override { return credentials_; }
  std::string source() const override { return source_; }

 private:
  const AwsCredentials credentials_;
  const std::string source_;
};

// Keeps what a provider's fetch borrows (a source provider, an HTTP client)
// alive as long as the provider.
class OwningProvider : public AwsCredentialProvider {
 public:
  OwningProvider(std::shared_ptr<AwsCredentialProvider> inner, std::shared_ptr<void> keep = nullptr)
      : inner_(std::move(inner)), keep_(std::move(keep)) {}
  Result<AwsCredentials> get() override { return inner_->get(); }
  std::string source() const override { return inner_->source(); }

 private:
  std::shared_ptr<AwsCredentialProvider> inner_;
  std::shared_ptr<void> keep_;
};

bool is_true(const std::string& v) {
  if (v.size() != 4) return false;
  std::string lower;
  for (char c : v) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return lower == "true";
}

ProviderPtr make_static(AwsCredentials c, std::string source) {
  add_aws_secret(c.secret_access_key);
  add_aws_secret(c.session_token);
  return std::make_shared<StaticProvider>(std::move(c), std::move(source));
}

struct Chain {
  HttpClient& client;
  const AwsEnv& env;
  std::string region;  // for STS
  std::optional<AwsConfigFiles> files;
};

// Step 1. Declines (nullptr) when AWS_ACCESS_KEY_ID is unset.
Result<ProviderPtr> env_provider(const AwsEnv& env) {
  AwsCredentials c;
  c.access_key_id = env.get("AWS_ACCESS_KEY_ID");
  c.secret_access_key = env.get("AWS_SECRET_ACCESS_KEY");
  c.session_token = env.get("AWS_SESSION_TOKEN");
  if (c.session_token.empty()) c.session_token = env.get("AWS_SECURITY_TOKEN");  // older SDKs
  if (c.access_key_id.empty() && c.secret_access_key.empty()) return ProviderPtr();
  if (c.secret_access_key.empty()) return Error{"AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"};
  if (c.access_key_id.empty()) return Error{"AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"};
  return make_static(std::move(c), "environment");
}

Result<ProviderPtr> container_provider(HttpClient& client, const AwsEnv& env) {
  CH_TRY(container_credentials_url(env));
  auto fetch = [&client, env]() { return fetch_container_credentials(client, env); };
  return ProviderPtr(refreshing_aws_credentials(fetch, "container endpoint"));
}

// The role name is only known after the first fetch; the source names it then.
class ImdsProvider : public AwsCredentialProvider {
 public:
  explicit ImdsProvider(const AwsEnv& env)
      : client_(std::make_shared<HttpClient>(imds_http_config())), role_(std::make_shared<Role>()) {
    auto client = client_;
    auto role = role_;
    inner_ = refreshing_aws_credentials(
        [client, role, env]() -> Result<TimedAwsCredentials> {
          std::string name;
          auto r = fetch_imds_credentials(*client, env, &name);
          std::lock_guard<std::mutex> lock(role->mu);
          if (!name.empty()) role->name = name;
          return r;
        },
        "instance metadata (IMDSv2)");
  }
  Result<AwsCredentials> get() override { return inner_->get(); }
  std::string source() const override {
    std::lock_guard<std::mutex> lock(role_->mu);
    return "instance metadata (IMDSv2) role '" + role_->name + "'";
  }

 private:
  struct Role {
    std::mutex mu;
    std::string name;
  };
  std::shared_ptr<HttpClient> client_;
  std::shared_ptr<Role> role_;
  std::unique_ptr<AwsCredentialProvider> inner_;
};

Result<ProviderPtr> web_identity_provider(Chain& chain, AssumeRoleParams params,
                                          const std::string& token_file) {
  HttpClient& client = chain.client;
  AwsEnv env = chain.env;
  std::string source = "web identity token file " + token_file + " for " + params.role_arn;
  auto fetch = [&client, env, params, token_file]() -> Result<TimedAwsCredentials> {
    auto r = sts_assume_role_with_web_identity(client, env, params, token_file);
    if (!r.ok()) return r.error().wrap("web identity role " + params.role_arn);
    return r;
  };
  return ProviderPtr(refreshing_aws_credentials(fetch, source));
}

Result<ProviderPtr> assume_role_provider(Chain& chain, ProviderPtr source_provider,
                                         AssumeRoleParams params, const std::string& via) {
  HttpClient& client = chain.client;
  AwsEnv env = chain.env;
  AwsCredentialProvider* source = source_provider.get();
  auto fetch = [&client, env, source, params]() -> Result<TimedAwsCredentials> {
    auto r = sts_assume_role(client, env, *source, params);
    if (!r.ok()) return r.error().wrap("assume-role " + params.role_arn);
    return r;
  };
  return ProviderPtr(std::make_shared<OwningProvider>(
      refreshing_aws_credentials(fetch, "assume-role " + params.role_arn + " via " + via),
      source_provider));
}

Result<long> parse_duration(const AwsProfile& p) {
  std::string text = p.get("duration_seconds");
  if (text.empty()) return 0L;
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (end == text.c_str() || *end != '\0' || v < 900 || v > 43200)
    return Error{"profile '" + p.name + "': duration_seconds '" + text + "' is not 900..43200"};
  return v;
}

bool has_static_keys(const AwsProfile& p) { return p.has("aws_access_key_id"); }

Result<ProviderPtr> static_profile_provider(const AwsProfile& p) {
  if (!p.has("aws_secret_access_key"))
    return Error{"profile '" + p.name + "' in " + p.file_of.at("aws_access_key_id") +
                 " sets aws_access_key_id but not aws_secret_access_key"};
  AwsCredentials c{p.get("aws_access_key_id"), p.get("aws_secret_access_key"),
                   p.get("aws_session_token")};
  return make_static(std::move(c), "profile '" + p.name + "' in " + p.file_of.at("aws_access_key_id"));
}

// Step 2 for profile NAME. VISITED holds the profiles above it in a
// source_profile chain; AS_SOURCE: NAME is someone's source_profile, and
// then its static keys win over its own role_arn (botocore's rule, which
// also lets a profile name itself as source). Declines (nullptr) only for a
// top-level profile without any credential settings (one that sets only a
// region, say).
Result<ProviderPtr> profile_provider(Chain& chain, const std::string& name,
                                     std::vector<std::string>& visited, bool as_source) {
  const AwsConfigFiles& files = *chain.files;
  std::optional<AwsProfile> found = files.profile(name);
  if (!found) {
    std::string msg = "AWS profile '" + name + "' not found in " + files.credentials_path +
                      " or " + files.config_path;
    if (as_source) msg = "profile '" + visited.back() + "': source_profile: " + msg;
    return Error{msg};
  }
  const AwsProfile& p = *found;
  if (as_source && has_static_keys(p)) return static_profile_provider(p);
  for (const std::string& v : visited)
    if (v == name) {
      std::string cycle;
      for (const std::string& x : visited) cycle += "'" + x + "' -> ";
      return Error{"AWS profiles form a source_profile cycle: " + cycle + "'" + name + "'"};
    }
  visited.push_back(name);
  const std::string what = "profile '" + name + "'";

  if (p.has("role_arn")) {
    if (p.has("mfa_serial"))
      return Error{what + " needs an MFA code (mfa_serial), which cloud_helper cannot ask for; "
                          "use credential_process or temporary keys"};
    AssumeRoleParams params;
    params.role_arn = p.get("role_arn");
    params.session_name = p.get("role_session_name");
    params.external_id = p.get("external_id");
    CH_ASSIGN(duration, parse_duration(p));
    params.duration_seconds = duration;
    params.region = chain.region;
    const bool has_source = p.has("source_profile"), has_cred_source = p.has("credential_source");
    if (has_source && has_cred_source)
      return Error{what + " sets both source_profile and credential_source"};
    if (has_source) {
      const std::string source_name = p.get("source_profile");
      CH_ASSIGN(source, profile_provider(chain, source_name, visited, true));
      return assume_role_provider(chain, source, params, "profile '" + source_name + "'");
    }
    if (has_cred_source) {
      const std::string kind = p.get("credential_source");
      ProviderPtr source;
      if (kind == "Environment") {
        CH_ASSIGN(env_source, env_provider(chain.env));
        if (!env_source)
          return Error{what + ": credential_source Environment but AWS_ACCESS_KEY_ID is not set"};
        source = env_source;
      } else if (kind == "Ec2InstanceMetadata") {
        source = std::make_shared<ImdsProvider>(chain.env);
      } else if (kind == "EcsContainer") {
        auto c = container_provider(chain.client, chain.env);
        if (!c.ok()) return c.error().wrap(what + ": credential_source EcsContainer");
        source = *c;
      } else {
        return Error{what + ": credential_source '" + kind +
                     "' is not Environment, Ec2InstanceMetadata or EcsContainer"};
      }
      return assume_role_provider(chain, source, params, "credential_source " + kind);
    }
    if (p.has("web_identity_token_file"))
      return web_identity_provider(chain, params, p.get("web_identity_token_file"));
    return Error{what + " sets role_arn but no source_profile, credential_source or "
                        "web_identity_token_file"};
  }
  if (p.has("web_identity_token_file")) return Error{what + " sets web_identity_token_file without role_arn"};
  if (p.has("sso_start_url") || p.has("sso_session"))
    return Error{what + " uses AWS IAM Identity Center (SSO), which cloud_helper does not read; "
                        "set credential_process = aws configure export-credentials --profile " +
                 name + " --format process"};
  if (has_static_keys(p)) return static_profile_provider(p);
  if (p.has("aws_secret_access_key"))
    return Error{what + " in " + p.file_of.at("aws_secret_access_key") +
                 " sets aws_secret_access_key but not aws_access_key_id"};
  if (p.has("credential_process")) {
    const std::string command = p.get("credential_process");
    auto fetch = [command, what]() -> Result<TimedAwsCredentials> {
      auto r = run_credential_process(command);
      if (!r.ok()) return r.error().wrap(what);
      return r;
    };
    return ProviderPtr(refreshing_aws_credentials(fetch, "credential_process of " + what));
  }
  if (as_source) return Error{what + " (a source_profile) has no credentials"};
  return ProviderPtr();
}

std::optional<AwsProfile> current_profile(const AwsEnv& env) {
  auto files = AwsConfigFiles::load(env);
  if (!files.ok()) return std::nullopt;
  return files->profile(aws_profile_name(env));
}

std::string no_credentials_message(const Chain& chain, const std::string& imds_cause) {
  return "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in " +
         chain.files->credentials_path + " or " + chain.files->config_path +
         " (AWS_PROFILE), or AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or run with an "
         "ECS/EKS or EC2 instance role (" + imds_cause + ")";
}

// The first configured source, not yet fetched. *LAST_RESORT: it is
// instance metadata, whose failure means "nothing found" rather than "broken".
Result<ProviderPtr> find_provider(Chain& chain, bool* last_resort) {
  CH_ASSIGN(from_env, env_provider(chain.env));
  if (from_env) return from_env;

  CH_ASSIGN(files, AwsConfigFiles::load(chain.env));
  chain.files = std::move(files);
  const std::string profile = aws_profile_name(chain.env);
  if (chain.files->profile(profile) || aws_profile_named(chain.env)) {
    std::vector<std::string> visited;
    CH_ASSIGN(from_profile, profile_provider(chain, profile, visited, false));
    if (from_profile) return from_profile;
  }

  const std::string token_file = chain.env.get("AWS_WEB_IDENTITY_TOKEN_FILE");
  if (!token_file.empty()) {
    AssumeRoleParams params;
    params.role_arn = chain.env.get("AWS_ROLE_ARN");
    if (params.role_arn.empty()) return Error{"AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not"};
    params.session_name = chain.env.get("AWS_ROLE_SESSION_NAME");
    params.region = chain.region;
    return web_identity_provider(chain, params, token_file);
  }

  if (!chain.env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").empty() ||
      !chain.env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI").empty())
    return container_provider(chain.client, chain.env);

  if (!is_true(chain.env.get("AWS_EC2_METADATA_DISABLED"))) {
    *last_resort = true;
    return ProviderPtr(std::make_shared<ImdsProvider>(chain.env));
  }
  return Error{no_credentials_message(chain, "disabled by AWS_EC2_METADATA_DISABLED")};
}

}  // namespace

Result<std::unique_ptr<AwsCredentialProvider>> resolve_aws_credentials(
    HttpClient& client, const AwsEnv& env, std::string_view region) {
  Chain chain{client, env, std::string(region), std::nullopt};
  if (chain.region.empty()) chain.region = default_aws_region(env);
  bool last_resort = false;
  CH_ASSIGN(provider, find_provider(chain, &last_resort));
  // Fetch now: a broken source fails here, not in the middle of an upload.
  auto first = provider->get();
  if (!first.ok()) {
    if (last_resort) return Error{no_credentials_message(chain, first.message())};
    return first.error();
  }
  log_info("aws: credentials from " + provider->source());
  return std::unique_ptr<AwsCredentialProvider>(std::make_unique<OwningProvider>(provider));
}

std::unique_ptr<AwsCredentialProvider> static_aws_credentials(AwsCredentials c, std::string source) {
  add_aws_secret(c.secret_access_key);
  add_aws_secret(c.session_token);
  return std::make_unique<StaticProvider>(std::move(c), std::move(source));
}

std::string default_aws_region(const AwsEnv& env) {
  std::string region = env.get("AWS_REGION");
  if (region.empty()) region = env.get("AWS_DEFAULT_REGION");
  if (region.empty()) {
    if (auto p = current_profile(env)) region = p->get("region");
  }
  return region;
}

std::string profile_endpoint_url(const AwsEnv& env) {
  if (auto p = current_profile(env)) return p->get("endpoint_url");
  return "";
}

}  // namespace ch
