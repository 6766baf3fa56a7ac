#include "clouds/aws/aws_config_file.h"

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <vector>

#include "base/file.h"

namespace ch {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "~/x" in a path variable, as the CLI expands it.
std::string expand_home(const std::string& path, const std::string& home) {
  if (path == "~") return home;
  if (path.rfind("~/", 0) == 0) return home + path.substr(1);
  return path;
}

// A missing file reads as empty (*exists false).
Result<std::string> read_optional_file(const std::string& path, bool* exists) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
    *exists = false;
    return std::string();
  }
  *exists = true;
  CH_ASSIGN(file, File::open_read(path));
  std::string text;
  char buffer[8192];
  for (;;) {
    CH_ASSIGN(n, file.pread_some(text.size(), buffer, sizeof buffer));
    if (n == 0) break;
    text.append(buffer, n);
  }
  return text;
}

// Config file section names to profile names; "" for non-profile sections.
std::string config_profile_name(const std::string& section) {
  if (section == "default") return "default";
  std::string_view s = section;
  if (s.rfind("profile", 0) != 0) return "";
  s.remove_prefix(7);
  if (s.empty() || !is_space(s.front())) return "";
  return std::string(trim(s));
}

}  // namespace

Result<AwsIniSections> parse_aws_ini(std::string_view text, const std::string& path) {
  AwsIniSections out;
  AwsIniSection* section = nullptr;
  std::string nested_parent;  // the key whose indented block we are in
  size_t line_no = 0;
  auto fail = [&](const std::string& why) {
    return Error{path + ":" + std::to_string(line_no) + ": " + why};
  };
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line_no == 1 && raw.substr(0, 3) == "\xEF\xBB\xBF") raw.remove_prefix(3);  // UTF-8 BOM
    std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    const bool indented = is_space(raw.front());

    if (line.front() == '[') {
      size_t close = line.find(']');
      if (close == std::string_view::npos) return fail("section header without ']'");
      std::string_view after = trim(line.substr(close + 1));
      if (!after.empty() && after.front() != '#' && after.front() != ';')
        return fail("text after the section header");
      std::string name(trim(line.substr(1, close - 1)));
      if (name.empty()) return fail("empty section name");
      section = &out[name];
      nested_parent.clear();
      continue;
    }
    size_t delim = line.find_first_of("=:");
    if (delim == std::string_view::npos) return fail("expected 'key = value'");
    std::string key = lowercase(trim(line.substr(0, delim)));
    std::string value(trim(line.substr(delim + 1)));
    if (key.empty()) return fail("empty key");
    if (section == nullptr) return fail("setting outside a [section]");
    if (indented && !nested_parent.empty()) {
      (*section)[nested_parent + "." + key] = value;
      continue;
    }
    if (indented) return fail("unexpected indented line");
    (*section)[key] = value;
    nested_parent = value.empty() ? key : std::string();
  }
  return out;
}

std::string AwsProfile::get(const std::string& key) const {
  auto it = values.find(key);
  return it == values.end() ? std::string() : it->second;
}

Result<AwsConfigFiles> AwsConfigFiles::load(const AwsEnv& env) {
  AwsConfigFiles files;
  files.credentials_path = env.get("AWS_SHARED_CREDENTIALS_FILE");
  if (files.credentials_path.empty()) files.credentials_path = env.home + "/.aws/credentials";
  files.credentials_path = expand_home(files.credentials_path, env.home);
  files.config_path = env.get("AWS_CONFIG_FILE");
  if (files.config_path.empty()) files.config_path = env.home + "/.aws/config";
  files.config_path = expand_home(files.config_path, env.home);

  bool exists = false;
  CH_ASSIGN(credentials_text, read_optional_file(files.credentials_path, &exists));
  CH_ASSIGN(credentials, parse_aws_ini(credentials_text, files.credentials_path));
  files.credentials = std::move(credentials);
  CH_ASSIGN(config_text, read_optional_file(files.config_path, &exists));
  CH_ASSIGN(config, parse_aws_ini(config_text, files.config_path));
  // "[profile default]" and "[default]" are the same profile; the explicit
  // form is read first so that plain "[default]" values win, as in botocore.
  std::vector<std::pair<std::string, AwsIniSection*>> ordered;
  for (auto& [section, values] : config) {
    std::string name = config_profile_name(section);
    if (name.empty()) continue;
    if (section == "default") ordered.emplace_back(name, &values);
    else ordered.insert(ordered.begin(), {name, &values});
  }
  for (auto& [name, values] : ordered)
    for (auto& [k, v] : *values) files.config[name][k] = v;
  return files;
}

std::optional<AwsProfile> AwsConfigFiles::profile(const std::string& name) const {
  auto creds = credentials.find(name);
  auto conf = config.find(name);
  if (creds == credentials.end() && conf == config.end()) return std::nullopt;
  AwsProfile p;
  p.name = name;
  if (conf != config.end())
    for (const auto& [k, v] : conf->second) {
      p.values[k] = v;
      p.file_of[k] = config_path;
    }
  if (creds != credentials.end())
    for (const auto& [k, v] : creds->second) {
      p.values[k] = v;
      p.file_of[k] = credentials_path;
    }
  return p;
}

std::string aws_profile_name(const AwsEnv& env) {
  std::string name = env.get("AWS_PROFILE");
  if (name.empty()) name = env.get("AWS_DEFAULT_PROFILE");
  return name.empty() ? "default" : name;
}

bool aws_profile_named(const AwsEnv& env) {
  return !env.get("AWS_PROFILE").empty() || !env.get("AWS_DEFAULT_PROFILE").empty();
}

}  // namespace ch
