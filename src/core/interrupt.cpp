#include "vigil/core/interrupt.h"

#include <unistd.h>
#include <atomic>
#include <csignal>

namespace vigil {

namespace {
std::atomic<bool> g_interrupted{false};
std::atomic<bool> g_reload{false};

void on_hangup(int) {
  g_reload = true;
}

void on_signal(int) {
  if (g_interrupted.exchange(true)) _exit(130);  // second signal: the user means it
}
}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interrupt_requested() {
  return g_interrupted.load(std::memory_order_relaxed);
}
void request_interrupt() {
  g_interrupted = true;
}
void clear_interrupt() {
  g_interrupted = false;
}

void install_reload_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_hangup;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGHUP, &sa, nullptr);
}
bool take_reload_request() {
  return g_reload.exchange(false);
}
void request_reload() {
  g_reload = true;
}

}  // namespace vigil
