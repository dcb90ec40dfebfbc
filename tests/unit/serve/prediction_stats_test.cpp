#include "vigil/serve/prediction_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace vigil::serve {
namespace {

TEST(Percentile, InterpolatesLikeNumpy) {
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0.0), 1);
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 1.0), 4);
  EXPECT_NEAR(percentile({10, 20, 30, 40, 50}, 0.95), 48, 1e-9);  // numpy.percentile(.., 95) = 48
  EXPECT_TRUE(std::isnan(percentile({}, 0.5)));
}

TEST(PredictionStats, CountsByClassHourDayAndMinute) {
  PredictionStats s;
  using namespace std::chrono;
  const auto t = PredictionStats::Clock::time_point(seconds(1764608400));  // 2025-12-01T17:00:00Z
  s.record({{"gun", 0.9f}, {"gun", 0.7f}}, 80, t);
  s.record({{"knife", 0.6f}}, 120, t + minutes(1));
  s.record({}, 100, t + hours(1));
  s.record_error(t + hours(1));
  const auto j = s.to_json(t + hours(1) + minutes(2));
  EXPECT_EQ(j["predictions"], 3);
  EXPECT_EQ(j["errors"], 1);
  EXPECT_EQ(j["requests"], 4);
  EXPECT_EQ(j["by_class"]["gun"]["count"], 2);
  EXPECT_NEAR(j["by_class"]["gun"]["mean_confidence"].get<double>(), 0.8, 1e-6);
  EXPECT_NEAR(j["mean_confidence"].get<double>(), (0.9 + 0.7 + 0.6) / 3, 1e-3);
  EXPECT_EQ(j["by_hour"].size(), 2u);
  EXPECT_EQ(j["by_hour"][0]["hour"], "2025-12-01T17:00:00Z");
  EXPECT_EQ(j["by_hour"][0]["count"], 2);
  EXPECT_EQ(j["by_day"][0]["day"], "2025-12-01");
  EXPECT_EQ(j["by_day"][0]["count"], 3);
  EXPECT_DOUBLE_EQ(j["latency_ms"]["p50"].get<double>(), 100);
  // Only the last 60 minutes before 18:02: 17:00 and 17:01 fell out, 18:00 holds a request and an error.
  ASSERT_EQ(j["recent"].size(), 1u);
  EXPECT_EQ(j["recent"][0]["requests"], 2);
  EXPECT_EQ(j["recent"][0]["errors"], 1);
}

TEST(PredictionStats, EmptyStatsHaveNullsNotNaN) {
  PredictionStats s;
  const auto j = s.to_json();
  EXPECT_TRUE(j["latency_ms"]["p50"].is_null());
  EXPECT_TRUE(j["mean_confidence"].is_null());
  EXPECT_NO_THROW(j.dump());
}

}  // namespace
}  // namespace vigil::serve
