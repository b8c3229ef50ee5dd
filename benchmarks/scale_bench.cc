// The store at the real scale (issue "The store at the real scale"): a
// production-shaped store of N records, then every operation an operator
// runs on it, timed through the real daemon.
//
//   cmake --preset release && cmake --build --preset release --target bench_scale
//   build/release/benchmarks/bench_scale 0 10000000 100000000
//
// For each N the store is built in process through the daemon's own write
// path (store::write_batch, sealed by the vault, indexed under the
// configured identifier form, as ingest writes an event): CDRs of every month
// the retention policy still keeps at the start instant (2030-12-31T20:00Z),
// the 13 newest whole and the older ones stripped (metadata only, their
// partitions marked stripped, no data key), and usage events of the 36 months
// it keeps, one usage event per 5.7 CDRs and the same count every month.
// Ids are ULID-shaped and in time order. End users are drawn so that each
// has about 55 records in the whole months (10 to 100). N = 0: an empty store
// (the baseline of the ingest figures).
//
// The real daemon is then started on it with a mock Kafka cluster hosted here
// (topics cdr and usage with 16 partitions each) and timed doing, in order:
// start-up to ready; status; a metrics scrape; plan; verify; three subject
// holds; a sweep one day later that strips the oldest whole month and drops
// the oldest metadata year and usage month; 100 erasures and the purge pass
// after them; checkpoint; the export of the subject closest to 100 records;
// a restart with events.default_region = "HR" (the re-index of every sealed
// value); on that fresh process, once it is quiet (RocksDB's work left by
// the re-index is not ingest's), ingest of INGEST (default 2,000,000) new
// events on top (events/s; daemon CPU per event, counted until the daemon
// is quiet again, so the compactions ingest caused are in it; peak RSS);
// a drain to a
// second, empty member (records handed over per second; DRAIN=0 skips it).
//
// Each size's figures are written to DIR/results-N.json (DIR defaults to
// /tmp/cdr-bench-scale) and reused by later runs unless RERUN=1, so sizes
// can be measured in separate runs; the table printed at the end holds
// every size asked for and the ratio of the largest to the second largest.
// CACHE_MB: storage.block_cache_mb (default 64). KEEP=1 keeps the store.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "cdr/admin/client.h"
#include "cdr/core/config.h"
#include "cdr/core/event.h"
#include "cdr/core/event_generator.h"
#include "cdr/crypto/keystore.h"
#include "cdr/kafka/client.h"
#include "cdr/kafka/embedded_cluster.h"
#include "cdr/phone/phone.h"
#include "cdr/store/saved_state.h"
#include "cluster.h"
#include "fill.h"
#include "keys.h"
#include "process.h"
#include "reindex.h"

namespace {

using namespace cdr;
using steady = std::chrono::steady_clock;
using json = nlohmann::json;

const std::string master = "bench-master-key-0123456789abcdef-0123456789";
const instant start_at = *parse_rfc3339("2030-12-31T20:00:00Z");
constexpr double usage_per_cdr = 0.15 / 0.85;
constexpr std::size_t records_per_subject = 55;

double since(steady::time_point t0) { return std::chrono::duration<double>(steady::now() - t0).count(); }

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != 0 ? v : fallback;
}

// A ULID-shaped id (26 characters, or 28 with usage's "u-") ordered by n:
// thirteen zeros, then n. Ids of the generator (what is ingested later)
// start with their counter (at least 1), so every stored id sorts before
// every new one, as time-ordered ids of earlier months do.
std::string ordered_id(std::uint64_t n, bool usage) {
  static constexpr std::string_view crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  std::string id = usage ? "u-" : "";
  id.append(13, '0');
  for (int shift = 60; shift >= 0; shift -= 5) id.push_back(crockford[(n >> shift) & 31]);
  return id;
}

// The months a kind keeps at `now`, oldest first, and whether each is whole.
std::vector<std::pair<month, bool>> kept_months(const retention_policy& policy, record_kind kind, instant now) {
  std::vector<std::pair<month, bool>> out;
  for (auto m = month::containing(now);; m = m.plus(-1)) {
    const auto passed = deadlines_passed(policy, partition{kind, m, 0}, now);
    if (passed.drop) break;
    out.emplace_back(m, !passed.strip);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

struct shape {
  std::uint64_t cdr_records = 0, usage_records = 0, whole_cdr = 0, stripped_cdr = 0;
  std::size_t cdr_months = 0, whole_months = 0, usage_months = 0;
  std::unordered_map<std::string, std::uint32_t> subject_records;  // end users' phone numbers, whole months
};

// Builds the store: see the comment at the top.
shape fill_store(const daemon_config& config, const std::string& keystore_path, std::uint64_t n) {
  store::store s(config.storage);
  store::saved_state state(s);
  crypto::keystore keys(keystore_path, master, true);
  service::bind_keystore(s, state, keys, true);
  service::vault vault(keys, config.storage.max_seals_per_key);
  const auto ids =
      service::bring_to_form(s, state, vault, phone::parser(), identity_form(config.events.default_region)).first;
  const auto& policy = config.retention;
  const auto cdr_months = kept_months(policy, record_kind::cdr, start_at);
  const auto usage_months = kept_months(policy, record_kind::usage, start_at);
  shape out;
  out.cdr_months = cdr_months.size();
  out.usage_months = usage_months.size();
  out.whole_months = static_cast<std::size_t>(
      std::count_if(cdr_months.begin(), cdr_months.end(), [](const auto& m) { return m.second; }));
  if (n == 0) return out;
  const auto per_month =
      static_cast<std::uint64_t>(static_cast<double>(n) / (static_cast<double>(cdr_months.size()) +
                                                           usage_per_cdr * static_cast<double>(usage_months.size())));
  const auto usage_per_month = static_cast<std::uint64_t>(static_cast<double>(per_month) * usage_per_cdr);
  const auto subjects =
      static_cast<std::uint32_t>(std::max<std::uint64_t>(1, per_month * out.whole_months / records_per_subject));

  event_parser parser(config.events);
  parsed_event e;
  generated_event g;
  store::write_batch b(s);
  std::string sealed;
  std::vector<std::string> hashes, subjects_of;
  std::uint64_t counter = 0;
  std::set<partition> stripped;
  const auto t0 = steady::now();
  auto shown = t0;
  const auto write = [&](record_kind kind, month m, bool whole, std::uint64_t count) {
    generator_options o;
    o.seed = 1000 + static_cast<std::uint64_t>(m.index());
    o.now = m.plus(1).start() - std::chrono::milliseconds(1);
    o.spread = m.plus(1).start() - m.start() - std::chrono::milliseconds(2);
    o.usage_fraction = kind == record_kind::usage ? 1.0 : 0.0;
    o.subjects = subjects;
    event_generator gen(o);
    const partition p{kind, m, 0};
    if (!whole) stripped.insert(p);
    for (std::uint64_t i = 0; i < count; ++i) {
      gen.next(&g);
      const auto id = ordered_id(++counter, kind == record_kind::usage);
      g.json.replace(g.json.find(g.id), g.id.size(), id);
      if (const auto reason = parser.parse(g.json, o.now, &e)) {
        throw std::runtime_error("generated event rejected: " + std::string(name(*reason)));
      }
      const auto digest = content_digest(e.metadata, e.identifiers);
      sealed.clear();
      if (whole && !e.identifiers.empty()) {
        subjects_of.clear();
        for (const auto& [field, value] : e.identifier_strings) {
          subjects_of.push_back(ids.normalize(value));
          if (kind == record_kind::cdr && field == "to" && value.starts_with('+'))
            ++out.subject_records[subjects_of.back()];
        }
        const auto lease = vault.lease();
        vault.seal_indexed(key_scope::partition, p, record_key(p, id), e.identifiers, subjects_of, sealed, hashes);
      }
      if (kind == record_kind::usage) {
        b.put_usage(p, id, e.metadata, sealed, digest);
      } else {
        b.put_cdr(p, id, e.metadata, sealed, digest);
      }
      if (!sealed.empty()) {
        for (const auto& h : hashes) b.put_subject(p, h, id);
      }
      if (b.records() == 2000) {
        bench::commit(s, b);
        b.clear();
      }
    }
    if (b.records() > 0) bench::commit(s, b);
    b.clear();
    if (since(shown) > 10) {
      std::fprintf(stderr, "fill: %llu records, %.0f s\n", static_cast<unsigned long long>(counter), since(t0));
      shown = steady::now();
    }
  };
  // Oldest first, usage beside the CDRs of its month, as ingest would have.
  for (const auto& [m, whole] : cdr_months) {
    write(record_kind::cdr, m, whole, per_month);
    (whole ? out.whole_cdr : out.stripped_cdr) += per_month;
    if (std::any_of(usage_months.begin(), usage_months.end(), [&](const auto& u) { return u.first == m; })) {
      write(record_kind::usage, m, true, usage_per_month);
      out.usage_records += usage_per_month;
    }
  }
  out.cdr_records = out.whole_cdr + out.stripped_cdr;
  store::change c(s);
  for (const auto& p : stripped) c.set_state(p, partition_state{true, false});
  s.apply(c);
  s.settle(true);
  return out;
}

// One GET of http://address/metrics; the response's size in bytes.
std::size_t scrape(const std::string& address) {
  const auto colon = address.rfind(':');
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &to.sin_addr);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    close(fd);
    throw std::runtime_error("metrics: cannot connect to " + address);
  }
  const std::string request = "GET /metrics HTTP/1.0\r\nHost: " + address + "\r\n\r\n";
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    throw std::runtime_error("metrics: write failed");
  }
  std::size_t total = 0;
  char buf[65536];
  for (ssize_t got; (got = read(fd, buf, sizeof buf)) > 0;) total += static_cast<std::size_t>(got);
  close(fd);
  return total;
}

class scale_run {
 public:
  scale_run(std::string dir, std::uint64_t n) : dir_(std::move(dir)), n_(n) {}
  // A run that failed leaves no daemon behind.
  ~scale_run() {
    for (const auto pid : {daemon_, second_}) {
      if (pid > 0 && kill(pid, SIGKILL) == 0) waitpid(pid, nullptr, 0);
    }
  }
  scale_run(const scale_run&) = delete;
  scale_run& operator=(const scale_run&) = delete;

  json run() {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/checkpoints");
    { std::ofstream(dir_ + "/subject.key") << bench::subject_secret; }
    kafka::embedded_cluster cluster(1, bench::daemon_topics());
    write_config(dir_, cluster.bootstrap_servers(), "scale-1");
    auto parsed = parse_config(bench::read_file(dir_ + "/cdr.toml"), "bench", {});
    if (auto* bad = std::get_if<config_error>(&parsed))
      throw std::runtime_error("config: " + bad->key + ": " + bad->message);
    const auto& config = std::get<daemon_config>(parsed);

    auto t0 = steady::now();
    const auto sh = fill_store(config, dir_ + "/keys/keystore.json", n_);
    const double fill_s = since(t0);
    out_["n"] = n_;
    out_["fill"] = {{"seconds", fill_s}, {"records_per_second", static_cast<double>(n_) / std::max(fill_s, 1e-9)}};
    out_["shape"] = {{"cdr_records", sh.cdr_records},   {"whole_cdr", sh.whole_cdr},
                     {"stripped_cdr", sh.stripped_cdr}, {"usage_records", sh.usage_records},
                     {"cdr_months", sh.cdr_months},     {"whole_months", sh.whole_months},
                     {"usage_months", sh.usage_months}, {"end_users", sh.subject_records.size()}};
    sizes(sh);
    std::fprintf(stderr, "filled in %.0f s: %s\n", fill_s, out_["shape"].dump().c_str());

    start("2030-12-31T20:00:00Z", {});
    op("start-up to ready", since(launched_));
    time_op("status", [&] { call("status"); });
    const auto address = call("status")["metrics"].value("listen", "");
    time_op("metrics scrape", [&] { out_["metrics_bytes"] = scrape(address); });
    time_op("plan", [&] { call("plan"); });
    time_op("verify", [&] { expect_ok(call("verify"), "verify"); });

    // The subjects: the one closest to 100 records is exported; 100 others
    // are erased; three more are held.
    std::vector<std::pair<std::uint32_t, std::string>> by_count;
    for (const auto& [s, count] : sh.subject_records) by_count.emplace_back(count, s);
    std::sort(by_count.begin(), by_count.end());
    std::string exported;
    std::vector<std::string> erased, held;
    if (!by_count.empty()) {
      const auto closest = std::min_element(by_count.begin(), by_count.end(), [](const auto& a, const auto& b) {
        return std::abs(static_cast<int>(a.first) - 100) < std::abs(static_cast<int>(b.first) - 100);
      });
      exported = closest->second;
      for (std::size_t i = 0; i < by_count.size() && erased.size() < 100;
           i += std::max<std::size_t>(1, by_count.size() / 100)) {
        if (by_count[i].second != exported) erased.push_back(by_count[i].second);
      }
      for (std::size_t i = 1; i < by_count.size() && held.size() < 3; i += by_count.size() / 3 + 1) {
        if (by_count[i].second != exported) held.push_back(by_count[i].second);
      }
    }
    time_op("hold add (3 subjects)", [&] {
      for (const auto& s : held) {
        expect_ok(call("hold add", {{"subject", s}, {"reason", "bench"}, {"reference", "SCALE-1"}}), "hold add");
      }
    });
    call("debug advance-clock", {{"duration", "1d"}});
    time_op("sweep (strip a month, drop a year and a usage month)", [&] {
      const auto r = call("sweep");
      expect_ok(r, "sweep");
      out_["sweep_report"] = r;
    });
    time_op("subject erase (100, logical)", [&] {
      for (const auto& s : erased) {
        expect_ok(call("subject erase", {{"identifier", s}, {"reason", "bench"}, {"reference", "SCALE-2"}}),
                  "subject erase");
      }
    });
    time_op("purge pass after 100 erasures", [&] {
      const auto r = call("subject purge");
      expect_ok(r, "subject purge");
      out_["purge_report"] = r;
    });
    time_op("checkpoint", [&] { expect_ok(call("checkpoint", {{"to", "c1"}}), "checkpoint"); });
    std::filesystem::remove_all(dir_ + "/checkpoints/c1");
    if (!exported.empty())
      time_op("export of a ~100-record subject", [&] {
        std::uint64_t items = 0;
        admin::client c(dir_ + "/a.sock", std::chrono::hours(4));
        expect_ok(c.call("subject export", {{"identifier", exported}}, [&](const json&) { ++items; }), "export");
        out_["exported_records"] = items;
      });
    stop();

    start("2031-01-02T00:00:00Z", {"--set", "events.default_region=\"HR\""});
    op("start-up with re-index (region change)", since(launched_));
    // On a fresh process, so that its peak RSS is ingest's own.
    ingest(cluster.bootstrap_servers());
    if (env_or("DRAIN", "1") != "0") {
      // A drain hands the records to the other live members: a second,
      // empty member joins first.
      write_config(dir_ + "/m2", cluster.bootstrap_servers(), "scale-2");
      second_ =
          bench::spawn({CDR_RETENTIOND_PATH, "--config", dir_ + "/m2/cdr.toml", "--fake-clock", "2031-01-02T00:00:00Z"},
                       dir_ + "/m2/daemon.log");
      const auto live = [&] {
        const auto members = call("status").value(json::json_pointer("/kafka/fleet/members"), json::array());
        return std::count_if(members.begin(), members.end(), [](const json& m) { return m.value("live", false); });
      };
      // ... and the group has settled: both own partitions.
      const auto owns = [&](const std::string& member) {
        return !call("status", json::object(), member)
                    .value(json::json_pointer("/kafka/consumer/assignment"), json::object())
                    .empty();
      };
      while (live() < 2 || !owns(dir_ + "/m2") || !owns(dir_)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      const auto records = n_ + out_["ingest"].value("events", std::uint64_t{0});
      const auto t = steady::now();
      const auto r = call("drain");
      expect_ok(r, "drain");
      const double s = since(t);
      op("drain", s);
      out_["drain"] = {{"report", r}, {"records_per_second", static_cast<double>(records) / s}};
      // The handover itself: from leaving the group to the store emptied.
      const auto log = bench::read_file(dir_ + "/daemon-" + std::to_string(starts_) + ".log");
      const auto stamp = [&](std::string_view what) -> std::optional<instant> {
        const auto at = log.find(what);
        const auto ts = log.rfind("\"ts\":\"", at);
        if (at == std::string::npos || ts == std::string::npos) return std::nullopt;
        return parse_rfc3339(std::string_view(log).substr(ts + 6, log.find('"', ts + 6) - ts - 6));
      };
      const auto from = stamp("left the consumer group; handing");
      const auto to = stamp("store emptied");
      if (from && to && *to > *from) {
        const double handover = to_seconds(*to) - to_seconds(*from);
        op("drain: handover (left the group to store emptied)", handover);
        out_["drain"]["handover_records_per_second"] = static_cast<double>(records) / handover;
      }
      kill(second_, SIGTERM);
      waitpid(second_, nullptr, 0);
      second_ = -1;
    }
    stop();
    if (env_or("KEEP", "") == "") std::filesystem::remove_all(dir_);
    return out_;
  }

 private:
  // A member's configuration in `d` (the subject key, and so the fleet key,
  // shared).
  void write_config(const std::string& d, const std::string& brokers, const std::string& instance) {
    std::filesystem::create_directories(d + "/keys");
    { std::ofstream(d + "/master.key") << master; }
    std::ofstream(d + "/cdr.toml") << "[kafka]\nbrokers = \"" << brokers << "\"\ngroup_instance_id = \"" << instance
                                   << "\"\n[storage]\npath = \"" << d << "/data\"\nsubject_key_file = \"" << dir_
                                   << "/subject.key\"\nkeystore_path = \"" << d << "/keys/keystore.json\"\n"
                                   << "master_key_file = \"" << d << "/master.key\"\ncheckpoint_dir = \"" << d
                                   << "/checkpoints\"\nblock_cache_mb = " << env_or("CACHE_MB", "64") << "\n"
                                   << "[sweep]\ninterval = \"31d\"\njitter = \"1s\"\n"
                                   << "[erasure]\npurge_after = \"30d\"\n"
                                   << "[admin]\nsocket = \"" << d << "/a.sock\"\n"
                                   << "[metrics]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n";
  }

  void start(const std::string& clock, std::vector<std::string> extra) {
    std::vector<std::string> args{CDR_RETENTIOND_PATH, "--config", dir_ + "/cdr.toml", "--fake-clock", clock};
    args.insert(args.end(), extra.begin(), extra.end());
    launched_ = steady::now();
    daemon_ = bench::spawn(args, dir_ + "/daemon-" + std::to_string(++starts_) + ".log");
    for (;;) {
      int status = 0;
      if (waitpid(daemon_, &status, WNOHANG) == daemon_) {
        throw std::runtime_error("the daemon exited at start; see " + dir_ + "/daemon-" + std::to_string(starts_) +
                                 ".log");
      }
      try {
        admin::client c(dir_ + "/a.sock", std::chrono::seconds(5));
        if (c.call("status").value("ok", false)) return;
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  void stop() {
    kill(daemon_, SIGTERM);
    waitpid(daemon_, nullptr, 0);
    daemon_ = -1;
  }

  json call(const std::string& command, const json& args = json::object(), const std::string& member = "") {
    admin::client c((member.empty() ? dir_ : member) + "/a.sock", std::chrono::hours(4));
    auto r = c.call(command, args);
    return r.value("ok", false) ? r["result"] : r;
  }
  static void expect_ok(const json& r, const std::string& what) {
    if (r.contains("error")) throw std::runtime_error(what + ": " + r.dump().substr(0, 500));
  }

  void op(const std::string& name, double seconds) {
    out_["operations"].push_back({{"name", name}, {"seconds", seconds}});
    std::fprintf(stderr, "%-55s %10.3f s\n", name.c_str(), seconds);
  }
  void time_op(const std::string& name, const std::function<void()>& fn) {
    const auto t = steady::now();
    fn();
    op(name, since(t));
  }

  // Bytes on disk per record, from the families' live sizes after settling.
  void sizes(const shape& sh) {
    std::map<std::string, std::uint64_t> bytes;
    std::uint64_t total = 0;
    {
      store::store s(std::get<daemon_config>(parse_config(bench::read_file(dir_ + "/cdr.toml"), "bench", {})).storage);
      for (const auto& f : s.sizes()) {
        bytes[f.name] = f.bytes;
        total += f.bytes;
      }
    }
    out_["family_bytes"] = bytes;
    out_["disk_bytes"] = bench::dir_bytes(dir_ + "/data");
    if (sh.cdr_records == 0) return;
    const auto records = static_cast<double>(sh.cdr_records + sh.usage_records);
    // Every record pays its metadata (or usage) value and its id-index entry;
    // a whole one also its identifiers and subject-index entries.
    const double stripped = static_cast<double>(bytes["metadata"] + bytes["usage"] + bytes["ids"]) / records;
    const double whole_extra = static_cast<double>(bytes["identifiers"] + bytes["subject_index"]) /
                               static_cast<double>(sh.whole_cdr + sh.usage_records);
    out_["bytes_per_record"] = {
        {"stripped", stripped}, {"whole", stripped + whole_extra}, {"all", static_cast<double>(total) / records}};
  }

  // Waits until the daemon uses less than 2% of a core for two seconds in
  // a row (at most ten minutes); returns the CPU seconds it used meanwhile.
  double wait_quiet() {
    const double first = bench::cpu_seconds(daemon_);
    double last = first;
    int calm = 0;
    for (int i = 0; i < 600 && calm < 2; ++i) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      const double now = bench::cpu_seconds(daemon_);
      calm = now - last < 0.02 ? calm + 1 : 0;
      last = now;
    }
    return last - first;
  }

  // INGEST events of the start instant's next month, produced while the
  // daemon consumes (backlog under 100,000: the mock broker keeps ~5 MB per
  // partition); clock stops when its stored offsets cover them all.
  void ingest(const std::string& brokers) {
    const auto n = static_cast<std::uint64_t>(std::stoull(env_or("INGEST", "2000000")));
    generator_options o;
    o.seed = 77;
    o.now = *parse_rfc3339("2031-01-01T19:00:00Z");
    o.spread = std::chrono::hours(18);
    o.subjects = 100'000;
    event_generator gen(o);
    std::vector<generated_event> events(n);
    for (auto& e : events) gen.next(&e);
    std::uint64_t failed = 0;
    kafka::producer producer({brokers, "bench-producer", {{"linger.ms", "20"}, {"batch.num.messages", "10000"}}},
                             [&](std::uint64_t, bool ok, std::string_view) { failed += ok ? 0 : 1; });
    const auto stored = [&] {
      std::uint64_t total = 0;
      const auto offsets = call("status").value(json::json_pointer("/kafka/consumer/offsets"), json::object());
      for (const auto& [t, parts] : offsets.items()) {
        for (const auto& [p, off] : parts.items()) total += off.get<std::uint64_t>();
      }
      return total;
    };
    // The clock starts once the member owns its partitions (a restarted
    // static member may wait for the group first).
    while (call("status").value(json::json_pointer("/kafka/consumer/assignment"), json::object()).empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    // RocksDB's work left by what ran before (the re-index's rewrite, the
    // purge's compactions) is not ingest's: the clock starts once the daemon
    // is quiet.
    const auto quiet_from = steady::now();
    const double background = wait_quiet();
    const double quiet_wait = since(quiet_from);
    bench::rss_sampler rss(daemon_);
    rss.reset();
    const auto rss_at_start = rss.peak_kib();
    const auto t0 = steady::now();
    const double cpu0 = bench::cpu_seconds(daemon_);
    for (std::uint64_t i = 0; i < n; ++i) {
      const auto& e = events[i];
      std::string error;
      while (!producer.produce(e.kind == record_kind::usage ? "usage" : "cdr", e.id, e.json, {}, 0, &error)) {
        producer.poll();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      if (i % 20'000 == 0) {
        producer.poll();
        while (stored() + 100'000 < i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    producer.flush(std::chrono::seconds(60));
    while (stored() < n) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const double seconds = since(t0);
    const double cpu_stored = bench::cpu_seconds(daemon_) - cpu0;
    // The flushes and compactions ingest caused are ingest's, also those
    // that finish after the last event is stored.
    const double after = wait_quiet();
    const double cpu = cpu_stored + after;
    out_["ingest"] = {{"events", n},
                      {"seconds", seconds},
                      {"events_per_second", static_cast<double>(n) / seconds},
                      {"cpu_us_per_event", 1e6 * cpu / static_cast<double>(n)},
                      {"cpu_us_per_event_until_stored", 1e6 * cpu_stored / static_cast<double>(n)},
                      {"background_cpu_seconds_before", background},
                      {"seconds_until_quiet_before", quiet_wait},
                      {"peak_rss_mib", static_cast<double>(rss.peak_kib()) / 1024},
                      {"rss_at_start_mib", static_cast<double>(rss_at_start) / 1024},
                      {"producer_failures", failed}};
    op("ingest of new events", seconds);
    std::fprintf(stderr, "ingest: %s\n", out_["ingest"].dump().c_str());
  }

  std::string dir_;
  std::uint64_t n_;
  json out_;
  pid_t daemon_ = -1;
  pid_t second_ = -1;
  int starts_ = 0;
  steady::time_point launched_;
};

std::string human(std::uint64_t n) {
  if (n >= 1'000'000 && n % 1'000'000 == 0) return std::to_string(n / 1'000'000) + "M";
  if (n >= 1'000 && n % 1'000 == 0) return std::to_string(n / 1'000) + "k";
  return std::to_string(n);
}

void print_table(const std::vector<json>& results) {
  std::vector<std::string> rows;
  for (const auto& r : results) {
    for (const auto& o : r.value("operations", json::array())) {
      const auto name = o.value("name", "");
      if (std::find(rows.begin(), rows.end(), name) == rows.end()) rows.push_back(name);
    }
  }
  const auto figure = [](const json& r, const std::string& row) {
    for (const auto& o : r.value("operations", json::array())) {
      if (o.value("name", "") == row) return o.value("seconds", -1.0);
    }
    return -1.0;
  };
  std::printf("\n%-55s", "seconds");
  for (const auto& r : results) std::printf(" %12s", human(r["n"].get<std::uint64_t>()).c_str());
  if (results.size() > 1) std::printf(" %8s", "ratio");
  std::printf("\n");
  const auto ratio = [&](double last, double before) {
    if (results.size() > 1 && last >= 0 && before > 0) std::printf(" %8.2f", last / before);
  };
  for (const auto& row : rows) {
    std::printf("%-55s", row.c_str());
    for (const auto& r : results) std::printf(" %12.3f", figure(r, row));
    if (results.size() > 1) ratio(figure(results.back(), row), figure(results[results.size() - 2], row));
    std::printf("\n");
  }
  const auto line = [&](const std::string& label, const std::string& pointer, int decimals) {
    std::printf("%-55s", label.c_str());
    for (const auto& r : results) std::printf(" %12.*f", decimals, r.value(json::json_pointer(pointer), 0.0));
    if (results.size() > 1) {
      ratio(results.back().value(json::json_pointer(pointer), 0.0),
            results[results.size() - 2].value(json::json_pointer(pointer), 0.0));
    }
    std::printf("\n");
  };
  line("ingest: events/s", "/ingest/events_per_second", 0);
  line("ingest: daemon CPU us/event (until quiet)", "/ingest/cpu_us_per_event", 2);
  line("ingest: daemon CPU us/event (until stored)", "/ingest/cpu_us_per_event_until_stored", 2);
  line("before ingest: background CPU s (excluded)", "/ingest/background_cpu_seconds_before", 2);
  line("ingest: RSS MiB at its start", "/ingest/rss_at_start_mib", 1);
  line("ingest: peak RSS MiB", "/ingest/peak_rss_mib", 1);
  line("drain: records/s (whole command)", "/drain/records_per_second", 0);
  line("drain: records/s (handover)", "/drain/handover_records_per_second", 0);
  line("fill: records/s (in process, before the daemon)", "/fill/records_per_second", 0);
  line("bytes on disk per whole record", "/bytes_per_record/whole", 1);
  line("bytes on disk per stripped record", "/bytes_per_record/stripped", 1);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  std::vector<std::uint64_t> sizes;
  try {
    for (int i = 1; i < argc; ++i) sizes.push_back(std::stoull(argv[i]));
  } catch (const std::exception&) {
    std::fprintf(stderr, "usage: bench_scale N [N...]   (records; 0: an empty store)\n");
    return 2;
  }
  if (sizes.empty()) sizes = {0, 10'000'000};
  const auto dir = env_or("DIR", "/tmp/cdr-bench-scale");
  std::filesystem::create_directories(dir);
  std::vector<json> results;
  try {
    for (const auto n : sizes) {
      const auto saved = dir + "/results-" + std::to_string(n) + ".json";
      if (std::filesystem::exists(saved) && env_or("RERUN", "") == "") {
        results.push_back(json::parse(bench::read_file(saved)));
        std::fprintf(stderr, "%s: reused (RERUN=1 measures again)\n", saved.c_str());
        continue;
      }
      std::fprintf(stderr, "=== %llu records\n", static_cast<unsigned long long>(n));
      results.push_back(scale_run(dir + "/store-" + std::to_string(n), n).run());
      std::ofstream(saved) << results.back().dump(2) << '\n';
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_scale: %s\n", e.what());
    return 1;
  }
  print_table(results);
  return 0;
}
