// audiosocket-echo: a minimal AudioSocket server with no gRPC. It accepts
// calls, expects the UUID first, and echoes every audio message back at once
// (--mode=echo), one message per call every 20 ms on the bridge's tick slots
// (--mode=paced), or only reads (--mode=sink). A hangup or a closed socket
// ends the call; a malformed stream closes it. It is the baseline the bridge
// is benchmarked against (paced: what pacing alone costs, with no backend)
// and the far end of audiosocket-call's tests.
//
// One thread, one dispatcher (lib/event). Logs JSON lines on stderr:
//   {"event":"listening","address":"127.0.0.1:9092"}
//   {"event":"stopped","calls":N,"frames_received":N,"frames_echoed":N,...}

#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/event/stop_signals.h"
#include "lib/net/net.h"
#include "lib/wire/wire.h"
#include "server/playout/tick_slots.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:9092", "address to listen on, HOST:PORT (port 0: any)");
ABSL_FLAG(std::string, mode, "echo",
          "echo (send audio back at once), paced (send it back one message per call every "
          "20 ms, on the bridge's tick slots) or sink (read only)");
ABSL_FLAG(std::string, dialect, "asterisk", "asterisk or extended (how 0x02/0x03 decode)");
ABSL_FLAG(absl::Duration, poll_interval, absl::ZeroDuration(),
          "0: sleep in epoll_wait and wake per readable socket; > 0: look at the "
          "sockets once per interval and never sleep in epoll_wait, so a sender on "
          "the same host does not pay for waking this process on every message "
          "(as a far end on another machine would not)");
ABSL_FLAG(absl::Duration, round_window, absl::ZeroDuration(),
          "as the bridge's --io_round_window: the loop starts a round at most this often "
          "(0: as soon as anything is ready); not with --poll_interval");

namespace {

namespace event = audiosocket::event;
namespace wire = audiosocket::wire;

struct Counters {
  uint64_t calls = 0;
  uint64_t frames_received = 0;
  uint64_t frames_echoed = 0;
  uint64_t echo_dropped = 0;   // the caller's socket was full
  uint64_t paced_dropped = 0;  // paced: more queued than kPacedQueue, oldest dropped
  uint64_t malformed = 0;
};

class Server;

constexpr event::Nanos kFramePeriod = std::chrono::milliseconds(20);
// Paced mode holds at most this many messages a call (160 ms): a caller that
// sends faster than it is paced loses the oldest, as a bounded relay would.
constexpr size_t kPacedQueue = 8;

// One accepted connection. Owned by the server's map; dispatcher thread only.
struct Connection final : public event::FdHandler {
  Connection(Server* server_in, int fd_in, wire::Dialect dialect)
      : server(server_in),
        fd(fd_in),
        decoder(wire::DecoderOptions{.dialect = dialect,
                                     .unknown_kinds = wire::UnknownKindPolicy::kSkip}) {}
  void OnReadable() override;
  void OnWritable() override {}
  Server* server;
  int fd;
  bool have_uuid = false;
  wire::Decoder decoder;
  // Paced mode: encoded messages waiting for their tick, a ring whose
  // buffers keep their capacity (no allocation per message).
  std::array<std::vector<uint8_t>, kPacedQueue> paced;
  size_t paced_head = 0;
  size_t paced_count = 0;
  event::Dispatcher::TimerId tick_timer = 0;
  std::optional<event::MonoTime> first_tick;  // the tick slot it holds
};

enum class Mode { kEcho, kPaced, kSink };

// Accepts on the listening socket and serves every connection, on one
// dispatcher's thread. Owns the connections; borrows the dispatcher.
class Server final : public event::FdHandler {
 public:
  Server(int listen_fd, event::Dispatcher* dispatcher, Mode mode, wire::Dialect dialect)
      : listen_fd_(listen_fd), dispatcher_(dispatcher), mode_(mode), dialect_(dialect) {}

  // The listening socket is readable.
  void OnReadable() override {
    while (true) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      (void)audiosocket::net::SetNoDelay(fd);
      auto connection = std::make_unique<Connection>(this, fd, dialect_);
      if (!dispatcher_->Watch(fd, connection.get(), /*writable=*/false).ok()) {
        close(fd);
        continue;
      }
      connections_[fd] = std::move(connection);
      ++counters_.calls;
    }
  }
  void OnWritable() override {}

  void Readable(int fd) {
    auto it = connections_.find(fd);
    if (it == connections_.end()) return;
    Connection& c = *it->second;
    for (int round = 0; round < 8; ++round) {
      absl::Span<uint8_t> space = c.decoder.PrepareWrite(16384);
      const ssize_t n = recv(fd, space.data(), space.size(), 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Close(fd);
      c.decoder.Commit(static_cast<size_t>(n));
      while (true) {
        absl::StatusOr<std::optional<wire::Message>> next = c.decoder.Next();
        if (!next.ok()) {
          ++counters_.malformed;
          return Close(fd);
        }
        if (!next->has_value()) break;
        const wire::Message& m = **next;
        if (!c.have_uuid) {
          if (!std::holds_alternative<wire::CallUuid>(m)) {
            ++counters_.malformed;
            return Close(fd);
          }
          c.have_uuid = true;
          continue;
        }
        if (std::holds_alternative<wire::Hangup>(m)) {
          // What the caller sent before hanging up goes back first, as the
          // echo would have: the emulator counts it.
          while (c.paced_count > 0) SendPaced(c);
          return Close(fd);
        }
        if (const auto* audio = std::get_if<wire::Audio>(&m)) {
          ++counters_.frames_received;
          if (mode_ == Mode::kEcho) Echo(fd, *audio);
          if (mode_ == Mode::kPaced) Queue(c, *audio);
        }
      }
      if (static_cast<size_t>(n) < space.size()) return;
    }
  }

  void Close(int fd) {
    auto it = connections_.find(fd);
    if (it == connections_.end()) return;
    Connection& c = *it->second;
    if (c.tick_timer != 0) dispatcher_->CancelTimer(c.tick_timer);
    if (c.first_tick.has_value()) slots_.Release(*c.first_tick);
    dispatcher_->Unwatch(fd);
    close(fd);
    // The dispatcher may still hold this round's events for it: destroy it
    // after the round (the fd number may be reused before then).
    if (closed_.empty()) dispatcher_->Post([this] { closed_.clear(); });
    closed_.push_back(std::move(it->second));
    connections_.erase(it);
  }

  std::string Stats() const {
    return absl::StrCat("{\"event\":\"stopped\",\"calls\":", counters_.calls,
                        ",\"open\":", connections_.size(),
                        ",\"frames_received\":", counters_.frames_received,
                        ",\"frames_echoed\":", counters_.frames_echoed,
                        ",\"echo_dropped\":", counters_.echo_dropped,
                        ",\"paced_dropped\":", counters_.paced_dropped,
                        ",\"malformed\":", counters_.malformed, "}\n");
  }

 private:
  void Echo(int fd, const wire::Audio& audio) {
    out_.clear();
    if (!wire::Encode(audio, dialect_, wire::Peer::kAsterisk, &out_).ok()) return;
    SendWhole(fd, out_);
  }

  // One write per message, as Asterisk expects; never blocks the loop. A
  // message the socket cannot take whole is dropped and counted.
  void SendWhole(int fd, const std::vector<uint8_t>& message) {
    const ssize_t n = send(fd, message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == static_cast<ssize_t>(message.size())) {
      ++counters_.frames_echoed;
    } else {
      ++counters_.echo_dropped;
    }
  }

  void Queue(Connection& c, const wire::Audio& audio) {
    if (c.paced_count == kPacedQueue) {
      ++counters_.paced_dropped;
      c.paced_head = (c.paced_head + 1) % kPacedQueue;
      --c.paced_count;
    }
    std::vector<uint8_t>& slot = c.paced[(c.paced_head + c.paced_count) % kPacedQueue];
    slot.clear();
    if (!wire::Encode(audio, dialect_, wire::Peer::kAsterisk, &slot).ok()) return;
    ++c.paced_count;
    if (c.tick_timer != 0) return;
    // The first message starts the call's ticks, on the slot the bridge
    // would give it; one timer for the call's life. A grid point later than
    // the bridge would, so that the caller's next messages, arriving a few
    // microseconds early or late, do not straddle the tick.
    c.first_tick = slots_.Take(dispatcher_->time_source().Now() + audiosocket::TickSlots::kGrid);
    c.tick_timer =
        dispatcher_->RunRepeating(*c.first_tick, [this, fd = c.fd, next = *c.first_tick]() mutable {
          auto it = connections_.find(fd);
          if (it == connections_.end()) return event::MonoTime::max();
          SendPaced(*it->second);
          next += kFramePeriod;
          return next;
        });
  }

  void SendPaced(Connection& c) {
    if (c.paced_count == 0) return;
    const std::vector<uint8_t>& out = c.paced[c.paced_head];
    c.paced_head = (c.paced_head + 1) % kPacedQueue;
    --c.paced_count;
    SendWhole(c.fd, out);
  }

  int listen_fd_;
  event::Dispatcher* dispatcher_;
  Mode mode_;
  audiosocket::TickSlots slots_;
  wire::Dialect dialect_;
  Counters counters_;
  std::vector<uint8_t> out_;
  absl::flat_hash_map<int, std::unique_ptr<Connection>> connections_;
  std::vector<std::unique_ptr<Connection>> closed_;  // destroyed after this round
};

void Connection::OnReadable() { server->Readable(fd); }

// SIGINT or SIGTERM ends the run.
class SignalHandler final : public event::FdHandler {
 public:
  explicit SignalHandler(event::EpollDispatcher* dispatcher) : dispatcher_(dispatcher) {}
  void OnReadable() override {
    stopped = true;
    dispatcher_->Stop();
  }
  void OnWritable() override {}
  bool stopped = false;

 private:
  event::EpollDispatcher* dispatcher_;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "{\"event\":\"error\",\"message\":\"%s\"}\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("a minimal AudioSocket echo/sink server (no gRPC)");
  absl::ParseCommandLine(argc, argv);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  Mode server_mode;
  if (mode == "echo") {
    server_mode = Mode::kEcho;
  } else if (mode == "paced") {
    server_mode = Mode::kPaced;
  } else if (mode == "sink") {
    server_mode = Mode::kSink;
  } else {
    return Fail("--mode must be echo, paced or sink");
  }
  const absl::Duration poll_interval = absl::GetFlag(FLAGS_poll_interval);
  const absl::Duration round_window = absl::GetFlag(FLAGS_round_window);
  if (round_window < absl::ZeroDuration() || round_window > absl::Milliseconds(2)) {
    return Fail("--round_window must be between 0 and 2ms");
  }
  if (poll_interval > absl::ZeroDuration() && round_window > absl::ZeroDuration()) {
    return Fail("--poll_interval and --round_window exclude each other");
  }
  wire::Dialect dialect;
  if (!wire::ParseDialect(absl::GetFlag(FLAGS_dialect), &dialect)) {
    return Fail("--dialect must be asterisk or extended");
  }
  auto hp = audiosocket::net::ParseHostPort(absl::GetFlag(FLAGS_listen));
  if (!hp.ok()) return Fail(std::string(hp.status().message()));
  auto address = audiosocket::net::Resolve(*hp);
  if (!address.ok()) return Fail(std::string(address.status().message()));
  auto listen_fd = audiosocket::net::ListenTcp(*address, 4096);
  if (!listen_fd.ok()) return Fail(std::string(listen_fd.status().message()));
  auto local = audiosocket::net::LocalAddress(*listen_fd);
  if (!local.ok()) return Fail(std::string(local.status().message()));

  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  const int signal_fd = event::BlockStopSignalsIntoFd();

  event::EpollDispatcher dispatcher;
  Server server(*listen_fd, &dispatcher, server_mode, dialect);
  SignalHandler signals(&dispatcher);
  if (absl::Status s = dispatcher.Watch(*listen_fd, &server, false); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  if (signal_fd >= 0) (void)dispatcher.Watch(signal_fd, &signals, false);
  std::fprintf(stderr, "{\"event\":\"listening\",\"address\":\"%s\",\"mode\":\"%s\"}\n",
               local->ToString().c_str(), mode.c_str());
  std::fflush(stderr);

  if (poll_interval > absl::ZeroDuration()) {
    const timespec interval = absl::ToTimespec(poll_interval);
    bool more_ready = false;  // the last round was full: look again at once
    while (!signals.stopped) {
      if (!more_ready) nanosleep(&interval, nullptr);
      more_ready = dispatcher.RunOnce(event::Nanos(0));
    }
  } else {
    dispatcher.set_round_window(absl::ToChronoNanoseconds(round_window));
    dispatcher.Run();  // until a stop signal
  }
  const std::string stats = server.Stats();
  std::fwrite(stats.data(), 1, stats.size(), stderr);
  return 0;
}
