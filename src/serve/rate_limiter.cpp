#include "vigil/serve/rate_limiter.h"

#include <cmath>

#include "vigil/core/error.h"
#include "vigil/core/strings.h"

namespace vigil::serve {

namespace {
/// Buckets kept before idle (full) ones are dropped: bounds memory against many distinct clients.
constexpr size_t kMaxBuckets = 10000;
}  // namespace

RateLimit RateLimit::parse(const std::string& text) {
  RateLimit r;
  if (trim(text).empty()) return r;
  const auto parts = split(text, '/');
  const auto n = parts.size() == 2 ? parse_double(trim(parts[0])) : std::nullopt;
  const std::string unit = parts.size() == 2 ? to_lower(trim(parts[1])) : "";
  double period = 0;
  if (unit == "second" || unit == "s" || unit == "sec") period = 1;
  if (unit == "minute" || unit == "min" || unit == "m") period = 60;
  if (unit == "hour" || unit == "h") period = 3600;
  VIGIL_CHECK(n && *n > 0 && period > 0,
              "expected a rate limit like 10/minute (N/second, N/minute or N/hour, N > 0), got '{}'", text);
  r.requests = *n;
  r.period_s = period;
  return r;
}

int RateLimiter::acquire(const std::string& client, Clock::time_point now) {
  if (!limit_.enabled()) return 0;
  std::lock_guard lock(mutex_);
  if (buckets_.size() >= kMaxBuckets) evict_full_buckets(now);
  auto [it, inserted] = buckets_.try_emplace(client, Bucket{limit_.requests, now});
  Bucket& b = it->second;
  const double rate = limit_.requests / limit_.period_s;  // tokens per second
  const double elapsed = std::chrono::duration<double>(now - b.last).count();
  b.tokens = std::min(limit_.requests, b.tokens + elapsed * rate);
  b.last = now;
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1 - b.tokens) / rate)));
}

void RateLimiter::evict_full_buckets(Clock::time_point now) {
  const double rate = limit_.requests / limit_.period_s;
  std::erase_if(buckets_, [&](const auto& kv) {
    const double elapsed = std::chrono::duration<double>(now - kv.second.last).count();
    return kv.second.tokens + elapsed * rate >= limit_.requests;
  });
}

}  // namespace vigil::serve
