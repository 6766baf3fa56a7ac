// ASCII case folding, as HTTP compares header names (RFC 9110 section 5.1)
// and URL schemes (RFC 3986 section 3.1), SigV4 lowercases the header names
// it signs, and AWS reads "true"/"TRUE" settings: only A-Z fold; every other
// byte, UTF-8 included, compares exactly, whatever the C locale.
#pragma once

#include <string>
#include <string_view>

namespace ch {

inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string ascii_lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

inline bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

inline bool ascii_istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && ascii_iequals(s.substr(0, prefix.size()), prefix);
}

}  // namespace ch
