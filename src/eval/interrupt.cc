#include "eval/interrupt.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "util/error.h"

namespace kvbits::eval {

namespace {

// Process-wide by nature (see interrupt.h). Lock-free, hence safe to touch from a handler.
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free);

void write_stderr(const char* s) {
  // write(2) is async-signal-safe; fprintf is not.
  ssize_t ignored = ::write(STDERR_FILENO, s, std::strlen(s));
  (void)ignored;
}

extern "C" void on_sigint(int) {
  if (g_interrupted.exchange(true)) {
    write_stderr("\nkvbits: interrupted again, exiting now\n");
    ::_exit(130);
  }
  write_stderr("\nkvbits: interrupted; finishing the current item and writing a partial result "
               "(Ctrl-C again to quit at once)\n");
}

}  // namespace

SigintScope::SigintScope() {
  g_interrupted.store(false);
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a read() in progress resumes instead of failing with EINTR
  if (::sigaction(SIGINT, &sa, &previous_) != 0) {
    throw Error(std::string("cannot install the SIGINT handler: ") + std::strerror(errno));
  }
}

SigintScope::~SigintScope() { ::sigaction(SIGINT, &previous_, nullptr); }

bool interrupt_requested() { return g_interrupted.load(std::memory_order_relaxed); }

}  // namespace kvbits::eval
