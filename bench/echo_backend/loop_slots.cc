#include "bench/echo_backend/loop_slots.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "bench/echo_backend/echo_stats.h"
#include "bench/echo_backend/framed_replies.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/grpc_client/channel.h"
#include "proto/audiosocket/bridge/v1/bridge.grpc.pb.h"

namespace audiosocket::echo_backend {
namespace {

namespace v1 = bridge::v1;

// A slot that ended, or could not open, is opened again this much later:
// a bridge that refuses streams is not hammered.
constexpr auto kReopenDelay = std::chrono::milliseconds(5);
// Longer than any benchmark step; the bridge ends a claimed stream with its call.
constexpr absl::Duration kStreamTimeout = absl::Hours(24);

const std::string& ClaimCallPath() {
  static const std::string* const path =
      new std::string(absl::StrCat("/", v1::BridgeService::service_full_name(), "/ClaimCall"));
  return *path;
}

// Keeps `slots` streams open. Loop thread only, after Start.
class Worker {
 public:
  Worker(event::Dispatcher* loop, std::shared_ptr<grpc_client::Channel> channel, int slots)
      : loop_(loop), channel_(std::move(channel)), slots_(slots) {}

  // Opens streams until `slots` are open; on a failure, tries again later.
  void OpenSlots();
  // A stream ended (or was cancelled here): its slot is opened again.
  void SlotEnded();

 private:
  void ReopenLater();

  event::Dispatcher* const loop_;
  const std::shared_ptr<grpc_client::Channel> channel_;
  const int slots_;
  int open_ = 0;
  bool reopen_scheduled_ = false;
};

// One ClaimCall stream: the claim, then a PlayAudio for every AudioChunk of
// the call it is given. Held by its connection until the stream ends.
class SlotStream final : public grpc_client::StreamHandler {
 public:
  explicit SlotStream(Worker* worker) : worker_(worker) {
    v1::ClaimCallRequest claim;
    claim.mutable_claim();
    outgoing_.Append(claim);
  }

  void Opened(std::shared_ptr<grpc_client::Connection> connection, int32_t stream_id) {
    connection_ = std::move(connection);
    stream_id_ = stream_id;
  }

  size_t ReadBody(uint8_t* out, size_t size, bool* end) override {
    *end = false;
    const size_t n = outgoing_.Read(out, size);
    paused_ = n == 0;
    return n;
  }

  void OnMessage(absl::string_view message) override {
    if (!response_.ParseFromArray(message.data(), static_cast<int>(message.size()))) {
      g_stats.streams_failed.fetch_add(1, std::memory_order_relaxed);
      // Cancel may drop the connection's hold on this handler (and no
      // OnClose follows): nothing of this object is touched after it.
      Worker* const worker = worker_;
      const std::shared_ptr<grpc_client::Connection> connection = std::move(connection_);
      connection->Cancel(stream_id_);
      worker->SlotEnded();
      return;
    }
    const v1::CallEvent& event = response_.event();
    if (event.has_audio()) {
      request_.Clear();
      OnAudio(event.audio(), &next_offset_, request_.mutable_command());
      outgoing_.Append(request_);
      if (paused_) {
        paused_ = false;
        connection_->ResumeSending(stream_id_);
      }
      return;
    }
    g_stats.other_events.fetch_add(1, std::memory_order_relaxed);
    if (event.has_started()) g_stats.calls.fetch_add(1, std::memory_order_relaxed);
    if (event.has_ended()) g_stats.calls_ended.fetch_add(1, std::memory_order_relaxed);
  }

  void OnClose(const absl::Status& status) override {
    if (!status.ok()) g_stats.streams_failed.fetch_add(1, std::memory_order_relaxed);
    connection_ = nullptr;  // the connection holds this handler: no cycle left
    worker_->SlotEnded();
  }

 private:
  Worker* const worker_;
  std::shared_ptr<grpc_client::Connection> connection_;
  int32_t stream_id_ = 0;
  FramedReplies outgoing_;  // requests not taken by ReadBody yet
  bool paused_ = false;     // ReadBody returned nothing: ResumeSending wakes it
  uint64_t next_offset_ = 0;
  // Reused for every message: parsing into it keeps its buffers.
  v1::ClaimCallResponse response_;
  v1::ClaimCallRequest request_;
};

void Worker::OpenSlots() {
  while (open_ < slots_) {
    auto stream = std::make_shared<SlotStream>(this);
    absl::StatusOr<grpc_client::Channel::OpenedStream> opened =
        channel_->OpenStream(ClaimCallPath(), {}, kStreamTimeout, stream);
    if (!opened.ok()) {
      g_stats.streams_failed.fetch_add(1, std::memory_order_relaxed);
      ReopenLater();
      return;
    }
    stream->Opened(std::move(opened->connection), opened->stream_id);
    ++open_;
  }
}

void Worker::SlotEnded() {
  --open_;
  ReopenLater();
}

void Worker::ReopenLater() {
  if (reopen_scheduled_) return;
  reopen_scheduled_ = true;
  loop_->RunAt(loop_->Now() + kReopenDelay, [this] {
    reopen_scheduled_ = false;
    OpenSlots();
  });
}

}  // namespace

absl::Status StartLoopSlots(const std::string& bridge, int slots, absl::Duration round_window) {
  // Both live until the process exits (echo-backend ends with _Exit).
  auto* loop = new event::EpollDispatcher();
  loop->set_round_window(absl::ToChronoNanoseconds(round_window));
  absl::StatusOr<std::shared_ptr<grpc_client::Channel>> channel =
      grpc_client::Channel::Create(loop, bridge, grpc_client::Channel::Options());
  if (!channel.ok()) return channel.status();
  auto* worker = new Worker(loop, *std::move(channel), slots);
  loop->Post([worker] { worker->OpenSlots(); });
  loop->StartThread();
  return absl::OkStatus();
}

}  // namespace audiosocket::echo_backend
