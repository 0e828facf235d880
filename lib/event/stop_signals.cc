#include "lib/event/stop_signals.h"

#include <signal.h>
#include <sys/signalfd.h>

namespace audiosocket::event {

int BlockStopSignalsIntoFd() {
  signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  return signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
}

}  // namespace audiosocket::event
