#include "src/metrics/metrics.hpp"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include <prometheus/text_serializer.h>

namespace parley::metrics {
namespace {}  // namespace

prometheus::Counter& counter(prometheus::Registry& reg, const std::string& name,
                             const std::string& help, const prometheus::Labels& labels) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(reg).Add(labels);
}

prometheus::Gauge& gauge(prometheus::Registry& reg, const std::string& name,
                         const std::string& help, const prometheus::Labels& labels) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(reg).Add(labels);
}

prometheus::Histogram& histogram(prometheus::Registry& reg, const std::string& name,
                                 const std::string& help,
                                 const prometheus::Histogram::BucketBoundaries& buckets,
                                 const prometheus::Labels& labels) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(reg).Add(labels, buckets);
}

prometheus::MetricFamily single_sample(const std::string& name, const std::string& help,
                                       prometheus::MetricType type, double value) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
  f.metric.push_back(m);
  return f;
}

namespace {

int count_open_fds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (auto* e = readdir(d))
      if (e->d_name[0] != '.') ++n;
    closedir(d);
    --n;  // the descriptor opendir itself holds
  }
  return n;
}

/// Reads /proc/self/stat; fields per proc(5).
void add_process_metrics(std::vector<prometheus::MetricFamily>& out) {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return;
  // The command name may hold spaces: fields start after the last ')'.
  auto close = line.rfind(')');
  if (close == std::string::npos) return;
  std::istringstream fields(line.substr(close + 2));
  std::vector<std::string> f;
  for (std::string tok; fields >> tok;) f.push_back(tok);
  // f[0] is field 3 (state); field N is f[N - 3].
  if (f.size() < 22) return;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double utime = std::stod(f[14 - 3]);
  const double stime = std::stod(f[15 - 3]);
  const double threads = std::stod(f[20 - 3]);
  const double starttime = std::stod(f[22 - 3]);
  const double vsize = std::stod(f[23 - 3]);
  const double rss = std::stod(f[24 - 3]);
  double boot_time = 0;
  std::ifstream stat("/proc/stat");
  for (std::string l; std::getline(stat, l);)
    if (l.rfind("btime ", 0) == 0) boot_time = std::stod(l.substr(6));
  using prometheus::MetricType;
  out.push_back(single_sample("process_cpu_seconds_total",
                              "Total user and system CPU time in seconds.", MetricType::Counter,
                              (utime + stime) / tick));
  out.push_back(single_sample("process_resident_memory_bytes", "Resident memory size in bytes.",
                              MetricType::Gauge, rss * page));
  out.push_back(single_sample("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                              MetricType::Gauge, vsize));
  out.push_back(single_sample("process_start_time_seconds",
                              "Start time of the process since the Unix epoch in seconds.",
                              MetricType::Gauge, boot_time + starttime / tick));
  out.push_back(single_sample("process_threads", "Number of OS threads in the process.",
                              MetricType::Gauge, threads));
  out.push_back(single_sample("process_open_fds", "Number of open file descriptors.",
                              MetricType::Gauge, count_open_fds()));
}

}  // namespace

std::shared_ptr<prometheus::Registry> make_registry() {
  return std::make_shared<prometheus::Registry>();
}

std::string render(prometheus::Registry& registry, const std::vector<collector>& extra) {
  auto families = registry.Collect();
  add_process_metrics(families);
  for (const auto& c : extra) c(families);
  return prometheus::TextSerializer{}.Serialize(families);
}

}  // namespace parley::metrics
