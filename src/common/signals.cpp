// Stop-signal handlers: see include/rarlhf/common/signals.h.
#include "rarlhf/common/signals.h"

#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <mutex>
#include <thread>

namespace rarlhf {

std::atomic<bool> g_stop_requested{false};

namespace {
void on_stop_signal(int) { g_stop_requested.store(true); }

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGUSR1}) sigaddset(&set, sig);
  return set;
}
}  // namespace

void take_stop_signals(void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGUSR1}) sigaction(sig, &sa, nullptr);
  static std::once_flag once;
  std::call_once(once, [] {
    std::thread([] {  // the one thread that takes them (whatever mask this process started with)
      unblock_stop_signals();
      for (;;) pause();
    }).detach();
    const sigset_t set = stop_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  });
}

void unblock_stop_signals() {
  const sigset_t set = stop_signals();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

void install_stop_signal_handlers() { take_stop_signals(on_stop_signal); }

}  // namespace rarlhf
