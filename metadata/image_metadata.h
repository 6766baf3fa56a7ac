// The per-image YAML (contract.md "The per-image YAML"): inputs written by
// the orchestrator, state written by cloud_helper. This is the only place
// that knows yaml-cpp. Unknown keys and key order survive a load/save round
// trip; values cloud_helper sets replace the old value in place (new keys go
// at the end).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/result.h"

namespace ch {

// A YAML value as cloud_helper sees it: a scalar (kept as its text), a list,
// or a mapping with its key order.
struct MetaValue {
  using List = std::vector<MetaValue>;
  using Map = std::vector<std::pair<std::string, MetaValue>>;
  std::variant<std::string, List, Map> v;

  MetaValue() = default;
  MetaValue(std::string s) : v(std::move(s)) {}  // NOLINT
  MetaValue(const char* s) : v(std::string(s)) {}  // NOLINT
  MetaValue(List l) : v(std::move(l)) {}  // NOLINT
  MetaValue(Map m) : v(std::move(m)) {}  // NOLINT

  bool is_scalar() const { return v.index() == 0; }
  bool is_list() const { return v.index() == 1; }
  bool is_map() const { return v.index() == 2; }
  const std::string& scalar() const { return std::get<0>(v); }
  const List& list() const { return std::get<1>(v); }
  const Map& map() const { return std::get<2>(v); }
  List& list() { return std::get<1>(v); }
  Map& map() { return std::get<2>(v); }
  // Map lookup; nullptr when absent or not a map.
  const MetaValue* find(std::string_view key) const;
};

class ImageMetadata {
 public:
  // Reads and parses PATH. Errors, one line each:
  //   "PATH: No such file or directory"
  //   "PATH: invalid YAML at line L, column C: <parser message>"
  //   "PATH: top level must be a mapping"
  static Result<ImageMetadata> load(const std::string& path);
  static Result<ImageMetadata> parse(const std::string& text, const std::string& path);

  const std::string& path() const { return path_; }
  // Directory of the YAML file; relative paths inside it resolve from here.
  std::string dir() const;
  // Resolves a path from the YAML against dir() (absolute paths unchanged).
  std::string resolve(const std::string& p) const;

  bool has(std::string_view key) const;
  const MetaValue* get(std::string_view key) const;
  // Scalar text of KEY; nullopt when absent or null ("~", "null", empty).
  std::optional<std::string> get_string(std::string_view key) const;
  // true/false/yes/no; error names the key when the value is something else.
  Result<std::optional<bool>> get_bool(std::string_view key) const;
  // A list of scalars, or one scalar as a one-element list.
  std::vector<std::string> get_list(std::string_view key) const;

  // Replaces KEY in place, or appends it.
  void set(std::string_view key, MetaValue value);
  void set_string(std::string_view key, std::string value) { set(key, MetaValue(std::move(value))); }
  void set_uint(std::string_view key, uint64_t value) { set(key, MetaValue(std::to_string(value))); }
  void remove(std::string_view key);
  // Top-level keys in file order.
  std::vector<std::string> keys() const;

  // Serialises the whole document (comments are not preserved; key order is).
  std::string to_yaml() const;
  // Sets metadata_updated, then writes atomically: PATH.tmp-PID, fsync,
  // rename over PATH, fsync the directory. Call with the lock held.
  Status save();

 private:
  std::string path_;
  MetaValue::Map root_;
};

// Exclusive advisory lock (flock) on "PATH.lock" beside the YAML, held for
// the lifetime of the object. Two cloud_helper runs on one image serialise
// instead of corrupting it.
class MetadataLock {
 public:
  static Result<MetadataLock> acquire(const std::string& yaml_path);
  MetadataLock(MetadataLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  MetadataLock(const MetadataLock&) = delete;
  MetadataLock& operator=(const MetadataLock&) = delete;
  ~MetadataLock();

 private:
  explicit MetadataLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// "2026-11-22T03:14:27Z"
std::string utc_now_iso8601();

}  // namespace ch
