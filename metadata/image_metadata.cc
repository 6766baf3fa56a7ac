// The per-image YAML file: parsed with yaml-cpp's event parser (not its Node
// API, which forgets key order, quoting and duplicate keys), kept as a
// MetaValue tree, and written back by a small emitter of our own so that the
// layout is fixed and each scalar's spelling is chosen deliberately:
//
//   name: alpine-3.21.0-x86_64-uefi-tiny-r0     block mappings, 2-space indent
//   version: '3.21'                             quoted in, quoted out
//   regions:                                    lists in block style
//     - us-east-1
//   artifacts:
//     us-east-1: ami-0123
//   description: |-                             multi-line strings as literals
//     line one
//     line two
//   release_cmd:                                null kept as spelled
//
// Comments are not kept (yaml-cpp does not report them); key order is.
#include "metadata/image_metadata.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sstream>

#include "base/file.h"
#include "metadata/yaml_scalar.h"

namespace ch {

const MetaValue* MetaValue::find(std::string_view key) const {
  if (!is_map()) return nullptr;
  for (const auto& [k, val] : map())
    if (k == key) return &val;
  return nullptr;
}

namespace {

// Metadata files are a few KiB; anything this large is not one.
constexpr uint64_t kMaxFileSize = 16u << 20;

std::string at(const YAML::Mark& m) {
  return "line " + std::to_string(m.line + 1) + ", column " + std::to_string(m.column + 1);
}

// Thrown from inside yaml-cpp's parse loop to stop it; caught in parse() and
// returned as a value.
struct BuildError {
  std::string message;
};

// Builds the MetaValue tree from parser events.
class TreeBuilder : public YAML::EventHandler {
 public:
  explicit TreeBuilder(std::string_view text) : text_(text) {}

  int documents() const { return documents_; }
  std::optional<MetaValue>& root() { return root_; }

  void OnDocumentStart(const YAML::Mark&) override {
    if (++documents_ > 1) throw BuildError{"more than one YAML document"};
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    add(MetaValue(null_spelling(mark), ScalarStyle::kNull), mark, anchor);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) throw BuildError{"unknown alias at " + at(mark)};
    add(it->second, mark, 0);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    // yaml-cpp reports "?" for plain scalars and "!" for quoted and block
    // scalars; an explicit !!str also means "a string".
    bool quoted = tag == "!" || tag == "tag:yaml.org,2002:str";
    add(MetaValue(value, quoted ? ScalarStyle::kQuoted : ScalarStyle::kPlain), mark, anchor);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(MetaValue(MetaValue::List{}), mark, anchor);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(MetaValue(MetaValue::Map{}), mark, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Frame {
    MetaValue value;
    YAML::anchor_t anchor = 0;
    std::optional<std::string> key;  // maps: the key waiting for its value
  };

  // yaml-cpp reports `~`, `null` and an empty value alike; the source text
  // at the mark tells them apart, so the file keeps its spelling.
  std::string null_spelling(const YAML::Mark& mark) const {
    if (mark.pos < 0 || static_cast<size_t>(mark.pos) >= text_.size()) return "";
    std::string_view rest = text_.substr(static_cast<size_t>(mark.pos));
    for (std::string_view word : {"~", "null", "Null", "NULL"}) {
      if (!rest.starts_with(word)) continue;
      if (rest.size() == word.size()) return std::string(word);
      char next = rest[word.size()];
      if (next == ' ' || next == '\t' || next == '\r' || next == '\n' || next == ',' ||
          next == ']' || next == '}' || next == '#')
        return std::string(word);
    }
    return "";
  }

  void check_not_key(const YAML::Mark& mark) {
    if (!stack_.empty() && stack_.back().value.is_map() && !stack_.back().key)
      throw BuildError{"unsupported mapping key (a list or mapping) at " + at(mark)};
  }

  void open(MetaValue v, const YAML::Mark& mark, YAML::anchor_t anchor) {
    check_not_key(mark);
    stack_.push_back(Frame{std::move(v), anchor, std::nullopt});
  }

  void close() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    if (f.anchor) anchors_[f.anchor] = f.value;
    place(std::move(f.value));
  }

  void add(MetaValue v, const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (anchor) anchors_[anchor] = v;
    if (!stack_.empty() && stack_.back().value.is_map() && !stack_.back().key) {
      if (!v.is_scalar() || v.is_null())
        throw BuildError{"unsupported mapping key (" +
                         std::string(v.is_null() ? "null" : "a list or mapping") + ") at " + at(mark)};
      for (const auto& [k, unused] : stack_.back().value.map())
        if (k == v.scalar())
          throw BuildError{"duplicate key '" + k + "' at " + at(mark)};
      stack_.back().key = v.scalar();
      return;
    }
    place(std::move(v));
  }

  void place(MetaValue v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return;
    }
    Frame& top = stack_.back();
    if (top.value.is_list()) {
      top.value.list().push_back(std::move(v));
    } else {
      top.value.map().emplace_back(std::move(*top.key), std::move(v));
      top.key.reset();
    }
  }

  std::string_view text_;
  int documents_ = 0;
  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, MetaValue> anchors_;
  std::optional<MetaValue> root_;
};

// ---- Writing ---------------------------------------------------------------

std::string key_text(const std::string& key, const MetaValue& value) {
  // Keys are strings to cloud_helper; a key like `yes` or `3.21` is quoted
  // so that YAML 1.1 readers do not turn it into a bool or a float.
  if (yaml_scalar::plain_reads_back(key)) return key;
  // The YAML 1.1 merge key (`<<: *base`, its alias expanded by us) stays a
  // merge; PyYAML rejects a plain `<<` whose value is not mapping(s).
  if (key == "<<") {
    bool mergeable = value.is_map();
    if (value.is_list()) {
      mergeable = true;
      for (const auto& item : value.list()) mergeable = mergeable && item.is_map();
    }
    if (mergeable) return key;
  }
  return yaml_scalar::quoted(key);
}

void emit_lines(std::string& out, std::string_view text, int indent) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) out.append(indent, ' ').append(text.substr(start, end - start));
    out += '\n';
    start = end + 1;
  }
}

// Writes " value\n" (or a block scalar header and its lines) after "key:" or "-".
void emit_scalar(std::string& out, const MetaValue& v, int indent) {
  const std::string& s = v.scalar();
  switch (v.style) {
    case ScalarStyle::kNull:
      if (s == "~" || s == "null" || s == "Null" || s == "NULL") out += " " + s;
      out += '\n';
      return;
    case ScalarStyle::kPlain:
      // Plain input text stays plain (its type is the reader's business);
      // text that cannot be plain is a string, so quoting it is safe.
      if (yaml_scalar::plain_syntax_ok(s)) {
        out += " " + s + "\n";
        return;
      }
      break;
    case ScalarStyle::kAuto:
      if (yaml_scalar::plain_reads_back(s)) {
        out += " " + s + "\n";
        return;
      }
      break;
    case ScalarStyle::kQuoted:
      break;
  }
  if (yaml_scalar::literal_ok(s)) {
    // Chomping: "-" strips the final newline, none keeps one, "+" keeps all.
    size_t trailing = 0;
    while (trailing < s.size() && s[s.size() - 1 - trailing] == '\n') trailing++;
    out += trailing == 0 ? " |-\n" : trailing == 1 ? " |\n" : " |+\n";
    emit_lines(out, s, indent + 2);
    return;
  }
  out += " " + yaml_scalar::quoted(s) + "\n";
}

void emit_map(std::string& out, const MetaValue::Map& map, int indent);
void emit_list(std::string& out, const MetaValue::List& list, int indent);

// Writes what follows "key:" or "-" for any value; nested blocks at `indent`.
void emit_value(std::string& out, const MetaValue& v, int indent) {
  if (v.is_scalar()) {
    emit_scalar(out, v, indent - 2);
  } else if (v.is_list()) {
    if (v.list().empty()) {
      out += " []\n";
    } else {
      out += '\n';
      emit_list(out, v.list(), indent);
    }
  } else {
    if (v.map().empty()) {
      out += " {}\n";
    } else {
      out += '\n';
      emit_map(out, v.map(), indent);
    }
  }
}

void emit_map(std::string& out, const MetaValue::Map& map, int indent) {
  for (const auto& [k, v] : map) {
    out.append(indent, ' ');
    out += key_text(k, v);
    out += ':';
    emit_value(out, v, indent + 2);
  }
}

void emit_list(std::string& out, const MetaValue::List& list, int indent) {
  for (const auto& item : list) {
    bool compact = (item.is_map() && !item.map().empty()) || (item.is_list() && !item.list().empty());
    if (!compact) {
      out.append(indent, ' ');
      out += '-';
      emit_value(out, item, indent + 2);
      continue;
    }
    // "- key: value" / "- - item": the nested block is written at indent+2
    // and its first indentation is replaced by the dash.
    std::string nested;
    if (item.is_map())
      emit_map(nested, item.map(), indent + 2);
    else
      emit_list(nested, item.list(), indent + 2);
    out.append(indent, ' ');
    out += "- ";
    out.append(nested, static_cast<size_t>(indent + 2), std::string::npos);
  }
}

bool is_true_word(const std::string& s) {
  static constexpr const char* kWords[] = {"true", "yes", "on"};
  for (const char* w : kWords)
    if (strcasecmp(s.c_str(), w) == 0) return true;
  return false;
}

bool is_false_word(const std::string& s) {
  static constexpr const char* kWords[] = {"false", "no", "off"};
  for (const char* w : kWords)
    if (strcasecmp(s.c_str(), w) == 0) return true;
  return false;
}


}  // namespace

// ---- ImageMetadata ---------------------------------------------------------

Result<ImageMetadata> ImageMetadata::load(const std::string& path) {
  CH_ASSIGN(file, File::open_read(path));
  CH_ASSIGN(size, file.size());
  if (size > kMaxFileSize)
    return Error{path + ": too large for a metadata file (" + std::to_string(size) + " bytes)"};
  std::string text(size, '\0');
  CH_TRY(file.pread_full(0, text.data(), text.size()));
  return parse(text, path);
}

Result<ImageMetadata> ImageMetadata::parse(const std::string& text, const std::string& path) {
  TreeBuilder builder(text);
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(builder)) {
    }
  } catch (const YAML::ParserException& e) {
    return Error{path + ": invalid YAML at " + at(e.mark) + ": " + e.msg};
  } catch (const YAML::Exception& e) {
    return Error{path + ": invalid YAML: " + e.msg};
  } catch (const BuildError& e) {
    return Error{path + ": " + e.message};
  }
  if (!builder.root() || !builder.root()->is_map())
    return Error{path + ": top level must be a mapping"};
  ImageMetadata meta;
  meta.path_ = path;
  meta.root_ = std::move(builder.root()->map());
  return meta;
}

std::string ImageMetadata::dir() const { return dir_of(path_); }

std::string ImageMetadata::resolve(const std::string& p) const {
  if (p.empty() || p.front() == '/') return p;
  std::string d = dir();
  if (d == ".") return p;
  if (d.back() == '/') return d + p;
  return d + "/" + p;
}

bool ImageMetadata::has(std::string_view key) const { return get(key) != nullptr; }

const MetaValue* ImageMetadata::get(std::string_view key) const {
  for (const auto& [k, v] : root_)
    if (k == key) return &v;
  return nullptr;
}

std::optional<std::string> ImageMetadata::get_string(std::string_view key) const {
  const MetaValue* v = get(key);
  if (!v || !v->is_scalar() || v->is_null() || v->scalar().empty()) return std::nullopt;
  return v->scalar();
}

Result<std::optional<bool>> ImageMetadata::get_bool(std::string_view key) const {
  const MetaValue* v = get(key);
  if (!v || v->is_null()) return std::optional<bool>();
  std::string got;
  if (v->is_scalar()) {
    if (is_true_word(v->scalar())) return std::optional<bool>(true);
    if (is_false_word(v->scalar())) return std::optional<bool>(false);
    got = "'" + v->scalar() + "'";
  } else {
    got = v->is_list() ? "a list" : "a mapping";
  }
  return Error{path_ + ": " + std::string(key) + " must be true or false (got " + got + ")"};
}

std::vector<std::string> ImageMetadata::get_list(std::string_view key) const {
  std::vector<std::string> out;
  const MetaValue* v = get(key);
  if (!v || v->is_null()) return out;
  if (v->is_scalar()) {
    out.push_back(v->scalar());
  } else if (v->is_list()) {
    for (const auto& item : v->list())
      if (item.is_scalar() && !item.is_null()) out.push_back(item.scalar());
  }
  return out;
}

void ImageMetadata::set(std::string_view key, MetaValue value) {
  for (auto& [k, v] : root_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  root_.emplace_back(std::string(key), std::move(value));
}

void ImageMetadata::remove(std::string_view key) {
  for (auto it = root_.begin(); it != root_.end(); ++it) {
    if (it->first == key) {
      root_.erase(it);
      return;
    }
  }
}

std::vector<std::string> ImageMetadata::keys() const {
  std::vector<std::string> out;
  out.reserve(root_.size());
  for (const auto& [k, v] : root_) out.push_back(k);
  return out;
}

std::string ImageMetadata::to_yaml() const {
  if (root_.empty()) return "{}\n";
  std::string out;
  emit_map(out, root_, 0);
  return out;
}

Status ImageMetadata::save() {
  ++saves_;
  set_timestamp("metadata_updated", utc_now_iso8601());
  std::string text = to_yaml();

  // A symlinked YAML stays a symlink: replace its target, with the temp file
  // in the target's directory so that rename() is atomic.
  std::string target = path_;
  struct stat st;
  if (::lstat(path_.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    char* real = ::realpath(path_.c_str(), nullptr);
    if (!real) return errno_error(path_);
    target = real;
    std::free(real);
  }
  mode_t mode = 0644;
  if (::stat(target.c_str(), &st) == 0) mode = st.st_mode & 07777;

  std::string tmp = target + ".tmp-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno_error(tmp);
  File file(fd, tmp);
  Status s = file.pwrite_full(0, text.data(), text.size());
  if (s.ok() && ::fchmod(fd, mode) != 0) s = errno_error(tmp);
  if (s.ok()) s = file.sync();
  file.close();
  if (s.ok() && ::rename(tmp.c_str(), target.c_str()) != 0)
    s = Error{target + ": replacing it with " + tmp + ": " + std::strerror(errno)};
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return fsync_dir(dir_of(target));
}

Status require_keys(const ImageMetadata& meta, std::initializer_list<std::string_view> keys,
                    std::string_view action) {
  for (std::string_view key : keys) {
    const MetaValue* v = meta.get(key);
    bool missing = !v || v->is_null() || (v->is_scalar() && v->scalar().empty());
    if (missing)
      return Error{meta.path() + ": " + std::string(action) + " needs " + std::string(key) +
                   " (missing)"};
  }
  return ok_status();
}

// ---- MetadataLock ----------------------------------------------------------

Result<MetadataLock> MetadataLock::acquire(const std::string& yaml_path) {
  std::string lock_path = yaml_path + ".lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return errno_error(lock_path);
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    Error e = errno_error(lock_path);
    ::close(fd);
    return e;
  }
  return MetadataLock(fd);
}

MetadataLock::~MetadataLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

std::string utc_now_iso8601() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace ch
