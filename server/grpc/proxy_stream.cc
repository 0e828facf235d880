#include "server/grpc/proxy_stream.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/grpc_client/message_reader.h"

namespace audiosocket {
namespace {

// Copies up to `size` bytes from `buffer` (read from `*offset`) to `out`,
// dropping what was read once it is most of the buffer.
size_t Take(std::string* buffer, size_t* offset, uint8_t* out, size_t size) {
  const size_t n = std::min(size, buffer->size() - *offset);
  std::memcpy(out, buffer->data() + *offset, n);
  *offset += n;
  if (*offset == buffer->size()) {
    buffer->clear();
    *offset = 0;
  } else if (*offset > buffer->size() / 2) {
    buffer->erase(0, *offset);
    *offset = 0;
  }
  return n;
}

// Headers the inner connection sets itself, or that would let the inner
// server compress responses this side cannot read.
bool PassedOn(const std::string& name) {
  return name != "user-agent" && name != "grpc-accept-encoding" && name != "content-length";
}

}  // namespace

class ProxyStream::Outer final : public grpc_server::StreamHandler {
 public:
  explicit Outer(std::shared_ptr<ProxyStream> proxy) : proxy_(std::move(proxy)) {}

  void OnRequestData(absl::string_view data) override {
    ProxyStream& p = *proxy_;
    if (p.inner_done_) return;
    p.request_.append(data.data(), data.size());
    if (p.request_.size() - p.request_offset_ > kMaxBufferedBytes) {
      p.Fail(absl::ResourceExhaustedError(
          "the request's messages came faster than the bridge's service took them"));
      return;
    }
    if (auto inner = p.inner_connection_.lock()) inner->ResumeSending(p.inner_id_);
  }
  void OnRequestEnd() override {
    ProxyStream& p = *proxy_;
    p.request_ended_ = true;
    if (auto inner = p.inner_connection_.lock()) inner->ResumeSending(p.inner_id_);
  }
  size_t ReadBody(uint8_t* out, size_t size, bool* end, absl::Status* status) override {
    ProxyStream& p = *proxy_;
    const size_t n = Take(&p.response_, &p.response_offset_, out, size);
    if (p.inner_done_ && p.response_.empty()) {
      *end = true;
      *status = p.status_;
    }
    return n;
  }
  void OnClose(const absl::Status& status) override {
    ProxyStream& p = *proxy_;
    p.outer_done_ = true;
    if (!p.inner_done_) {
      // The client went away (or its deadline passed): nobody waits for the answer.
      p.inner_done_ = true;
      if (auto inner = p.inner_connection_.lock()) inner->Cancel(p.inner_id_);
    }
  }

 private:
  const std::shared_ptr<ProxyStream> proxy_;
};

class ProxyStream::Inner final : public grpc_client::StreamHandler {
 public:
  explicit Inner(std::shared_ptr<ProxyStream> proxy) : proxy_(std::move(proxy)) {}

  size_t ReadBody(uint8_t* out, size_t size, bool* end) override {
    ProxyStream& p = *proxy_;
    const size_t n = Take(&p.request_, &p.request_offset_, out, size);
    *end = p.request_ended_ && p.request_.empty();
    return n;
  }
  void OnMessage(absl::string_view message) override {
    ProxyStream& p = *proxy_;
    if (p.inner_done_) return;
    if (p.response_.size() - p.response_offset_ > kMaxBufferedBytes) {
      p.Fail(absl::ResourceExhaustedError(
          "the client read the response more slowly than the bridge produced it"));
      return;
    }
    grpc_client::AppendMessagePrefix(message.size(), &p.response_);
    p.response_.append(message.data(), message.size());
    if (auto outer = p.outer_connection_.lock()) outer->ResumeSending(p.outer_id_);
  }
  void OnClose(const absl::Status& status) override {
    ProxyStream& p = *proxy_;
    if (p.inner_done_) return;
    p.inner_done_ = true;
    p.status_ = status;
    if (auto outer = p.outer_connection_.lock()) outer->ResumeSending(p.outer_id_);
  }

 private:
  const std::shared_ptr<ProxyStream> proxy_;
};

ProxyStream::ProxyStream(grpc_server::ServerConnection* outer, int32_t stream_id)
    : outer_connection_(outer->weak_from_this()), outer_id_(stream_id) {}

absl::StatusOr<std::shared_ptr<grpc_server::StreamHandler>> ProxyStream::Open(
    grpc_server::ServerConnection* outer, int32_t stream_id, const grpc_server::RequestHead& head,
    grpc_client::Connection* inner) {
  std::shared_ptr<ProxyStream> proxy(new ProxyStream(outer, stream_id));
  grpc_client::Connection::Metadata metadata;
  for (const auto& [name, value] : head.metadata) {
    if (PassedOn(name)) metadata.emplace_back(name, value);
  }
  // Without a deadline of its own the request may last as long as the
  // client keeps it open (WatchCalls does).
  const absl::Duration timeout = head.timeout.value_or(absl::Hours(24 * 365));
  absl::StatusOr<int32_t> id =
      inner->OpenStream(head.path, metadata, timeout, std::make_shared<Inner>(proxy));
  if (!id.ok()) {
    return absl::UnavailableError(
        absl::StrCat("the bridge cannot serve ", head.path, " now: ", id.status().message()));
  }
  proxy->inner_connection_ = inner->weak_from_this();
  proxy->inner_id_ = *id;
  return std::make_shared<Outer>(proxy);
}

void ProxyStream::Fail(const absl::Status& status) {
  if (!inner_done_) {
    inner_done_ = true;
    if (auto inner = inner_connection_.lock()) inner->Cancel(inner_id_);
  }
  status_ = status;
  response_.clear();
  response_offset_ = 0;
  if (auto outer = outer_connection_.lock()) outer->ResumeSending(outer_id_);
}

}  // namespace audiosocket
