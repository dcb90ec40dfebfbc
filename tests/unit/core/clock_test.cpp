// Times as users type them (Unix ms or ISO 8601 UTC) and as vigil writes them (ISO 8601 UTC to the ms).

#include "vigil/core/clock.h"

#include <gtest/gtest.h>

namespace {

using vigil::format_utc_ms;
using vigil::parse_utc_ms;

TEST(Clock, FormatsMillisecondsAsIsoUtc) {
  EXPECT_EQ(format_utc_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_utc_ms(1767225600123), "2026-01-01T00:00:00.123Z");
  EXPECT_EQ(format_utc_ms(951782400000 + 5), "2000-02-29T00:00:00.005Z");  // a leap day
}

TEST(Clock, ParsesUnixMillisecondsAndIsoForms) {
  EXPECT_EQ(parse_utc_ms("1767225600123"), 1767225600123);
  EXPECT_EQ(parse_utc_ms("0"), 0);
  EXPECT_EQ(parse_utc_ms("2026-01-01"), 1767225600000);
  EXPECT_EQ(parse_utc_ms("2026-01-01T00:00Z"), 1767225600000);
  EXPECT_EQ(parse_utc_ms("2026-01-01T00:00:00Z"), 1767225600000);
  EXPECT_EQ(parse_utc_ms("2026-01-01 00:00:01"), 1767225601000);
  EXPECT_EQ(parse_utc_ms("2026-01-01T00:00:00.123Z"), 1767225600123);
  EXPECT_EQ(parse_utc_ms("2026-01-01T00:00:00.1Z"), 1767225600100);
  EXPECT_EQ(parse_utc_ms("2026-01-01T00:00:00.123456Z"), 1767225600123);
  // An offset east of UTC is earlier in UTC.
  EXPECT_EQ(parse_utc_ms("2026-01-01T02:00:00+02:00"), 1767225600000);
  EXPECT_EQ(parse_utc_ms("2025-12-31T22:00:00-0200"), 1767225600000);
}

TEST(Clock, RoundTripsWhatItWrites) {
  for (int64_t ms : {int64_t{0}, int64_t{1}, int64_t{999}, int64_t{1767225600123}, int64_t{4102444799999}})
    EXPECT_EQ(parse_utc_ms(format_utc_ms(ms)), ms) << format_utc_ms(ms);
}

TEST(Clock, RefusesWhatIsNotATime) {
  for (const char* bad : {"", "yesterday", "-5", "1.5", "2026-13-01", "2026-02-30", "2026-01-01T25:00",
                          "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00+25:00", "2026-01-01Tnoon", "2026-1-1",
                          "1969-12-31", "2026-01-01T00:00:00Zjunk", "99999999999999999999"})
    EXPECT_FALSE(parse_utc_ms(bad).has_value()) << bad;
}

}  // namespace
