#include "vigil/serve/rate_limiter.h"

#include <gtest/gtest.h>

#include "vigil/core/error.h"

namespace vigil::serve {
namespace {

using namespace std::chrono_literals;

TEST(RateLimit, ParsesTheUsualForms) {
  EXPECT_EQ(RateLimit::parse("10/minute").requests, 10);
  EXPECT_EQ(RateLimit::parse("10/minute").period_s, 60);
  EXPECT_EQ(RateLimit::parse("5/s").period_s, 1);
  EXPECT_EQ(RateLimit::parse("100 / hour").period_s, 3600);
  EXPECT_FALSE(RateLimit::parse("").enabled());
  for (const char* bad : {"10", "10/fortnight", "-1/minute", "x/minute", "0/s"})
    EXPECT_THROW(RateLimit::parse(bad), InvalidArgument) << bad;
}

TEST(RateLimiter, AllowsTheBurstThenRefillsAtTheRate) {
  RateLimiter limiter(RateLimit::parse("10/minute"));  // one token every 6 s
  const auto t0 = RateLimiter::Clock::now();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(limiter.acquire("a", t0), 0) << i;
  EXPECT_EQ(limiter.acquire("a", t0), 6);         // empty: the next token is 6 s away
  EXPECT_EQ(limiter.acquire("a", t0 + 3s), 3);    // half a token refilled
  EXPECT_EQ(limiter.acquire("a", t0 + 6s), 0);    // one token
  EXPECT_EQ(limiter.acquire("b", t0 + 6s), 0);    // another client has its own bucket
  EXPECT_EQ(limiter.acquire("a", t0 + 600s), 0);  // refill is capped at the burst...
  for (int i = 0; i < 9; ++i) EXPECT_EQ(limiter.acquire("a", t0 + 600s), 0);
  EXPECT_GT(limiter.acquire("a", t0 + 600s), 0);  // ...of 10
}

TEST(RateLimiter, DisabledLimiterAlwaysAllows) {
  RateLimiter limiter(RateLimit{});
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(limiter.acquire("a"), 0);
}

}  // namespace
}  // namespace vigil::serve
