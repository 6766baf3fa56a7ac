#include "base/time.h"

#include <gtest/gtest.h>

namespace ch {
namespace {

TEST(Time, Rfc3339) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:10Z"), 10);
  EXPECT_EQ(parse_rfc3339("2026-12-03T17:14:03.123456Z"), 1796318043);
  EXPECT_EQ(parse_rfc3339("2026-12-03T18:14:03+01:00"), 1796318043);
  EXPECT_FALSE(parse_rfc3339("yesterday"));
  EXPECT_FALSE(parse_rfc3339("2027-02-30T00:00:00Z"));
  EXPECT_EQ(format_rfc3339_utc(1796318043), "2026-12-03T17:14:03Z");
}

// Every cloud deprecates an image at the same instant for the same YAML.
TEST(Time, EndOfLife) {
  EXPECT_EQ(*end_of_life_utc("2027-06-01"), "2027-06-01T23:59:00Z");
  EXPECT_EQ(*end_of_life_utc("2027-06-01T12:00:00Z"), "2027-06-01T12:00:00Z");
  EXPECT_EQ(*end_of_life_utc("2027-06-01T12:00:00+02:00"), "2027-06-01T10:00:00Z");
  EXPECT_EQ(*end_of_life_utc(""), "");
  for (const char* bad : {"next year", "2027-13-01", "2027-02-30", "2027-06-01 12:00"}) {
    auto r = end_of_life_utc(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.message(), "end_of_life '" + std::string(bad) + "' is not a date (YYYY-MM-DD) or an RFC 3339 time");
  }
  EXPECT_EQ(end_of_life_utc("x", "gcp.delete_on").message(),
            "gcp.delete_on 'x' is not a date (YYYY-MM-DD) or an RFC 3339 time");
}

}  // namespace
}  // namespace ch
