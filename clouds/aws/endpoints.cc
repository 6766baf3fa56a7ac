// Endpoint resolution is a pure function of (service, region, environment,
// bucket): no I/O, so every precedence rule is a unit test.
#include "clouds/aws/endpoints.h"

#include <unistd.h>

#include <cctype>
#include <charconv>

#include "base/env.h"
#include "clouds/http/ascii_case.h"


namespace ch {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Region names are DNS labels ("us-gov-west-1"); anything else would end up
// inside a host name.
bool valid_region(std::string_view region) {
  if (region.empty() || region.size() > 63) return false;
  for (char c : region)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return region.front() != '-' && region.back() != '-';
}

// Buckets that can be a single DNS label under the S3 host and match its
// wildcard TLS certificate: no dots, no capitals or underscores (legacy
// us-east-1 names), 3..63 characters.
bool virtual_host_bucket(std::string_view bucket) {
  if (bucket.size() < 3 || bucket.size() > 63) return false;
  for (char c : bucket)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return bucket.front() != '-' && bucket.back() != '-';
}

// "scheme://host[:port][/base/path]" of an endpoint override. Queries and
// fragments make no sense in a base URL and are refused, as are user info
// and ports outside 1..65535.
Result<AwsEndpoint> parse_override(std::string_view url, std::string_view from) {
  auto fail = [&](const std::string& why) {
    return Error{"endpoint override " + std::string(from) + "='" + std::string(url) + "': " + why};
  };
  AwsEndpoint e;
  e.overridden = true;
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) return fail("not an http(s) URL");
  std::string scheme(url.substr(0, sep));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https") return fail("not an http(s) URL");
  e.scheme = scheme;
  std::string_view rest = url.substr(sep + 3);
  if (rest.find_first_of("?#") != std::string_view::npos)
    return fail("a query or fragment is not allowed");
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) return fail("user info is not allowed");
  std::string_view host = authority;
  std::string_view port;
  if (starts_with(authority, "[")) {  // IPv6 literal
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("unterminated IPv6 address");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("junk after the IPv6 address");
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
  }
  if (host.empty()) return fail("no host");
  e.host = std::string(host);
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
      return fail("bad port '" + std::string(port) + "'");
    e.port = static_cast<uint16_t>(value);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  e.base_path = std::string(path);
  return e;
}

}  // namespace

std::string_view aws_service_name(AwsService s) {
  switch (s) {
    case AwsService::kS3: return "s3";
    case AwsService::kEc2: return "ec2";
    case AwsService::kEbs: return "ebs";
    case AwsService::kSts: return "sts";
  }
  CH_CHECK(false);
  return "";
}

std::string_view aws_service_env_suffix(AwsService s) {
  switch (s) {
    case AwsService::kS3: return "S3";
    case AwsService::kEc2: return "EC2";
    case AwsService::kEbs: return "EBS";
    case AwsService::kSts: return "STS";
  }
  CH_CHECK(false);
  return "";
}

AwsPartition aws_partition(std::string_view region) {
  if (starts_with(region, "cn-")) return {"aws-cn", "amazonaws.com.cn"};
  if (starts_with(region, "us-gov-")) return {"aws-us-gov", "amazonaws.com"};
  return {"aws", "amazonaws.com"};
}

AwsEnv AwsEnv::from_process() {
  AwsEnv env;
  env.vars = process_environment();
  env.home = env.get("HOME");
  return env;
}

std::string AwsEnv::get(std::string_view name) const {
  auto it = vars.find(std::string(name));
  return it == vars.end() ? std::string() : it->second;
}

Result<AwsEndpoint> resolve_aws_endpoint(AwsService service, std::string_view region,
                                         const AwsEnv& env, std::string_view bucket,
                                         std::string_view profile_endpoint_url) {
  if (!ascii_iequals(env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true")) {
    const std::string service_var = "AWS_ENDPOINT_URL_" + std::string(aws_service_env_suffix(service));
    std::string url = env.get(service_var);
    std::string from = service_var;
    if (url.empty()) {
      url = env.get("AWS_ENDPOINT_URL");
      from = "AWS_ENDPOINT_URL";
    }
    if (url.empty() && !profile_endpoint_url.empty()) {
      url = std::string(profile_endpoint_url);
      from = "endpoint_url";
    }
    if (!url.empty()) {
      CH_ASSIGN(e, parse_override(url, from));
      // Emulators (moto, MinIO, LocalStack) serve every bucket on one host.
      e.s3_path_style = service == AwsService::kS3;
      return e;
    }
  }
  if (region.empty())
    return Error{"no AWS region for " + std::string(aws_service_name(service)) +
                 ": set one in the image YAML, AWS_REGION or the profile"};
  if (!valid_region(region)) return Error{"invalid AWS region '" + std::string(region) + "'"};
  AwsEndpoint e;
  e.host = std::string(aws_service_name(service)) + "." + std::string(region) + "." +
           aws_partition(region).dns_suffix;
  // Dotted names break the *.s3 TLS wildcard; S3 serves them path-style.
  e.s3_path_style = service == AwsService::kS3 && !bucket.empty() && !virtual_host_bucket(bucket);
  return e;
}

}  // namespace ch
