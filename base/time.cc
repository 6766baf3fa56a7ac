#include "base/time.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace ch {

std::optional<int64_t> parse_rfc3339(std::string_view text) {
  std::string s(text);
  int y, mo, d, h, mi, sec;
  char tail[64] = {0};
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%63s", &y, &mo, &d, &h, &mi, &sec, tail) < 6) return std::nullopt;
  std::string rest = tail;
  if (!rest.empty() && rest[0] == '.') {
    size_t i = 1;
    while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i]))) ++i;
    rest = rest.substr(i);
  }
  int64_t offset = 0;
  if (rest == "Z" || rest == "z" || rest.empty()) {
  } else if ((rest[0] == '+' || rest[0] == '-') && rest.size() == 6 && rest[3] == ':') {
    offset = (std::atoi(rest.substr(1, 2).c_str()) * 60 + std::atoi(rest.substr(4, 2).c_str())) * 60;
    if (rest[0] == '-') offset = -offset;
  } else {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  std::tm in = tm;
  int64_t t = static_cast<int64_t>(timegm(&tm));
  // timegm normalises 02-30 to 03-02: a field that moved was out of range.
  if (tm.tm_mday != in.tm_mday || tm.tm_mon != in.tm_mon || tm.tm_hour != in.tm_hour || tm.tm_min != in.tm_min)
    return std::nullopt;
  return t - offset;
}

std::string format_rfc3339_utc(int64_t seconds) {
  char buf[32];
  std::time_t tt = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<std::string> end_of_life_utc(std::string_view value, std::string_view what) {
  std::string v(value);
  if (v.empty()) return std::string();
  std::optional<int64_t> t;
  if (v.size() == 10) t = parse_rfc3339(v + "T23:59:00Z");
  else if (v.size() >= 20 && v[10] == 'T') t = parse_rfc3339(v);
  if (!t) return Error{std::string(what) + " '" + v + "' is not a date (YYYY-MM-DD) or an RFC 3339 time"};
  return format_rfc3339_utc(*t);
}

}  // namespace ch
