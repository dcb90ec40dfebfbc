#include "vigil/serve/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

namespace vigil::serve {
namespace {

using ::testing::HasSubstr;

TEST(Metrics, RendersCountersGaugesAndCumulativeHistograms) {
  MetricsRegistry r;
  auto& requests = r.add("x_requests_total", "requests by route", MetricType::kCounter, {"route", "status"});
  auto& depth = r.add("x_queue_depth", "waiting", MetricType::kGauge);
  auto& latency = r.add("x_seconds", "latency", MetricType::kHistogram, {}, {0.1, 1});
  requests.inc({"/a", "200"});
  requests.inc({"/a", "200"}, 2);
  requests.inc({"/b\"q", "500"});
  depth.set(7);
  for (double v : {0.05, 0.1, 0.5, 3.0}) latency.observe(v);
  const std::string text = r.render();
  EXPECT_THAT(text,
              HasSubstr("# HELP x_requests_total requests by route\n# TYPE x_requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("x_requests_total{route=\"/a\",status=\"200\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("x_requests_total{route=\"/b\\\"q\",status=\"500\"} 1\n"));  // quote escaped
  EXPECT_THAT(text, HasSubstr("x_queue_depth 7\n"));
  // 0.05 and 0.1 fall in le=0.1 (inclusive upper bounds), 0.5 in le=1, 3.0 only in +Inf.
  EXPECT_THAT(text, HasSubstr("x_seconds_bucket{le=\"0.1\"} 2\nx_seconds_bucket{le=\"1\"} 3\n"
                              "x_seconds_bucket{le=\"+Inf\"} 4\nx_seconds_sum 3.65\nx_seconds_count 4\n"));
  EXPECT_EQ(requests.value({"/a", "200"}), 3);
  EXPECT_EQ(latency.value(), 4);
}

TEST(Metrics, CountsExactlyUnderConcurrentUpdates) {
  MetricsRegistry r;
  auto& c = r.add("c_total", "c", MetricType::kCounter, {"k"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) c.inc({i % 2 ? "odd" : "even"});
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value({"odd"}), 20000);
  EXPECT_EQ(c.value({"even"}), 20000);
}

TEST(Metrics, ReadsThisProcessFromProc) {
  std::vector<char> block(64 << 20, 1);  // touched: resident
  const ProcessStats p = read_process_stats();
  EXPECT_GT(p.resident_bytes, 64.0 * (1 << 20));
  EXPECT_GE(p.virtual_bytes, p.resident_bytes);
  EXPECT_GT(p.start_time_seconds, 1.6e9);
  EXPECT_GE(p.threads, 1);
  EXPECT_EQ(block[12345], 1);
}

}  // namespace
}  // namespace vigil::serve
