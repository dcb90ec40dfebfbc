#include "vigil/core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

namespace vigil {

namespace {
std::atomic<int> g_tty_mode{-1};

std::string format_duration(double seconds) {
  if (seconds < 0 || seconds > 1e7) return "?";
  auto s = static_cast<long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{:02}:{:02}", s / 60, s % 60);
}
}  // namespace

void Progress::force_tty(int mode) {
  g_tty_mode = mode;
}

Progress::Progress(std::string label, size_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
  int mode = g_tty_mode.load();
  tty_ = mode == -1 ? isatty(STDERR_FILENO) != 0 : mode == 1;
}

Progress::~Progress() {
  finish();
}

void Progress::advance(size_t n) {
  done_ += n;
  auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  if (tty_) {
    if (now - last_draw_ >= std::chrono::milliseconds(100)) render(false);
    return;
  }
  // Plain mode: a line every 10% of a known total, or every 10 s.
  if (total_ > 0) {
    int pct = static_cast<int>(100.0 * done_ / total_) / 10 * 10;
    if (pct > last_percent_logged_ && pct < 100) {
      last_percent_logged_ = pct;
      render(false);
    }
  } else if (now - last_draw_ >= std::chrono::seconds(10)) {
    render(false);
  }
}

void Progress::set_postfix(std::string text) {
  std::lock_guard<std::mutex> lock(mu_);
  postfix_ = std::move(text);
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  render(true);
}

void Progress::render(bool final_line) {
  auto now = std::chrono::steady_clock::now();
  last_draw_ = now;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  size_t done = done_.load();
  double rate = elapsed > 0 ? done / elapsed : 0.0;
  std::string line;
  if (total_ > 0) {
    double frac = std::min(1.0, static_cast<double>(done) / total_);
    double eta = rate > 0 ? (total_ - std::min(done, total_)) / rate : -1;
    if (tty_) {
      constexpr int kWidth = 28;
      int filled = static_cast<int>(frac * kWidth);
      line = fmt::format("\r{} {:3.0f}% |{}{}| {}/{} [{}<{}, {:.1f} {}/s] {}", label_, frac * 100,
                         std::string(filled, '#'), std::string(kWidth - filled, '.'), done, total_,
                         format_duration(elapsed), format_duration(eta), rate, unit_, postfix_);
    } else {
      line = fmt::format("{}: {}/{} ({:.0f}%) elapsed {} eta {} {:.1f} {}/s {}", label_, done, total_,
                         frac * 100, format_duration(elapsed), format_duration(eta), rate, unit_, postfix_);
    }
  } else {
    line = fmt::format("{}{}: {} {} [{}, {:.1f} {}/s] {}", tty_ ? "\r" : "", label_, done, unit_,
                       format_duration(elapsed), rate, unit_, postfix_);
  }
  if (tty_) {
    std::fputs(line.c_str(), stderr);
    std::fputs("\x1b[K", stderr);
    if (final_line) std::fputs("\n", stderr);
  } else {
    std::fputs(line.c_str(), stderr);
    std::fputs("\n", stderr);
  }
  std::fflush(stderr);
}

}  // namespace vigil
