#pragma once
// Ctrl-C during an evaluation: the first SIGINT only sets a flag, which the runner polls between
// items to stop and write a partial result (complete = false); a second SIGINT exits the process
// at once (status 130), for when the current item takes too long.
//
// The flag is the one piece of global state in the evaluation code: a signal handler can reach
// nothing else, and a signal is delivered to the whole process anyway.
#include <signal.h>

namespace kvbits::eval {

// Installs the handler for its lifetime and clears the flag; restores the previous SIGINT
// disposition on destruction. Not nestable (one at a time per process).
class SigintScope {
 public:
  SigintScope();
  ~SigintScope();
  SigintScope(const SigintScope&) = delete;
  SigintScope& operator=(const SigintScope&) = delete;

 private:
  struct sigaction previous_;  // the disposition to restore
};

// True once SIGINT arrived inside a SigintScope (until the next scope starts).
bool interrupt_requested();

}  // namespace kvbits::eval
