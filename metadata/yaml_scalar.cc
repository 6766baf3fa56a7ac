#include "metadata/yaml_scalar.h"

#include <cstdint>
#include <cstdio>
#include <regex>

namespace ch::yaml_scalar {
namespace {

// Characters YAML treats as non-printable or as line breaks beyond '\n':
// C0 controls except TAB, DEL, and the UTF-8 encodings of NEL (U+0085),
// LS (U+2028), PS (U+2029) and BOM (U+FEFF). YAML 1.1 readers break lines on
// NEL/LS/PS, so those must be escaped.
bool has_unprintable(std::string_view s, bool allow_tab, bool allow_newline) {
  for (size_t i = 0; i < s.size(); i++) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c == '\t' && allow_tab) continue;
    if (c == '\n' && allow_newline) continue;
    if (c < 0x20 || c == 0x7F) return true;
    if (c == 0xC2 && i + 1 < s.size() && static_cast<uint8_t>(s[i + 1]) == 0x85) return true;
    if (c == 0xE2 && i + 2 < s.size() && static_cast<uint8_t>(s[i + 1]) == 0x80 &&
        (static_cast<uint8_t>(s[i + 2]) == 0xA8 || static_cast<uint8_t>(s[i + 2]) == 0xA9))
      return true;
    if (c == 0xEF && i + 2 < s.size() && static_cast<uint8_t>(s[i + 1]) == 0xBB &&
        static_cast<uint8_t>(s[i + 2]) == 0xBF)
      return true;
  }
  return false;
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }

}  // namespace

bool plain_syntax_ok(std::string_view s) {
  if (s.empty()) return false;
  if (is_blank(s.front()) || is_blank(s.back())) return false;
  if (has_unprintable(s, /*allow_tab=*/false, /*allow_newline=*/false)) return false;
  // c-indicators cannot start a plain scalar, except '-', '?' and ':' when a
  // non-blank follows (ns-plain-first): "-5", "-.inf", "-foo" are plain.
  static constexpr std::string_view kIndicators = ",[]{}#&*!|>'\"%@`";
  if (kIndicators.find(s.front()) != std::string_view::npos) return false;
  if (s.front() == '-' || s.front() == '?' || s.front() == ':') {
    if (s.size() < 2 || is_blank(s[1])) return false;
  }
  // Document markers.
  if (s.starts_with("---") || s.starts_with("...")) return false;
  if (s.back() == ':') return false;
  for (size_t i = 0; i + 1 < s.size(); i++) {
    if (s[i] == ':' && is_blank(s[i + 1])) return false;  // "a: b" is a mapping
    if (is_blank(s[i]) && s[i + 1] == '#') return false;  // " #" starts a comment
  }
  return true;
}

bool resolves_as_non_string(std::string_view s) {
  // The union of the YAML 1.1 type repository (yaml.org/type: bool, int,
  // float, null, timestamp, merge, value) as PyYAML implements it and the
  // YAML 1.2 core schema. Case-insensitive for the words: quoting `yEs` is
  // harmless, reading it as a bool somewhere would not be.
  static const std::regex kWords(
      "~|null|y|yes|n|no|true|false|on|off|<<|=", std::regex::icase | std::regex::optimize);
  static const std::regex kNumber(
      // 1.1 int: binary, octal (leading 0), decimal, hex, sexagesimal.
      "[-+]?0b[01_]+|[-+]?0[0-7_]+|[-+]?(0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+"
      "|[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+"
      // 1.2 core int.
      "|[-+]?[0-9]+|0o[0-7]+"
      // 1.1 float as the spec writes it (it also matches "1.2.3").
      "|[-+]?([0-9][0-9_]*)?\\.[0-9._]*([eE][-+]?[0-9]+)?"
      "|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\\.[0-9_]*"
      // 1.2 core float.
      "|[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?"
      "|[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)",
      std::regex::optimize);
  static const std::regex kTimestamp(
      "[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
      "(([Tt]|[ \\t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](\\.[0-9]*)?"
      "([ \\t]*(Z|[-+][0-9][0-9]?(:[0-9][0-9])?))?)?",
      std::regex::optimize);
  if (s.empty()) return true;  // null
  // Every pattern starts with one of these; skip the regexes for ordinary words.
  char c = s.front();
  bool maybe = (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == '~' ||
               c == '<' || c == '=' || std::string_view("nNyYtTfFoO").find(c) != std::string_view::npos;
  if (!maybe) return false;
  // std::regex recurses per character; long text is quoted when it could
  // start a number or timestamp, which is harmless for a string.
  if (s.size() > 256) return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.';
  std::string str(s);
  return std::regex_match(str, kWords) || std::regex_match(str, kNumber) ||
         std::regex_match(str, kTimestamp);
}

bool literal_ok(std::string_view s) {
  if (s.find('\n') == std::string_view::npos) return false;
  if (has_unprintable(s, /*allow_tab=*/true, /*allow_newline=*/true)) return false;
  bool seen_content = false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find('\n', start);
    if (end == std::string_view::npos) end = s.size();
    std::string_view line = s.substr(start, end - start);
    if (!line.empty()) {
      if (line.find_first_not_of(" \t") == std::string_view::npos) return false;
      // Block indentation is detected from the first non-empty line.
      if (!seen_content && is_blank(line.front())) return false;
      seen_content = true;
    }
    start = end + 1;
  }
  return seen_content;
}

std::string single_quoted(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

std::string double_quoted(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); i++) {
    auto c = static_cast<uint8_t>(s[i]);
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\t': out += "\\t"; continue;
      case '\r': out += "\\r"; continue;
      case '\0': out += "\\0"; continue;
      default: break;
    }
    if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
      continue;
    }
    if (c == 0xC2 && i + 1 < s.size() && static_cast<uint8_t>(s[i + 1]) == 0x85) {
      out += "\\u0085";  // not "\\N": yaml-cpp 0.7 decodes that to a lone 0x85 byte
      i += 1;
      continue;
    }
    if (c == 0xE2 && i + 2 < s.size() && static_cast<uint8_t>(s[i + 1]) == 0x80 &&
        (static_cast<uint8_t>(s[i + 2]) == 0xA8 || static_cast<uint8_t>(s[i + 2]) == 0xA9)) {
      out += static_cast<uint8_t>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029";
      i += 2;
      continue;
    }
    if (c == 0xEF && i + 2 < s.size() && static_cast<uint8_t>(s[i + 1]) == 0xBB &&
        static_cast<uint8_t>(s[i + 2]) == 0xBF) {
      out += "\\uFEFF";
      i += 2;
      continue;
    }
    out += static_cast<char>(c);
  }
  out += '"';
  return out;
}

std::string quoted(std::string_view s) {
  if (has_unprintable(s, /*allow_tab=*/false, /*allow_newline=*/false)) return double_quoted(s);
  return single_quoted(s);
}

}  // namespace ch::yaml_scalar
