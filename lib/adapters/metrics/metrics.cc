#include "cdr/metrics/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <prometheus/exposer.h>

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

endpoint::endpoint(const metrics_config& config)
    : registry_(std::make_shared<prometheus::Registry>()), host_(config.host) {
  const auto bind = config.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", config.host, config.port)
                                                               : fmt::format("{}:{}", config.host, config.port);
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(bind, 2);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("cannot listen for metrics on {}: {}", bind, e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  add(make_process_collector());
}

endpoint::~endpoint() = default;

void endpoint::add(std::shared_ptr<prometheus::Collectable> collectable) {
  exposer_->RegisterCollectable(collectable);
  extra_.push_back(std::move(collectable));
}

std::uint16_t endpoint::port() const {
  const auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : static_cast<std::uint16_t>(ports.front());
}

std::string endpoint::address() const {
  return host_.find(':') != std::string::npos ? fmt::format("[{}]:{}", host_, port())
                                              : fmt::format("{}:{}", host_, port());
}

}  // namespace cdr::metrics
