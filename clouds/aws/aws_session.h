// What every AWS step starts from: the process environment, one HTTP client,
// the credential chain and a signed-call client; plus the YAML readings the
// steps share (home region, tags, architecture, boot mode).
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "clouds/aws/aws_client.h"
#include "clouds/aws/credentials.h"
#include "clouds/aws/ec2.h"
#include "clouds/aws/endpoints.h"
#include "clouds/http/http_client.h"
#include "metadata/image_metadata.h"

namespace ch {

struct AwsSession {
  AwsEnv env;
  std::unique_ptr<HttpClient> http;
  std::unique_ptr<AwsCredentialProvider> credentials;
  std::unique_ptr<AwsClient> client;
};

// Resolves credentials (logged by source) for REGION and builds the clients.
// Errors: no credentials, a broken profile, an invalid endpoint override.
Result<std::unique_ptr<AwsSession>> open_aws_session(const std::string& region);

// The region the image is imported into: import_region once set, else
// `region`, else the first of `regions` (when a list), else AWS_REGION /
// AWS_DEFAULT_REGION / the profile's region. Error when none is known.
Result<std::string> aws_home_region(const ImageMetadata& meta, const AwsEnv& env);

// YAML `tags` (a mapping) plus Name = name. Tag values are strings.
AwsTags aws_image_tags(const ImageMetadata& meta);

// arch → EC2 Architecture: x86_64 → x86_64, aarch64|arm64 → arm64; "" if unknown.
std::string aws_architecture(const std::string& arch);

// firmware → BootMode: uefi → uefi, bios|legacy-bios → legacy-bios,
// uefi-preferred → uefi-preferred, absent → ""; nullopt-like "?" if unknown.
std::string aws_boot_mode(const std::string& firmware);

// A deterministic idempotency token (≤ 64 chars) from PARTS: the same image
// and step give the same token on every run, so EC2/EBS hand back what an
// earlier, killed run created instead of making a second one.
std::string aws_client_token(std::initializer_list<std::string_view> parts);

// checksums.sha256 as the checksum step recorded it; "" when absent.
std::string recorded_sha256(const ImageMetadata& meta);

// The AMI name: `ami_name` when given, else `name`.
std::string aws_ami_name(const ImageMetadata& meta);

}  // namespace ch
