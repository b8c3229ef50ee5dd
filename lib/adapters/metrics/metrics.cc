#include "cdr/metrics/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <prometheus/text_serializer.h>

namespace cdr::metrics {
namespace {

prometheus::MetricFamily single(std::string name, std::string help, prometheus::MetricType type, double value) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
  return f;
}

class process_collector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    std::ifstream stat("/proc/self/stat");
    std::string line;
    if (std::getline(stat, line)) {
      // Fields after the command name, which is in parentheses and may hold spaces.
      std::istringstream rest(line.substr(line.rfind(')') + 2));
      std::vector<std::string> f((std::istream_iterator<std::string>(rest)), std::istream_iterator<std::string>());
      // f[0] is field 3 (state); field n is f[n - 3].
      if (f.size() > 21) {
        const double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
        out.push_back(single("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                             prometheus::MetricType::Counter, cpu));
        out.push_back(single("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                             prometheus::MetricType::Gauge, std::stod(f[20])));
        out.push_back(single("process_resident_memory_bytes", "Resident memory size in bytes.",
                             prometheus::MetricType::Gauge, std::stod(f[21]) * page));
        out.push_back(single("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                             prometheus::MetricType::Gauge, boot_time() + std::stod(f[19]) / ticks));
      }
    }
    double fds = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
      while (readdir(d) != nullptr) ++fds;
      closedir(d);
      fds -= 3;  // ".", ".." and the directory's own descriptor
    }
    out.push_back(single("process_open_fds", "Number of open file descriptors.", prometheus::MetricType::Gauge, fds));
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
      out.push_back(single("process_max_fds", "Maximum number of open file descriptors.", prometheus::MetricType::Gauge,
                           static_cast<double>(lim.rlim_cur)));
    }
    return out;
  }

 private:
  static double boot_time() {
    std::ifstream s("/proc/stat");
    std::string key;
    double value = 0;
    while (s >> key) {
      if (key == "btime") {
        s >> value;
        return value;
      }
      s.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    }
    return 0;
  }
};

}  // namespace

prometheus::MetricFamily gauge_family(std::string name, std::string help, double value) {
  return single(std::move(name), std::move(help), prometheus::MetricType::Gauge, value);
}

prometheus::MetricFamily counter_family(std::string name, std::string help, double value) {
  return single(std::move(name), std::move(help), prometheus::MetricType::Counter, value);
}

namespace {

prometheus::MetricFamily labelled_family(std::string name, std::string help, prometheus::MetricType type,
                                         const std::vector<std::pair<prometheus::Labels, double>>& samples) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  for (const auto& [labels, value] : samples) {
    prometheus::ClientMetric m;
    for (const auto& [k, v] : labels) m.label.push_back({k, v});
    (type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value) = value;
    f.metric.push_back(std::move(m));
  }
  return f;
}

}  // namespace

prometheus::MetricFamily labelled_gauge_family(std::string name, std::string help,
                                               const std::vector<std::pair<prometheus::Labels, double>>& samples) {
  return labelled_family(std::move(name), std::move(help), prometheus::MetricType::Gauge, samples);
}

prometheus::MetricFamily labelled_counter_family(std::string name, std::string help,
                                                 const std::vector<std::pair<prometheus::Labels, double>>& samples) {
  return labelled_family(std::move(name), std::move(help), prometheus::MetricType::Counter, samples);
}

std::shared_ptr<prometheus::Collectable> make_process_collector() { return std::make_shared<process_collector>(); }

endpoint::endpoint()
    : registry_(std::make_shared<prometheus::Registry>()),
      scrapes_(prometheus::BuildCounter()
                   .Name("exposer_scrapes_total")
                   .Help("Number of times metrics were scraped")
                   .Register(*registry_)
                   .Add({})),
      bytes_(prometheus::BuildCounter()
                 .Name("exposer_transferred_bytes_total")
                 .Help("Transferred bytes to metrics services")
                 .Register(*registry_)
                 .Add({})),
      latency_(prometheus::BuildSummary()
                   .Name("exposer_request_latencies")
                   .Help("Latencies of serving scrape requests, in microseconds")
                   .Register(*registry_)
                   .Add({}, prometheus::Summary::Quantiles{{0.5, 0.05}, {0.9, 0.01}, {0.99, 0.001}})) {
  add(make_process_collector());
}

endpoint::~endpoint() = default;

void endpoint::add(std::shared_ptr<prometheus::Collectable> collectable) {
  std::lock_guard lock(scraping_);
  extra_.push_back(std::move(collectable));
}

std::string endpoint::scrape() {
  std::lock_guard lock(scraping_);
  const auto started = std::chrono::steady_clock::now();
  auto families = registry_->Collect();
  for (const auto& c : extra_) {
    auto more = c->Collect();
    families.insert(families.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  auto text = std::move(out).str();
  scrapes_.Increment();
  bytes_.Increment(static_cast<double>(text.size()));
  latency_.Observe(static_cast<double>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count()));
  return text;
}

}  // namespace cdr::metrics
