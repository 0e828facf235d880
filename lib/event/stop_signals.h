#ifndef AUDIOSOCKET_BRIDGE_LIB_EVENT_STOP_SIGNALS_H_
#define AUDIOSOCKET_BRIDGE_LIB_EVENT_STOP_SIGNALS_H_

// SIGINT and SIGTERM as a descriptor an event loop watches, for the tools
// that run one loop on their main thread (the emulator, the echo server).

namespace audiosocket::event {

// Ignores SIGPIPE, so that a write to a closed socket fails with EPIPE
// instead of ending the process, and blocks SIGINT and SIGTERM, so that
// they are read from the returned signalfd (non-blocking, close-on-exec)
// on the loop's own thread instead of interrupting it. -1 when no signalfd
// could be made; the signals stay blocked. Call before any other thread
// starts: threads inherit the mask of the thread that created them.
int BlockStopSignalsIntoFd();

}  // namespace audiosocket::event

#endif  // AUDIOSOCKET_BRIDGE_LIB_EVENT_STOP_SIGNALS_H_
