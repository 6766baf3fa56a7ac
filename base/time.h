// Times as the image YAML and the clouds' APIs write them: RFC 3339 in UTC.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace ch {

// Seconds since the epoch of an RFC 3339 time ("2026-12-03T17:14:03Z",
// fractions and offsets allowed); nullopt when unparsable or not a real
// calendar time (2027-02-30 is refused).
std::optional<int64_t> parse_rfc3339(std::string_view text);

// "YYYY-MM-DDTHH:MM:SSZ" of SECONDS since the epoch.
std::string format_rfc3339_utc(int64_t seconds);

// The image's end_of_life as an RFC 3339 UTC time: a date ("2027-06-01")
// means the end of that day, 23:59:00 UTC (Alpine's convention; EC2 keeps
// deprecation times to the minute, so every cloud gets the same instant); a
// timestamp is normalised to UTC. "" for "". WHAT names the field in the
// error ("end_of_life", "gcp.obsolete_on").
Result<std::string> end_of_life_utc(std::string_view value, std::string_view what = "end_of_life");

}  // namespace ch
