// The query parameters of GET /v1/events and the camera routes: defaults, every filter, and a bad value
// refused with the parameter named (the server answers those with 400).

#include "vigil/serve/event_query.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "vigil/core/error.h"

namespace vigil::serve {
namespace {

using ::testing::HasSubstr;

ParamLookup params(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const char* name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "no error";
}

TEST(EventQuery, DefaultsSelectEverything) {
  const store::EventFilter f = event_filter_from(params({}));
  EXPECT_EQ(f.camera, "");
  EXPECT_EQ(f.since_ms, 0);
  EXPECT_EQ(f.until_ms, 0);
  EXPECT_FALSE(f.ended.has_value());
  EXPECT_EQ(f.limit, 100);
  EXPECT_EQ(f.offset, 0);
}

TEST(EventQuery, ReadsEveryFilter) {
  const store::EventFilter f = event_filter_from(params({{"camera", "door"},
                                                         {"label", " person "},
                                                         {"zone", "porch"},
                                                         {"since", "2026-01-01T00:00:00Z"},
                                                         {"until", "1767225700000"},
                                                         {"ended", "false"},
                                                         {"limit", "5"},
                                                         {"offset", "10"}}));
  EXPECT_EQ(f.camera, "door");
  EXPECT_EQ(f.label, "person");
  EXPECT_EQ(f.zone, "porch");
  EXPECT_EQ(f.since_ms, 1767225600000);
  EXPECT_EQ(f.until_ms, 1767225700000);
  ASSERT_TRUE(f.ended.has_value());
  EXPECT_FALSE(*f.ended);
  EXPECT_EQ(f.limit, 5);
  EXPECT_EQ(f.offset, 10);
  EXPECT_TRUE(*event_filter_from(params({{"ended", "1"}})).ended);
  EXPECT_FALSE(event_filter_from(params({{"ended", ""}})).ended.has_value()) << "empty = any";
}

TEST(EventQuery, BadValuesNameTheParameter) {
  EXPECT_THAT(error_of([] {
                event_filter_from(params({{"since", "yesterday"}}));
              }),
              HasSubstr("since: expected Unix milliseconds or an ISO 8601 UTC time"));
  EXPECT_THAT(error_of([] { event_filter_from(params({{"until", "2026-13-01"}})); }), HasSubstr("until:"));
  EXPECT_THAT(error_of([] { event_filter_from(params({{"ended", "maybe"}})); }), HasSubstr("ended:"));
  EXPECT_THAT(error_of([] { event_filter_from(params({{"limit", "0"}})); }), HasSubstr("limit:"));
  EXPECT_THAT(error_of([] { event_filter_from(params({{"limit", "10001"}})); }), HasSubstr("limit:"));
  EXPECT_THAT(error_of([] { event_filter_from(params({{"offset", "-1"}})); }), HasSubstr("offset:"));
  EXPECT_THAT(error_of([] {
                event_filter_from(params({{"since", "2000"}, {"until", "1000"}}));
              }),
              HasSubstr("until: expected a time after since"));
}

TEST(CameraQuery, IntAndBoolParameters) {
  EXPECT_EQ(int_query(params({}), "quality", 85, 1, 100), 85);
  EXPECT_EQ(int_query(params({{"quality", "100"}}), "quality", 85, 1, 100), 100);
  EXPECT_THAT(error_of([] {
                int_query(params({{"quality", "101"}}), "quality", 85, 1, 100);
              }),
              HasSubstr("quality: expected an integer in 1..100, got '101'"));
  EXPECT_THAT(error_of([] { int_query(params({{"fps", "fast"}}), "fps", 5, 1, 30); }), HasSubstr("fps:"));
  EXPECT_TRUE(bool_query(params({}), "annotated", true));
  EXPECT_FALSE(bool_query(params({{"annotated", "0"}}), "annotated", true));
  EXPECT_TRUE(bool_query(params({{"annotated", "TRUE"}}), "annotated", false));
  EXPECT_THAT(error_of([] {
                bool_query(params({{"annotated", "2"}}), "annotated", true);
              }),
              HasSubstr("annotated: expected true or false"));
}

}  // namespace
}  // namespace vigil::serve
