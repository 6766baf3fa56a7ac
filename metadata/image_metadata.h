// The per-image YAML (contract.md "The per-image YAML"): inputs written by
// the orchestrator, state written by cloud_helper. This is the only place
// that knows yaml-cpp. Unknown keys and key order survive a load/save round
// trip; values cloud_helper sets replace the old value in place (new keys go
// at the end).
#pragma once

#include <cstdint>
#include <initializer_list>
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

// How a scalar is written, so that a load/save round trip keeps its meaning
// for other readers (Alpine's Python tooling resolves plain scalars by YAML
// 1.1 rules: `3.21` is a float, `yes` a bool, `2027-05-01` a date).
enum class ScalarStyle : uint8_t {
  // A string set by cloud_helper: written plain when a YAML 1.1 or 1.2 reader
  // would read the plain form back as this same string, quoted otherwise
  // ("yes", "1.0", "null", "", "a: b", "#x", timestamps, ...).
  kAuto,
  // Written plain as is: a plain scalar from the input (number, bool,
  // timestamp, word), or a value whose plain typing is wanted (set_uint,
  // set_bool, set_timestamp). Text that cannot be plain is quoted anyway.
  kPlain,
  // Was quoted (or a block scalar, or tagged !!str) in the input: always a
  // string, written quoted again (multi-line strings as literal blocks).
  kQuoted,
  // YAML null: `~`, `null`, or nothing. The scalar text is the original
  // spelling ("" for nothing) and is written back the same way.
  kNull,
};

// A YAML value as cloud_helper sees it: a scalar (kept as its text), a list,
// or a mapping with its key order.
struct MetaValue {
  using List = std::vector<MetaValue>;
  using Map = std::vector<std::pair<std::string, MetaValue>>;
  std::variant<std::string, List, Map> v;
  ScalarStyle style = ScalarStyle::kAuto;  // meaningful for scalars only

  MetaValue() = default;
  MetaValue(std::string s) : v(std::move(s)) {}  // NOLINT
  MetaValue(const char* s) : v(std::string(s)) {}  // NOLINT
  MetaValue(List l) : v(std::move(l)) {}  // NOLINT
  MetaValue(Map m) : v(std::move(m)) {}  // NOLINT
  MetaValue(std::string s, ScalarStyle st) : v(std::move(s)), style(st) {}

  static MetaValue plain(std::string s) { return MetaValue(std::move(s), ScalarStyle::kPlain); }
  static MetaValue quoted(std::string s) { return MetaValue(std::move(s), ScalarStyle::kQuoted); }
  static MetaValue null() { return MetaValue("null", ScalarStyle::kNull); }

  bool is_null() const { return is_scalar() && style == ScalarStyle::kNull; }
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
  //   "PATH: top level must be a mapping"   (also for an empty file)
  //   "PATH: is a directory"
  //   "PATH: duplicate key 'K' at line L, column C"
  //   "PATH: more than one YAML document"
  //   "PATH: unsupported mapping key (null|a list or mapping) at line L, column C"
  // Lines and columns are 1-based. Comments are dropped; aliases are
  // expanded into copies; tags other than !!str are dropped.
  static Result<ImageMetadata> load(const std::string& path);
  static Result<ImageMetadata> parse(const std::string& text, const std::string& path);

  const std::string& path() const { return path_; }
  // Directory of the YAML file; relative paths inside it resolve from here.
  std::string dir() const;
  // Resolves a path from the YAML against dir() (absolute paths unchanged).
  std::string resolve(const std::string& p) const;

  bool has(std::string_view key) const;
  const MetaValue* get(std::string_view key) const;
  // Scalar text of KEY; nullopt when absent or null ("~", "null", empty),
  // when the value is the empty string, and when it is a list or mapping.
  std::optional<std::string> get_string(std::string_view key) const;
  // true/false/yes/no/on/off in any case; nullopt when absent or null.
  // Anything else: "PATH: KEY must be true or false (got 'X')".
  Result<std::optional<bool>> get_bool(std::string_view key) const;
  // A list of scalars, or one scalar as a one-element list; nulls and
  // non-scalar items are skipped; absent or null gives an empty list.
  std::vector<std::string> get_list(std::string_view key) const;

  // Replaces KEY in place, or appends it.
  void set(std::string_view key, MetaValue value);
  // A string: quoted on output when its plain form would read back as
  // something else (see ScalarStyle::kAuto).
  void set_string(std::string_view key, std::string value) { set(key, MetaValue(std::move(value))); }
  // Written plain, so YAML readers see an integer.
  void set_uint(std::string_view key, uint64_t value) { set(key, MetaValue::plain(std::to_string(value))); }
  // Written plain: true/false.
  void set_bool(std::string_view key, bool value) { set(key, MetaValue::plain(value ? "true" : "false")); }
  // An ISO-8601 timestamp (utc_now_iso8601()), written plain so that YAML 1.1
  // readers (PyYAML) see a timestamp, as for the state keys built, uploaded,
  // imported, signed, published, released, metadata_updated. set_string
  // would quote it and make it a string.
  void set_timestamp(std::string_view key, std::string value) { set(key, MetaValue::plain(std::move(value))); }
  void remove(std::string_view key);
  // Top-level keys in file order.
  std::vector<std::string> keys() const;

  // Serialises the whole document (comments are not preserved; key order is).
  // Block style, 2-space indents, lists as "- item". Keys are strings to us:
  // written plain unless a plain key would read as another type (`yes`,
  // `3.21`), then quoted, so a plain non-string key from the input (`1: x`)
  // comes back as the string '1'.
  std::string to_yaml() const;
  // Sets metadata_updated, then writes atomically: PATH.tmp-PID, fsync,
  // rename over PATH, fsync the directory. Call with the lock held.
  // When PATH is a symlink the link is kept and its target is replaced (the
  // temp file is made beside the target, so the rename stays atomic). The
  // file mode of the old file is kept. On failure the old file is untouched
  // and no temp file is left.
  Status save();
  // How many times save() was called on this object (copies included):
  // a step that checkpointed has written the file, so the final state must
  // be written too even when it equals the state loaded.
  int saves() const { return saves_; }

 private:
  std::string path_;
  int saves_ = 0;
  MetaValue::Map root_;
};

// Exclusive advisory lock (flock) on "PATH.lock" beside the YAML, held for
// the lifetime of the object. Two cloud_helper runs on one image serialise
// instead of corrupting it. The lock file is named after PATH as given, so
// runs must name a symlinked YAML by the same path to exclude each other.
// Blocks until the lock is free; the lock file is created 0644 and kept.
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

// For validating inputs before an action touches anything: the first of
// KEYS that is absent, null or empty gives
//   "PATH: ACTION needs KEY (missing)"
// (a list or mapping value counts as present).
Status require_keys(const ImageMetadata& meta, std::initializer_list<std::string_view> keys,
                    std::string_view action);

}  // namespace ch
