#pragma once
/// Progress for long work: a redrawn bar with rate and ETA on a terminal, plain periodic lines otherwise.
/// Writes to stderr so stdout stays machine-readable.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

namespace vigil {

class Progress {
 public:
  /// total == 0: unknown length (counts only). `unit` names what is counted ("img").
  Progress(std::string label, size_t total, std::string unit = "it");
  ~Progress();
  /// Thread-safe.
  void advance(size_t n = 1);
  /// Extra text shown after the bar (e.g. loss values).
  void set_postfix(std::string text);
  void finish();
  /// Forces plain lines (tests, logs) or the bar, overriding TTY detection.
  static void force_tty(int mode);  // -1 auto, 0 plain, 1 bar

 private:
  void render(bool final_line);
  std::string label_, unit_, postfix_;
  size_t total_;
  std::atomic<size_t> done_{0};
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::mutex mu_;
  bool tty_;
  bool finished_ = false;
  int last_percent_logged_ = -1;
};

}  // namespace vigil
