#include "lib/grpc_client/channel.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace audiosocket::grpc_client {

absl::StatusOr<std::shared_ptr<Channel>> Channel::Create(event::Dispatcher* loop,
                                                         absl::string_view target,
                                                         Options options) {
  absl::StatusOr<Target> parsed = ParseTarget(target);
  if (!parsed.ok()) return parsed.status();
  if (options.connection.authority.empty()) options.connection.authority = parsed->authority;
  std::shared_ptr<Channel> channel(new Channel(loop, *std::move(parsed), std::move(options)));
  if (channel->target_.names.empty()) {
    channel->UseAddresses(channel->target_.addresses);
  } else {
    std::vector<Address> addresses;
    for (const std::string& name : channel->target_.names) {
      absl::StatusOr<std::vector<Address>> resolved = ResolveName(name);
      if (!resolved.ok()) {
        channel->last_error_ = resolved.status();
        continue;
      }
      addresses.insert(addresses.end(), resolved->begin(), resolved->end());
    }
    channel->UseAddresses(std::move(addresses));
    channel->resolved_at_ = loop->Now();
  }
  return channel;
}

Channel::Channel(event::Dispatcher* loop, Target target, Options options)
    : loop_(loop), target_(std::move(target)), options_(std::move(options)) {}

Channel::~Channel() {
  if (resolver_.joinable()) resolver_.join();
}

void Channel::UseAddresses(std::vector<Address> addresses) {
  std::vector<Backend> backends;
  for (Address& address : addresses) {
    auto same = std::find_if(backends_.begin(), backends_.end(),
                             [&](const Backend& b) { return b.address.text == address.text; });
    if (same != backends_.end()) {
      backends.push_back(std::move(*same));
      backends_.erase(same);
    } else {
      Backend backend;
      backend.address = std::move(address);
      backends.push_back(std::move(backend));
    }
  }
  // Addresses that are gone: their connections finish the streams they
  // carry and take no more.
  for (Backend& gone : backends_) {
    if (gone.connection != nullptr) gone.connection->CloseWhenIdle();
  }
  backends_ = std::move(backends);
  if (next_ >= backends_.size()) next_ = 0;
}

void Channel::ResolveLater(absl::Duration min_age) {
  if (target_.names.empty() || resolving_ || shut_down_) return;
  if (loop_->Now() - resolved_at_ < absl::ToChronoNanoseconds(min_age)) return;
  resolving_ = true;
  if (resolver_.joinable()) resolver_.join();  // finished: it posted its result
  resolver_ = std::thread([weak = weak_from_this(), names = target_.names, loop = loop_] {
    std::vector<Address> addresses;
    absl::Status error;
    for (const std::string& name : names) {
      absl::StatusOr<std::vector<Address>> resolved = ResolveName(name);
      if (!resolved.ok()) {
        error = resolved.status();
        continue;
      }
      addresses.insert(addresses.end(), resolved->begin(), resolved->end());
    }
    loop->Post([weak, addresses = std::move(addresses), error]() mutable {
      auto self = weak.lock();
      if (self == nullptr) return;
      self->resolving_ = false;
      self->resolved_at_ = self->loop_->Now();
      if (self->shut_down_) return;
      // A failed lookup keeps the addresses known before it.
      if (addresses.empty()) {
        self->last_error_ = error;
        return;
      }
      self->UseAddresses(std::move(addresses));
    });
  });
}

Connection* Channel::ConnectionFor(Backend& backend, event::MonoTime now) {
  if (backend.connection != nullptr && backend.connection->takes_new_streams()) {
    return backend.connection.get();
  }
  if (backend.connection != nullptr && backend.connection->closed()) {
    if (!backend.connection->ever_ready()) {
      // Refused or timed out: skip this address for a while.
      last_error_ = backend.connection->close_status();
      backend.backoff = backend.backoff == absl::ZeroDuration()
                            ? options_.first_backoff
                            : std::min(backend.backoff * 2, options_.max_backoff);
      backend.retry_after = now + absl::ToChronoNanoseconds(backend.backoff);
      // The name may point elsewhere now.
      ResolveLater(absl::Seconds(1));
    } else {
      backend.backoff = absl::ZeroDuration();
    }
    backend.connection = nullptr;
  }
  if (now < backend.retry_after) return nullptr;
  if (backend.connection != nullptr) backend.connection->CloseWhenIdle();  // draining
  backend.connection = Connection::Start(loop_, backend.address, options_.connection);
  if (backend.connection->closed()) {
    last_error_ = backend.connection->close_status();
    return nullptr;
  }
  return backend.connection.get();
}

absl::StatusOr<Channel::OpenedStream> Channel::OpenStream(absl::string_view path,
                                                          const Connection::Metadata& metadata,
                                                          absl::Duration timeout,
                                                          std::shared_ptr<StreamHandler> handler) {
  if (shut_down_) return absl::UnavailableError("the bridge is shutting down");
  ResolveLater(options_.resolve_interval);
  const event::MonoTime now = loop_->Now();
  for (size_t i = 0; i < backends_.size(); ++i) {
    Backend& backend = backends_[(next_ + i) % backends_.size()];
    Connection* connection = ConnectionFor(backend, now);
    if (connection == nullptr) continue;
    absl::StatusOr<int32_t> id = connection->OpenStream(path, metadata, timeout, handler);
    if (!id.ok()) {
      last_error_ = id.status();
      continue;
    }
    next_ = (next_ + i + 1) % backends_.size();
    return OpenedStream{backend.connection, *id};
  }
  if (backends_.empty()) ResolveLater(absl::ZeroDuration());
  return absl::UnavailableError(absl::StrCat(
      "no backend address of \"", target_.authority, "\" is reachable",
      last_error_.ok() ? std::string() : absl::StrCat(" (last: ", last_error_.message(), ")")));
}

void Channel::Shutdown(const absl::Status& status) {
  shut_down_ = true;
  for (Backend& backend : backends_) {
    if (backend.connection != nullptr) backend.connection->Close(status);
  }
}

}  // namespace audiosocket::grpc_client
