// Where each AWS service lives for a region, and how to reach it locally.
//
// Partitions (https://docs.aws.amazon.com/whitepapers/latest/aws-fault-isolation-boundaries/partitions.html):
//   aws         regions like us-east-1, eu-west-2 ...   dns suffix amazonaws.com
//   aws-cn      cn-north-1, cn-northwest-1              amazonaws.com.cn
//   aws-us-gov  us-gov-west-1, us-gov-east-1            amazonaws.com
// Default hosts: ec2.REGION.SUFFIX, ebs.REGION.SUFFIX, sts.REGION.SUFFIX,
// s3.REGION.SUFFIX (buckets addressed virtual-hosted: BUCKET.s3.REGION.SUFFIX,
// except names with dots, which go path-style).
//
// Overrides, as the AWS SDKs read them
// (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html):
// AWS_ENDPOINT_URL_<SERVICE> (S3, EC2, EBS, STS), else AWS_ENDPOINT_URL,
// else the profile's endpoint_url; AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true
// disables them. An overridden endpoint is used for every region as given
// (scheme, host, port, base path) and S3 goes path-style on it, which is
// what moto, MinIO and LocalStack expect.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "base/result.h"

namespace ch {

enum class AwsService { kS3, kEc2, kEbs, kSts };
std::string_view aws_service_name(AwsService s);     // "s3" | "ec2" | "ebs" | "sts" (also the SigV4 service)
std::string_view aws_service_env_suffix(AwsService s);  // "S3" | "EC2" | "EBS" | "STS"

struct AwsPartition {
  std::string name;        // "aws" | "aws-cn" | "aws-us-gov"
  std::string dns_suffix;  // "amazonaws.com" | "amazonaws.com.cn"
};
// From the region's prefix ("cn-" -> aws-cn, "us-gov-" -> aws-us-gov, else aws).
AwsPartition aws_partition(std::string_view region);

struct AwsEndpoint {
  std::string scheme = "https";
  std::string host;
  uint16_t port = 0;          // 0: scheme default
  std::string base_path;      // "" or "/prefix" (no trailing slash), from an override URL
  bool overridden = false;    // came from AWS_ENDPOINT_URL*
  bool s3_path_style = false; // S3 only: /BUCKET/KEY instead of BUCKET.host/KEY
};

// The environment the AWS pieces read, as a value (tests build their own).
struct AwsEnv {
  std::map<std::string, std::string> vars;  // environment variables
  std::string home;                         // $HOME, for ~/.aws/*
  static AwsEnv from_process();
  std::string get(std::string_view name) const;  // "" when unset
};

// The endpoint of SERVICE in REGION. BUCKET only matters for S3 (virtual
// host vs path style). Errors: an override that is not an http(s) URL.
Result<AwsEndpoint> resolve_aws_endpoint(AwsService service, std::string_view region,
                                         const AwsEnv& env, std::string_view bucket = {},
                                         std::string_view profile_endpoint_url = {});

}  // namespace ch
