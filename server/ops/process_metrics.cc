#include "server/ops/process_metrics.h"

#include <dirent.h>
#include <malloc.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "server/ops/metric_family.h"

namespace audiosocket {
namespace {

using metrics::Add;
using metrics::Family;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily One(const std::string& name, const std::string& help, MetricType type, double value) {
  MetricFamily family = Family(name, help, type);
  Add(&family, value);
  return family;
}

int OpenDescriptors() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // the directory stream's own descriptor
}

struct Stat {
  double cpu_seconds = -1;
  double start_ticks = -1;
  double resident_pages = -1;
};

// /proc/self/stat: fields after the command name (which may hold spaces and
// parentheses, so parse from the last ')'). utime and stime are fields 14
// and 15, starttime 22, rss 24 (proc(5), counting from 1).
Stat ReadStat() {
  Stat out;
  std::ifstream file("/proc/self/stat");
  std::string line;
  if (!std::getline(file, line)) return out;
  const size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 > line.size()) return out;
  const std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(line).substr(close + 2), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state).
  auto field = [&fields](size_t number, double* value) {
    return number - 3 < fields.size() && absl::SimpleAtod(fields[number - 3], value);
  };
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  double utime = 0;
  double stime = 0;
  double value = 0;
  if (field(14, &utime) && field(15, &stime)) out.cpu_seconds = (utime + stime) / ticks;
  if (field(22, &value)) out.start_ticks = value;
  if (field(24, &value)) out.resident_pages = value;
  return out;
}

double BootTimeSeconds() {
  std::ifstream file("/proc/stat");
  std::string key;
  double value = 0;
  while (file >> key) {
    if (key == "btime" && file >> value) return value;
    file.ignore(1 << 16, '\n');
  }
  return 0;
}

}  // namespace

std::vector<MetricFamily> ProcessCollector::Collect() const {
  std::vector<MetricFamily> out;
  const Stat stat = ReadStat();
  if (stat.resident_pages >= 0) {
    out.push_back(One("process_resident_memory_bytes", "Resident memory size in bytes.",
                      MetricType::Gauge,
                      stat.resident_pages * static_cast<double>(sysconf(_SC_PAGESIZE))));
  }
  if (stat.cpu_seconds >= 0) {
    out.push_back(One("process_cpu_seconds_total", "Total user and system CPU time in seconds.",
                      MetricType::Counter, stat.cpu_seconds));
  }
  if (stat.start_ticks >= 0) {
    out.push_back(
        One("process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds.", MetricType::Gauge,
            BootTimeSeconds() + stat.start_ticks / static_cast<double>(sysconf(_SC_CLK_TCK))));
  }
  if (const int fds = OpenDescriptors(); fds >= 0) {
    out.push_back(
        One("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, fds));
  }
  const struct mallinfo2 heap = mallinfo2();
  out.push_back(One("audiosocket_bridge_heap_in_use_bytes",
                    "Heap bytes the bridge holds (glibc: allocated chunks plus mmapped blocks).",
                    MetricType::Gauge, static_cast<double>(heap.uordblks + heap.hblkhd)));
  out.push_back(One("audiosocket_bridge_heap_free_bytes",
                    "Heap bytes freed but kept by the allocator for reuse (glibc: free chunks).",
                    MetricType::Gauge, static_cast<double>(heap.fordblks)));
  return out;
}

}  // namespace audiosocket
