#include "vigil/core/interrupt.h"

#include <unistd.h>
#include <atomic>
#include <csignal>

namespace vigil {

namespace {
std::atomic<bool> g_interrupted{false};

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

}  // namespace vigil
