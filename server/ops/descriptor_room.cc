#include "server/ops/descriptor_room.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>

namespace audiosocket {
namespace {

// Descriptors beyond the calls' sockets: listeners, backend and gRPC
// connections (a few per loop), epoll, timer and event descriptors per
// loop, the metrics server and its clients, logs.
constexpr uint64_t kHeadroom = 256;

}  // namespace

uint64_t DescriptorTableSlots(int pid) {
  std::ifstream status(pid == 0 ? std::string("/proc/self/status")
                                : "/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("FDSize:", 0) == 0) return std::strtoull(line.c_str() + 7, nullptr, 10);
  }
  return 0;
}

uint64_t DescriptorsForCalls(int max_calls) {
  return static_cast<uint64_t>(std::max(max_calls, 0)) + kHeadroom;
}

DescriptorRoom ReserveDescriptors(uint64_t wanted) {
  DescriptorRoom room;
  room.wanted = wanted;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted) {
      rlimit raised = limit;
      raised.rlim_cur =
          limit.rlim_max == RLIM_INFINITY ? wanted : std::min<rlim_t>(wanted, limit.rlim_max);
      if (raised.rlim_cur > limit.rlim_cur && setrlimit(RLIMIT_NOFILE, &raised) == 0) {
        limit = raised;
        room.limit_raised = true;
      }
    }
    room.soft_limit = limit.rlim_cur == RLIM_INFINITY ? UINT64_MAX : limit.rlim_cur;
    room.hard_limit = limit.rlim_max == RLIM_INFINITY ? UINT64_MAX : limit.rlim_max;
  }
  // A descriptor numbered just below the target makes the kernel grow the
  // table to hold it; closing it leaves the table as it is.
  const uint64_t target = std::min(wanted, room.soft_limit);
  if (target > 0) {
    const int probe = eventfd(0, EFD_CLOEXEC);
    if (probe >= 0) {
      const int high = fcntl(probe, F_DUPFD_CLOEXEC, static_cast<int>(target - 1));
      if (high >= 0) close(high);
      close(probe);
    }
  }
  room.table_slots = DescriptorTableSlots();
  return room;
}

}  // namespace audiosocket
