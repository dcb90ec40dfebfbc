#pragma once
/// Per-client token buckets (the guns seed limits /predict/ to 10 requests a minute per client with slowapi).

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace vigil::serve {

/// "N/second", "N/minute", "N/hour" (also "N/s", "N/min", "N/h"); an empty string = no limit.
struct RateLimit {
  double requests = 0;  ///< tokens per period; also the burst size
  double period_s = 0;
  bool enabled() const { return requests > 0; }
  /// Throws InvalidArgument naming the expected form.
  static RateLimit parse(const std::string& text);
};

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RateLimiter(RateLimit limit) : limit_(limit) {}

  /// Takes one token from `client`'s bucket. Returns 0 when allowed, else the seconds until a token is
  /// available (>= 1, for Retry-After).
  int acquire(const std::string& client, Clock::time_point now = Clock::now());
  bool enabled() const { return limit_.enabled(); }

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point last;
  };
  void evict_full_buckets(Clock::time_point now);

  RateLimit limit_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace vigil::serve
