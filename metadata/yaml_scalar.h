// How one scalar is spelled in YAML so that every reader of the per-image
// file gets back what we meant. The readers that matter: yaml-cpp (YAML 1.2,
// us) and PyYAML/ruamel (YAML 1.1, Alpine's tooling). A plain scalar is typed
// by the reader's implicit resolvers (1.1: `yes`/`on` are booleans, `0123`
// octal, `1_000` and `1:30` integers, `2027-05-01` a date; 1.2: `1e3` a
// float), so a string may be written plain only when no resolver of either
// version claims it and the plain grammar accepts it in block context.
#pragma once

#include <string>
#include <string_view>

namespace ch::yaml_scalar {

// The plain grammar in block context: non-empty, no leading/trailing
// blanks, no indicator at the start, no ": " or " #" inside, no trailing ':',
// single line, printable. Conservative: may refuse some valid plain scalars.
bool plain_syntax_ok(std::string_view s);

// True when a YAML 1.1 or 1.2 reader would type the plain scalar as null,
// bool, int, float, timestamp, merge (`<<`) or value (`=`) instead of str.
bool resolves_as_non_string(std::string_view s);

// plain_syntax_ok && !resolves_as_non_string.
inline bool plain_reads_back(std::string_view s) {
  return plain_syntax_ok(s) && !resolves_as_non_string(s);
}

// A multi-line string that a literal block scalar (`|`) carries exactly:
// contains '\n', printable, no '\r', first non-empty line not indented, no
// whitespace-only lines.
bool literal_ok(std::string_view s);

// 'it''s' — only for single-line printable text.
std::string single_quoted(std::string_view s);
// "a\tb\n" with YAML escapes; represents any string.
std::string double_quoted(std::string_view s);
// Single-quoted when that can represent s, double-quoted otherwise.
std::string quoted(std::string_view s);

}  // namespace ch::yaml_scalar
