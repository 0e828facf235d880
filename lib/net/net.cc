#include "lib/net/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace audiosocket::net {
namespace {

absl::Status ErrnoStatus(absl::string_view what, int err) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(err)));
}

}  // namespace

absl::StatusOr<HostPort> ParseHostPort(absl::string_view text) {
  HostPort out;
  absl::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat("address \"", text, "\" must look like [ipv6]:port"));
    }
    out.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("address \"", text, "\" has no port; write host:port, e.g. 0.0.0.0:9092"));
    }
    out.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  if (out.host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", text, "\" has no host; use 0.0.0.0 for every interface"));
  }
  if (!absl::SimpleAtoi(port_text, &out.port) || out.port < 0 || out.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", text, "\" has an invalid port (0-65535)"));
  }
  return out;
}

std::string SocketAddress::ToString() const {
  char host[INET6_ADDRSTRLEN] = {0};
  if (storage.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return absl::StrCat(host, ":", ntohs(in->sin_port));
  }
  if (storage.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    return absl::StrCat("[", host, "]:", ntohs(in6->sin6_port));
  }
  return "unknown";
}

int SocketAddress::port() const {
  if (storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return 0;
}

absl::StatusOr<SocketAddress> Resolve(const HostPort& host_port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* result = nullptr;
  const std::string port = absl::StrCat(host_port.port);
  const int rc = getaddrinfo(host_port.host.c_str(), port.c_str(), &hints, &result);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve \"", host_port.host, "\": ", gai_strerror(rc)));
  }
  SocketAddress address;
  std::memcpy(&address.storage, result->ai_addr, result->ai_addrlen);
  address.length = result->ai_addrlen;
  freeaddrinfo(result);
  return address;
}

absl::StatusOr<int> ListenTcp(const SocketAddress& address, int backlog) {
  const int fd = ::socket(address.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket", errno);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoStatus(absl::StrCat("bind ", address.ToString()), err);
  }
  if (::listen(fd, backlog) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoStatus(absl::StrCat("listen ", address.ToString()), err);
  }
  return fd;
}

absl::StatusOr<SocketAddress> LocalAddress(int fd) {
  SocketAddress address;
  address.length = sizeof(address.storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address.storage), &address.length) != 0) {
    return ErrnoStatus("getsockname", errno);
  }
  return address;
}

absl::StatusOr<SocketAddress> PeerAddress(int fd) {
  SocketAddress address;
  address.length = sizeof(address.storage);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&address.storage), &address.length) != 0) {
    return ErrnoStatus("getpeername", errno);
  }
  return address;
}

absl::StatusOr<Cidr> ParseCidr(absl::string_view text) {
  Cidr cidr;
  absl::string_view address = text;
  int prefix = -1;
  if (const size_t slash = text.find('/'); slash != absl::string_view::npos) {
    address = text.substr(0, slash);
    if (!absl::SimpleAtoi(text.substr(slash + 1), &prefix)) prefix = -2;
  }
  const std::string host(address);
  if (inet_pton(AF_INET, host.c_str(), cidr.address) == 1) {
    cidr.family = AF_INET;
    cidr.prefix_bits = prefix == -1 ? 32 : prefix;
    if (cidr.prefix_bits < 0 || cidr.prefix_bits > 32) {
      return absl::InvalidArgumentError(
          absl::StrCat("network \"", text, "\" has an invalid prefix length (0-32)"));
    }
  } else if (inet_pton(AF_INET6, host.c_str(), cidr.address) == 1) {
    cidr.family = AF_INET6;
    cidr.prefix_bits = prefix == -1 ? 128 : prefix;
    if (cidr.prefix_bits < 0 || cidr.prefix_bits > 128) {
      return absl::InvalidArgumentError(
          absl::StrCat("network \"", text, "\" has an invalid prefix length (0-128)"));
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a network; write e.g. 10.0.0.0/8 or fd00::/8"));
  }
  return cidr;
}

bool CidrContains(const Cidr& cidr, const SocketAddress& address) {
  const uint8_t* bytes = nullptr;
  int family = address.storage.ss_family;
  if (family == AF_INET) {
    bytes = reinterpret_cast<const uint8_t*>(
        &reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_addr);
  } else if (family == AF_INET6) {
    bytes = reinterpret_cast<const uint8_t*>(
        &reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_addr);
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (cidr.family == AF_INET && std::memcmp(bytes, kMapped, 12) == 0) {
      bytes += 12;
      family = AF_INET;
    }
  } else {
    return false;
  }
  if (family != cidr.family) return false;
  const int full = cidr.prefix_bits / 8;
  if (std::memcmp(bytes, cidr.address, static_cast<size_t>(full)) != 0) return false;
  const int rest = cidr.prefix_bits % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (bytes[full] & mask) == (cidr.address[full] & mask);
}

absl::Status SetNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus("fcntl O_NONBLOCK", errno);
  }
  return absl::OkStatus();
}

absl::Status SetNoDelay(int fd) {
  const int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    return ErrnoStatus("setsockopt TCP_NODELAY", errno);
  }
  return absl::OkStatus();
}

}  // namespace audiosocket::net
