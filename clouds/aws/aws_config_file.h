// The AWS CLI's shared files, ~/.aws/credentials and ~/.aws/config, read as
// botocore reads them (Python configparser; see
// https://docs.aws.amazon.com/sdkref/latest/guide/file-format.html):
//   - "[name]" sections; in the config file a profile is "[profile name]"
//     (or "[default]"), and other bare sections ("[name]", "[sso-session x]",
//     "[services x]") are not profiles;
//   - "key = value" or "key: value", keys case-insensitive (stored
//     lowercase), values trimmed, no inline comments (a value may contain
//     "#");
//   - full-line comments start with "#" or ";"; blank lines are ignored;
//   - an indented "sub = value" under a key with an empty value is a
//     nested setting (the "s3 =" block), stored as "key.sub";
//   - a repeated section adds to the first (later values win).
// A file that does not exist is empty; one that cannot be parsed is an error
// naming the file and line (never the line's text: it may hold a secret).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "clouds/aws/endpoints.h"

namespace ch {

using AwsIniSection = std::map<std::string, std::string>;
using AwsIniSections = std::map<std::string, AwsIniSection>;

// Parses TEXT; PATH only names the file in errors ("PATH:7: ...").
Result<AwsIniSections> parse_aws_ini(std::string_view text, const std::string& path);

struct AwsProfile {
  std::string name;
  AwsIniSection values;  // merged: the credentials file's values win
  // Which file a key came from (for messages: "profile 'ci' in PATH").
  std::map<std::string, std::string> file_of;
  // "" when unset.
  std::string get(const std::string& key) const;
  bool has(const std::string& key) const { return !get(key).empty(); }
};

struct AwsConfigFiles {
  std::string credentials_path;  // AWS_SHARED_CREDENTIALS_FILE, else HOME/.aws/credentials
  std::string config_path;       // AWS_CONFIG_FILE, else HOME/.aws/config
  AwsIniSections credentials;    // sections by name
  AwsIniSections config;         // profiles by name ("profile " prefix removed)

  // Reads both files (a missing file is empty). Errors: unreadable or
  // unparsable files.
  static Result<AwsConfigFiles> load(const AwsEnv& env);
  // The profile NAME from either file; nullopt when neither has it.
  std::optional<AwsProfile> profile(const std::string& name) const;
};

// AWS_PROFILE, else AWS_DEFAULT_PROFILE (older SDKs), else "default".
std::string aws_profile_name(const AwsEnv& env);
// Whether the profile was chosen by a variable rather than defaulted.
bool aws_profile_named(const AwsEnv& env);

}  // namespace ch
