// Temporary credential sources. Each returns the credentials and their
// expiry; none keeps state, so refreshing is calling it again.
#include "clouds/aws/credentials_sources.h"

#include <sys/wait.h>

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "base/file.h"
#include "clouds/aws/aws_client.h"
#include "clouds/http/retry.h"
#include "helper/output.h"

namespace ch {

namespace {

constexpr std::string_view kStsVersion = "2011-06-15";
constexpr std::string_view kImdsTokenTtl = "21600";  // seconds; the SDKs' default

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::chrono::sys_seconds now_seconds() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

void register_secrets(const AwsCredentials& c) {
  add_aws_secret(c.secret_access_key);
  add_aws_secret(c.session_token);
}

Result<std::string> read_token_file(const std::string& path) {
  CH_ASSIGN(file, File::open_read(path));
  std::string text;
  char buffer[4096];
  for (;;) {
    CH_ASSIGN(n, file.pread_some(text.size(), buffer, sizeof buffer));
    if (n == 0) break;
    text.append(buffer, n);
    if (text.size() > (1 << 20)) return Error{path + ": larger than 1 MiB, not a token"};
  }
  std::string token = trim(text);
  if (token.empty()) return Error{path + ": empty token file"};
  add_aws_secret(token);
  return token;
}

// The JSON documents of the container endpoint, IMDS and credential_process
// differ only in the token's key. WHAT names the source; values are never quoted.
Result<TimedAwsCredentials> parse_json_credentials(std::string_view body, const std::string& what,
                                                   const char* token_key) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Error{what + ": answer is not a JSON object"};
  auto text = [&](const char* key) -> std::string {
    auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  TimedAwsCredentials out;
  out.credentials.access_key_id = text("AccessKeyId");
  out.credentials.secret_access_key = text("SecretAccessKey");
  out.credentials.session_token = text(token_key);
  register_secrets(out.credentials);
  if (out.credentials.access_key_id.empty() || out.credentials.secret_access_key.empty())
    return Error{what + ": answer lacks AccessKeyId or SecretAccessKey"};
  std::string expiration = text("Expiration");
  if (!expiration.empty()) {
    auto t = parse_aws_time(expiration);
    if (!t.ok()) return t.error().wrap(what + ": Expiration");
    out.expiration = *t;
  }
  return out;
}

std::string default_session_name() {
  return "cloud_helper-" + std::to_string(now_seconds().time_since_epoch().count());
}

std::string sts_region(const AssumeRoleParams& p) { return p.region.empty() ? "us-east-1" : p.region; }

std::vector<std::pair<std::string, std::string>> role_params(const AssumeRoleParams& p) {
  std::vector<std::pair<std::string, std::string>> params = {
      {"RoleArn", p.role_arn},
      {"RoleSessionName", p.session_name.empty() ? default_session_name() : p.session_name}};
  if (p.duration_seconds > 0) params.emplace_back("DurationSeconds", std::to_string(p.duration_seconds));
  return params;
}

class RefreshingProvider : public AwsCredentialProvider {
 public:
  RefreshingProvider(AwsCredentialFetch fetch, std::string source)
      : fetch_(std::move(fetch)), source_(std::move(source)) {}

  Result<AwsCredentials> get() override {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::system_clock::now();
    if (cached_ && (!cached_->expiration || now < *cached_->expiration - kAwsRefreshMargin))
      return cached_->credentials;
    auto fresh = fetch_();
    if (!fresh.ok()) {
      if (cached_ && now < *cached_->expiration) {
        log_info("aws: refreshing credentials from " + source_ + " failed (" + fresh.message() +
                 "); using the current ones until they expire");
        return cached_->credentials;
      }
      return fresh.error();
    }
    register_secrets(fresh->credentials);
    if (cached_) log_debug("aws: refreshed credentials from " + source_);
    cached_ = std::move(*fresh);
    return cached_->credentials;
  }
  std::string source() const override { return source_; }

 private:
  AwsCredentialFetch fetch_;
  std::string source_;
  std::mutex mu_;
  std::optional<TimedAwsCredentials> cached_;
};

bool is_loopback_or_agent(std::string host) {
  if (!host.empty() && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0) return true;
  // ECS task metadata agent, EKS Pod Identity agent (IPv4 and IPv6).
  return host == "169.254.170.2" || host == "169.254.170.23" || host == "fd00:ec2::23";
}

Result<HttpResponse> send_get(HttpClient& client, const RetryPolicy& policy, HttpRequest request) {
  return send_with_retry(client, policy, [&](int) -> Result<HttpRequest> { return request; });
}

}  // namespace

void add_aws_secret(const std::string& secret) {
  if (secret.size() >= 8) add_secret(secret);
}

std::unique_ptr<AwsCredentialProvider> refreshing_aws_credentials(AwsCredentialFetch fetch,
                                                                  std::string source) {
  return std::make_unique<RefreshingProvider>(std::move(fetch), std::move(source));
}

Result<std::chrono::sys_seconds> parse_aws_time(std::string_view text) {
  using namespace std::chrono;
  auto fail = [&] { return Error{"'" + std::string(text) + "' is not an ISO 8601 UTC time"}; };
  auto number = [&](size_t pos, size_t len, int* out) {
    if (pos + len > text.size()) return false;
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return true;
  };
  int y, mo, d, h, mi, s;
  if (!number(0, 4, &y) || text.size() < 19 || text[4] != '-' || !number(5, 2, &mo) ||
      text[7] != '-' || !number(8, 2, &d) || (text[10] != 'T' && text[10] != 't' && text[10] != ' ') ||
      !number(11, 2, &h) || text[13] != ':' || !number(14, 2, &mi) || text[16] != ':' ||
      !number(17, 2, &s))
    return fail();
  year_month_day ymd{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) return fail();
  size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    if (pos == start) return fail();
  }
  seconds offset{0};
  std::string_view zone = text.substr(pos);
  if (zone == "Z" || zone == "z" || zone.empty()) {
  } else if ((zone[0] == '+' || zone[0] == '-') && zone.size() == 6 && zone[3] == ':') {
    int oh, om;
    if (!number(pos + 1, 2, &oh) || !number(pos + 4, 2, &om)) return fail();
    offset = hours(oh) + minutes(om);
    if (zone[0] == '-') offset = -offset;
  } else {
    return fail();
  }
  return sys_days(ymd) + hours(h) + minutes(mi) + seconds(s) - offset;
}

Result<TimedAwsCredentials> parse_sts_credentials(std::string_view xml) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size())) return Error{"STS answer is not XML"};
  pugi::xml_node creds = doc.select_node("//Credentials").node();
  if (!creds) return Error{"STS answer has no <Credentials>"};
  TimedAwsCredentials out;
  out.credentials.access_key_id = trim(creds.child_value("AccessKeyId"));
  out.credentials.secret_access_key = trim(creds.child_value("SecretAccessKey"));
  out.credentials.session_token = trim(creds.child_value("SessionToken"));
  register_secrets(out.credentials);
  if (out.credentials.access_key_id.empty() || out.credentials.secret_access_key.empty())
    return Error{"STS answer lacks AccessKeyId or SecretAccessKey"};
  std::string expiration = trim(creds.child_value("Expiration"));
  if (!expiration.empty()) {
    auto t = parse_aws_time(expiration);
    if (!t.ok()) return t.error().wrap("STS Expiration");
    out.expiration = *t;
  }
  return out;
}

Result<TimedAwsCredentials> sts_assume_role(HttpClient& client, const AwsEnv& env,
                                            AwsCredentialProvider& source,
                                            const AssumeRoleParams& params) {
  AwsClient sts(client, source, env);
  auto query = role_params(params);
  if (!params.external_id.empty()) query.emplace_back("ExternalId", params.external_id);
  CH_ASSIGN(xml, sts.query(AwsService::kSts, sts_region(params), "AssumeRole",
                           std::string(kStsVersion), query));
  return parse_sts_credentials(xml);
}

Result<TimedAwsCredentials> sts_assume_role_with_web_identity(HttpClient& client,
                                                              const AwsEnv& env,
                                                              const AssumeRoleParams& params,
                                                              const std::string& token_file) {
  const std::string region = sts_region(params);
  const std::string what = "STS AssumeRoleWithWebIdentity (" + region + ")";
  auto token = read_token_file(token_file);
  if (!token.ok()) return token.error().wrap(what + ": web identity token");
  auto endpoint = resolve_aws_endpoint(AwsService::kSts, region, env, {}, profile_endpoint_url(env));
  if (!endpoint.ok()) return endpoint.error().wrap(what);
  auto query = role_params(params);
  query.emplace_back("WebIdentityToken", *token);
  HttpRequest request;
  request.method = "POST";
  request.scheme = endpoint->scheme;
  request.host = endpoint->host;
  request.port = endpoint->port;
  request.path = endpoint->base_path.empty() ? "/" : endpoint->base_path + "/";
  request.headers.push_back({"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"});
  request.body = aws_query_body("AssumeRoleWithWebIdentity", std::string(kStsVersion), query);
  auto response = send_get(client, RetryPolicy::from_env(), request);
  if (!response.ok()) return response.error().wrap(what);
  if (response->status < 200 || response->status >= 300) return aws_error(what, *response);
  auto creds = parse_sts_credentials(response->body);
  if (!creds.ok()) return creds.error().wrap(what);
  return creds;
}

Result<std::string> container_credentials_url(const AwsEnv& env) {
  std::string relative = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  if (!relative.empty()) {
    if (relative.front() != '/') relative.insert(0, "/");
    return "http://169.254.170.2" + relative;
  }
  std::string full = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  if (full.empty()) return Error{"neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor _FULL_URI is set"};
  CH_ASSIGN(request, request_from_url(full));
  if (request.scheme == "http" && !is_loopback_or_agent(request.host))
    return Error{"AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http is only allowed to a loopback "
                 "address or the ECS/EKS agent, not '" + request.host + "'"};
  return full;
}

Result<TimedAwsCredentials> fetch_container_credentials(HttpClient& client, const AwsEnv& env) {
  const std::string what = "container credentials endpoint";
  auto url = container_credentials_url(env);
  if (!url.ok()) return url.error().wrap(what);
  auto request = request_from_url(*url);
  if (!request.ok()) return request.error().wrap(what);
  std::string token;
  std::string token_file = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  if (!token_file.empty()) {
    auto t = read_token_file(token_file);
    if (!t.ok()) return t.error().wrap(what + ": authorization token");
    token = *t;
  } else {
    token = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    add_aws_secret(token);
  }
  if (!token.empty()) request->headers.push_back({"Authorization", token});
  auto response = send_get(client, RetryPolicy::from_env(), *request);
  if (!response.ok()) return response.error().wrap(what);
  if (response->status != 200) return aws_error(what, *response);
  return parse_json_credentials(response->body, what, "Token");
}

HttpClient::Config imds_http_config() {
  HttpClient::Config config;
  config.connect_timeout_seconds = 1;
  config.request_timeout_seconds = 5;
  config.stall_seconds = 5;
  config.max_in_flight = 2;
  return config;
}

Result<TimedAwsCredentials> fetch_imds_credentials(HttpClient& client, const AwsEnv& env,
                                                   std::string* role) {
  const std::string what = "instance metadata (IMDSv2)";
  std::string base = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (base.empty())
    base = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") == "IPv6" ? "http://[fd00:ec2::254]"
                                                                        : "http://169.254.169.254";
  while (!base.empty() && base.back() == '/') base.pop_back();
  RetryPolicy policy = RetryPolicy::from_env();
  policy.max_attempts = 2;  // one retry: off EC2 nothing answers, and we must not hang

  auto token_request = request_from_url(base + "/latest/api/token");
  if (!token_request.ok()) return token_request.error().wrap(what);
  token_request->method = "PUT";
  token_request->headers.push_back({"X-aws-ec2-metadata-token-ttl-seconds", std::string(kImdsTokenTtl)});
  auto token_response = send_get(client, policy, *token_request);
  if (!token_response.ok()) return token_response.error().wrap(what);
  if (token_response->status != 200) return aws_error(what + ": PUT /latest/api/token", *token_response);
  const std::string token = trim(token_response->body);
  if (token.empty()) return Error{what + ": empty session token"};
  add_aws_secret(token);

  const std::string creds_path = "/latest/meta-data/iam/security-credentials/";
  auto list = request_from_url(base + creds_path);
  if (!list.ok()) return list.error().wrap(what);
  list->headers.push_back({"X-aws-ec2-metadata-token", token});
  auto list_response = send_get(client, policy, *list);
  if (!list_response.ok()) return list_response.error().wrap(what);
  if (list_response->status == 404) return Error{what + ": no IAM role is attached to this instance"};
  if (list_response->status != 200) return aws_error(what + ": GET " + creds_path, *list_response);
  std::string name = trim(list_response->body);
  name = name.substr(0, name.find('\n'));
  if (name.empty()) return Error{what + ": no IAM role is attached to this instance"};
  if (role != nullptr) *role = name;

  auto get = request_from_url(base + creds_path + aws_uri_encode(name, false));
  if (!get.ok()) return get.error().wrap(what);
  get->headers.push_back({"X-aws-ec2-metadata-token", token});
  auto response = send_get(client, policy, *get);
  if (!response.ok()) return response.error().wrap(what);
  if (response->status != 200) return aws_error(what + ": GET " + creds_path + name, *response);
  const std::string source = what + " role '" + name + "'";
  nlohmann::json doc = nlohmann::json::parse(response->body, nullptr, false);
  if (doc.is_object() && doc.contains("Code") && doc["Code"].is_string() && doc["Code"] != "Success")
    return Error{source + ": Code " + doc["Code"].get<std::string>()};
  return parse_json_credentials(response->body, source, "Token");
}

Result<TimedAwsCredentials> run_credential_process(const std::string& command) {
  const std::string what = "credential_process";
  std::fflush(nullptr);
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return Error{what + ": cannot start /bin/sh: " + std::strerror(errno)};
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  int status = ::pclose(pipe);
  // Register before any error return: the output holds the secrets.
  auto creds = parse_json_credentials(output, what, "SessionToken");
  if (status == -1) return Error{what + ": waiting for the command: " + std::strerror(errno)};
  if (!WIFEXITED(status)) return Error{what + ": command killed by signal " + std::to_string(WTERMSIG(status))};
  if (WEXITSTATUS(status) != 0)
    return Error{what + ": command exited with status " + std::to_string(WEXITSTATUS(status))};
  nlohmann::json doc = nlohmann::json::parse(output, nullptr, false);
  if (doc.is_object() && (!doc.contains("Version") || doc["Version"] != 1))
    return Error{what + ": JSON Version must be 1"};
  return creds;
}

}  // namespace ch
