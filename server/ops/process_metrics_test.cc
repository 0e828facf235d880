#include "server/ops/process_metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace audiosocket {
namespace {

double Value(const std::string& name) {
  for (const prometheus::MetricFamily& family : ProcessCollector().Collect()) {
    if (family.name != name) continue;
    EXPECT_EQ(family.metric.size(), 1u) << name;
    if (family.metric.empty()) return -1;
    return family.type == prometheus::MetricType::Counter ? family.metric[0].counter.value
                                                          : family.metric[0].gauge.value;
  }
  ADD_FAILURE() << "no metric " << name;
  return -1;
}

TEST(ProcessCollectorTest, OpenDescriptorsCountsDescriptorsOpened) {
  const double before = Value("process_open_fds");
  std::vector<int> fds;
  for (int i = 0; i < 10; ++i) fds.push_back(open("/dev/null", O_RDONLY | O_CLOEXEC));
  EXPECT_EQ(Value("process_open_fds"), before + 10);
  for (int fd : fds) close(fd);
  EXPECT_EQ(Value("process_open_fds"), before);
}

// The sanitizers replace malloc: glibc's heap accounting sees none of it.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kGlibcMalloc = false;
#else
constexpr bool kGlibcMalloc = true;
#endif

TEST(ProcessCollectorTest, ResidentMemoryAndHeapFollowAnAllocation) {
  if (!kGlibcMalloc) GTEST_SKIP() << "a sanitizer's allocator replaces glibc malloc";
  const double rss_before = Value("process_resident_memory_bytes");
  const double heap_before = Value("audiosocket_bridge_heap_in_use_bytes");
  EXPECT_GT(rss_before, 0);
  constexpr size_t kBytes = 64 << 20;
  char* block = static_cast<char*>(std::malloc(kBytes));
  ASSERT_NE(block, nullptr);
  std::memset(block, 1, kBytes);  // touch every page so it is resident
  EXPECT_GE(Value("process_resident_memory_bytes"), rss_before + kBytes * 0.9);
  EXPECT_GE(Value("audiosocket_bridge_heap_in_use_bytes"), heap_before + kBytes);
  std::free(block);
  EXPECT_LT(Value("audiosocket_bridge_heap_in_use_bytes"), heap_before + kBytes);
}

TEST(ProcessCollectorTest, HeapFreeCountsChunksKeptForReuse) {
  if (!kGlibcMalloc) GTEST_SKIP() << "a sanitizer's allocator replaces glibc malloc";
  // Many small blocks come from the heap (not mmap); freed, they stay with
  // the allocator.
  std::vector<void*> blocks;
  for (int i = 0; i < 4096; ++i) blocks.push_back(std::malloc(1024));
  const double free_before = Value("audiosocket_bridge_heap_free_bytes");
  for (size_t i = 0; i + 1 < blocks.size(); i += 2) std::free(blocks[i]);
  EXPECT_GE(Value("audiosocket_bridge_heap_free_bytes"), free_before + 2048 * 1024);
  for (size_t i = 1; i < blocks.size(); i += 2) std::free(blocks[i]);
}

TEST(ProcessCollectorTest, CpuSecondsAndStartTimeAreSane) {
  const double cpu_before = Value("process_cpu_seconds_total");
  // Burn about 50 ms of CPU.
  const clock_t start = clock();
  volatile double x = 0;
  while (clock() - start < CLOCKS_PER_SEC / 20) x = x + 1;
  EXPECT_GT(Value("process_cpu_seconds_total"), cpu_before);
  const double now = static_cast<double>(time(nullptr));
  const double started = Value("process_start_time_seconds");
  EXPECT_LE(started, now + 1);
  EXPECT_GT(started, now - 3600);
}

}  // namespace
}  // namespace audiosocket
