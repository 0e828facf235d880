#include "lib/grpc_client/address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace audiosocket::grpc_client {
namespace {

// Splits "host:port" or "[v6]:port".
absl::Status SplitHostPort(absl::string_view host_port, std::string* host, std::string* port) {
  if (absl::StartsWith(host_port, "[")) {
    const size_t close = host_port.find(']');
    if (close == absl::string_view::npos || close + 1 >= host_port.size() ||
        host_port[close + 1] != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", host_port, "\" is not [ipv6-address]:port"));
    }
    *host = std::string(host_port.substr(1, close - 1));
    *port = std::string(host_port.substr(close + 2));
  } else {
    const size_t colon = host_port.rfind(':');
    if (colon == absl::string_view::npos || host_port.find(':') != colon) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", host_port, "\" is not host:port (the port is required)"));
    }
    *host = std::string(host_port.substr(0, colon));
    *port = std::string(host_port.substr(colon + 1));
  }
  int number = 0;
  if (host->empty() || !absl::SimpleAtoi(*port, &number) || number <= 0 || number > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", host_port, "\" needs a host and a port from 1 to 65535"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Address> LiteralAddress(absl::string_view host_port, int family) {
  std::string host, port;
  if (absl::Status split = SplitHostPort(host_port, &host, &port); !split.ok()) return split;
  Address address;
  address.text = std::string(host_port);
  const auto port_number = static_cast<uint16_t>(std::stoi(port));
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&address.storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(port_number);
    if (inet_pton(AF_INET, host.c_str(), &in->sin_addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("\"", host, "\" is not an IPv4 address"));
    }
    address.length = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port_number);
    if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("\"", host, "\" is not an IPv6 address"));
    }
    address.length = sizeof(sockaddr_in6);
  }
  return address;
}

absl::StatusOr<Target> LiteralTarget(absl::string_view list, int family) {
  Target target;
  for (absl::string_view entry : absl::StrSplit(list, ',')) {
    absl::StatusOr<Address> address = LiteralAddress(entry, family);
    if (!address.ok()) return address.status();
    target.addresses.push_back(*std::move(address));
  }
  target.authority = target.addresses.front().text;
  return target;
}

}  // namespace

absl::StatusOr<Target> ParseTarget(absl::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("the target is empty");
  if (absl::ConsumePrefix(&text, "ipv4:")) return LiteralTarget(text, AF_INET);
  if (absl::ConsumePrefix(&text, "ipv6:")) return LiteralTarget(text, AF_INET6);
  if (absl::ConsumePrefix(&text, "unix:")) {
    absl::ConsumePrefix(&text, "//");
    Address address;
    auto* un = reinterpret_cast<sockaddr_un*>(&address.storage);
    if (text.empty() || text.size() >= sizeof(un->sun_path)) {
      return absl::InvalidArgumentError("a unix: target needs a socket path of at most 107 bytes");
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, text.data(), text.size());
    address.length = sizeof(sockaddr_un);
    address.text = absl::StrCat("unix:", text);
    Target target;
    target.addresses.push_back(std::move(address));
    target.authority = "localhost";
    return target;
  }
  // "dns:///host:port", "dns://authority/host:port" (the DNS server is not
  // chosen here: the system's resolver is used) or "dns:host:port".
  if (absl::ConsumePrefix(&text, "dns:")) {
    if (absl::ConsumePrefix(&text, "//")) {
      const size_t slash = text.find('/');
      if (slash == absl::string_view::npos) {
        return absl::InvalidArgumentError("a dns:// target is dns:///host:port");
      }
      text.remove_prefix(slash + 1);
    }
  } else if (text.find("://") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported target scheme in \"", text,
                     "\" (use host:port, dns:, ipv4:, ipv6: or unix:)"));
  }
  std::string host, port;
  if (absl::Status split = SplitHostPort(text, &host, &port); !split.ok()) return split;
  Target target;
  target.names.push_back(std::string(text));
  target.authority = std::string(text);
  return target;
}

absl::StatusOr<std::vector<Address>> ResolveName(const std::string& host_port) {
  std::string host, port;
  if (absl::Status split = SplitHostPort(host_port, &host, &port); !split.ok()) return split;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve \"", host, "\": ", gai_strerror(rc)));
  }
  std::vector<Address> addresses;
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    Address address;
    std::memcpy(&address.storage, ai->ai_addr, ai->ai_addrlen);
    address.length = ai->ai_addrlen;
    char text[INET6_ADDRSTRLEN] = "";
    if (ai->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, text,
                sizeof(text));
      address.text = absl::StrCat(text, ":", port);
    } else if (ai->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, text,
                sizeof(text));
      address.text = absl::StrCat("[", text, "]:", port);
    } else {
      continue;
    }
    addresses.push_back(std::move(address));
  }
  freeaddrinfo(found);
  if (addresses.empty()) {
    return absl::UnavailableError(absl::StrCat("\"", host, "\" has no IPv4 or IPv6 address"));
  }
  return addresses;
}

}  // namespace audiosocket::grpc_client
