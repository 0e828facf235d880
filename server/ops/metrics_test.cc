#include "server/ops/metrics.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiosocket {
namespace {

// The name a thread gave itself (/proc/self/task/ID/comm).
std::string ThreadName(pid_t id) {
  std::ifstream comm("/proc/self/task/" + std::to_string(id) + "/comm");
  std::string name;
  std::getline(comm, name);
  return name;
}

std::set<pid_t> ThreadIds() {
  std::set<pid_t> ids;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return ids;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ids.insert(static_cast<pid_t>(std::atoi(entry->d_name)));
  }
  ::closedir(dir);
  return ids;
}

// Run under `chrt --fifo`, the process's threads inherit the real-time
// policy; the exporter's must not, or a saturated loop starves the scrape.
TEST(MetricsTest, TheExportersThreadsRunAtTheNormalPolicyWhenTheServerIsRealTime) {
  sched_param fifo{};
  fifo.sched_priority = 1;
  if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &fifo) != 0) {
    GTEST_SKIP() << "this process may not use SCHED_FIFO (needs CAP_SYS_NICE)";
  }
  const std::set<pid_t> before = ThreadIds();
  {
    Metrics metrics(CounterSet(), nullptr);
    ASSERT_TRUE(metrics.Serve("127.0.0.1:0").ok());
    EXPECT_GT(metrics.port(), 0);
    // The exporter's threads are civetweb's: a master and the two workers
    // Serve asks for, which name themselves so once running. (A sanitizer's
    // runtime may start a thread of its own meanwhile.)
    std::vector<pid_t> exporters;
    for (int i = 0; i < 500 && exporters.size() < 3; ++i) {
      if (i > 0) ::usleep(10'000);
      exporters.clear();
      for (pid_t id : ThreadIds()) {
        if (before.count(id) == 0 && ThreadName(id).rfind("civetweb", 0) == 0) {
          exporters.push_back(id);
        }
      }
    }
    EXPECT_EQ(exporters.size(), 3u);
    for (pid_t id : exporters) {
      EXPECT_EQ(::sched_getscheduler(id), SCHED_OTHER) << "thread " << id << " " << ThreadName(id);
    }
    // This thread kept its own policy.
    int policy = 0;
    sched_param param{};
    ASSERT_EQ(pthread_getschedparam(pthread_self(), &policy, &param), 0);
    EXPECT_EQ(policy, SCHED_FIFO);
  }
  sched_param normal{};
  pthread_setschedparam(pthread_self(), SCHED_OTHER, &normal);
}

TEST(MetricsTest, AnAddressInUseIsNamedWithTheSystemsReason) {
  Metrics first(CounterSet(), nullptr);
  ASSERT_TRUE(first.Serve("127.0.0.1:0").ok());
  Metrics second(CounterSet(), nullptr);
  const absl::Status status = second.Serve("127.0.0.1:" + std::to_string(first.port()));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), ::testing::HasSubstr("--metrics_listen=127.0.0.1:"));
  EXPECT_THAT(status.message(), ::testing::HasSubstr("in use"));
}

}  // namespace
}  // namespace audiosocket
