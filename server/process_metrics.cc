#include "server/process_metrics.h"

#include <dirent.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace audiosocket {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily One(const std::string& name, const std::string& help, MetricType type, double v) {
  MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  ClientMetric metric;
  if (type == MetricType::Counter) {
    metric.counter.value = v;
  } else {
    metric.gauge.value = v;
  }
  family.metric.push_back(std::move(metric));
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
  if (close == std::string::npos) return out;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  double utime = 0;
  for (int number = 3; fields >> field; ++number) {
    if (number == 14) utime = std::stod(field);
    if (number == 15) out.cpu_seconds = (utime + std::stod(field)) / ticks;
    if (number == 22) out.start_ticks = std::stod(field);
    if (number == 24) {
      out.resident_pages = std::stod(field);
      break;
    }
  }
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
