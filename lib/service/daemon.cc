// The wiring layer's top: builds the parts from the configuration, starts
// them in order, runs the main loop (signals, the systemd watchdog) and
// stops them in reverse order.
#include "cdr/service/daemon.h"

#include <pthread.h>
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <algorithm>
#include <cstdlib>
#include <map>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "admin/handlers.h"
#include "cdr/admin/http.h"
#include "cdr/admin/server.h"
#include "cdr/crypto/crypto.h"
#include "cdr/kafka/client.h"
#include "cdr/logging/logging.h"
#include "cdr/metrics/daemon_probe.h"
#include "cdr/metrics/ingest_probe.h"
#include "cdr/metrics/metrics.h"
#include "cdr/metrics/retention_probe.h"
#include "cdr/phone/phone.h"
#include "fleet/drain.h"
#include "health.h"
#include "keys.h"
#include "ledger.h"
#include "reindex.h"

namespace cdr::service {
namespace asio = boost::asio;

std::string_view version() { return CDR_VERSION; }
std::string_view revision() { return CDR_REVISION; }

namespace {

admin::group_policy groups_of(const admin_config& admin) {
  admin::group_policy g;
  g.daemon_uid = static_cast<std::uint32_t>(geteuid());
  g.operator_gid = admin::lookup_group(admin.operator_group);
  g.viewer_gid = admin::lookup_group(admin.viewer_group);
  for (const auto& [key, name, gid] : {std::tuple{"admin.operator_group", &admin.operator_group, g.operator_gid},
                                       std::tuple{"admin.viewer_group", &admin.viewer_group, g.viewer_gid}}) {
    if (!name->empty() && !gid) spdlog::warn("{}: group \"{}\" does not exist; nobody gets its rights", key, *name);
  }
  return g;
}

std::unique_ptr<kafka::embedded_cluster> embedded_broker(const kafka_config& k) {
  if (!k.embedded()) return nullptr;
  std::vector<kafka::topic_spec> topics{{k.topic_cdr, k.embedded_partitions},
                                        {k.topic_usage, k.embedded_partitions},
                                        {k.topic_dead_letter, k.embedded_partitions},
                                        {k.topic_deletion_events, k.embedded_partitions}};
  // The fleet's topics have one partition each (one order for every member).
  for (const auto& t : {k.topic_control, k.topic_replies}) {
    if (!t.empty()) topics.push_back({t, 1});
  }
  if (!k.topic_handover.empty()) topics.push_back({k.topic_handover, k.embedded_partitions});
  auto cluster = std::make_unique<kafka::embedded_cluster>(1, topics);
  spdlog::warn("kafka.brokers = \"embedded\": an in-process mock broker on {} (not for production)",
               cluster->bootstrap_servers());
  return cluster;
}

}  // namespace

struct daemon::impl {
  daemon_config config;
  daemon_options options;
  std::string digest;

  // In start order; stopped in reverse.
  std::unique_ptr<time_source> time;
  simulated_wall_time* fake = nullptr;
  instant started{};
  mono_time started_monotonic{};
  std::unique_ptr<config_reloader> reloader;
  std::string subject_key;
  std::unique_ptr<crypto::keystore> keystore;
  std::unique_ptr<health> healthy;
  std::unique_ptr<metrics::endpoint> metrics;
  std::unique_ptr<admin::http_server> web;  // /metrics, /healthz, /readyz
  std::unique_ptr<metrics::daemon_probe> probe;
  std::unique_ptr<kafka::embedded_cluster> embedded;
  std::unique_ptr<store::store> store;
  std::unique_ptr<store::saved_state> state;
  std::unique_ptr<service::vault> vault;
  identity ids;  // the identifier form, set once the store is brought to it
  std::unique_ptr<metrics::ingest_probe> ingest_probe;
  std::unique_ptr<metrics::retention_probe> retention_probe;
  std::unique_ptr<service::retention> retention;
  std::unique_ptr<fleet_node> fleet;
  std::mutex draining;  // one drain at a time
  std::unique_ptr<service::ingest> ingest;
  std::atomic<service::ingest*> fenced_ingest{nullptr};  // ingest, for erasures' fence
  std::unique_ptr<demo_traffic> demo;
  std::unique_ptr<admin_context> admin_ctx;
  std::unique_ptr<admin::server> admin;
  asio::io_context io;
  // Set up before anything starts: a stop during the start is served as
  // soon as the loop runs.
  std::unique_ptr<asio::signal_set> signals;
  std::atomic<int> exit_code{0};
  // Tells systemd how the start goes (start_notes()).
  std::thread start_notifier;
  std::unique_ptr<alarm> start_over;
  bool start_done = false;  // under start_over's lock

  // A start that failed: no thread left behind, and no scrape or probe
  // reads a part while the members are torn down (in reverse order).
  ~impl() {
    end_start_notes();
    web.reset();
  }

  std::string bootstrap() const { return embedded ? embedded->bootstrap_servers() : config.kafka.brokers; }

  void start_clock() {
    if (options.fake_clock) {
      auto fake_time = std::make_unique<simulated_wall_time>(*options.fake_clock);
      fake = fake_time.get();
      time = std::move(fake_time);
      spdlog::warn("running on a SIMULATED clock starting at {} (--fake-clock): for tests only",
                   format_rfc3339(*options.fake_clock));
    } else {
      time = std::make_unique<system_time>();
    }
    started = time->now();
    started_monotonic = time->monotonic();
    healthy = std::make_unique<health>(*time, health::limits{});
  }

  // While a start runs under systemd (Type=notify), its timeout is extended
  // 30 s at a time, with a STATUS= line saying what it does, as long as it
  // makes progress (health::progressing): a re-index of a whole store can
  // take hours (docs/capacity.md), a start that hangs is still killed.
  void start_notes() {
    if (std::getenv("NOTIFY_SOCKET") == nullptr) return;
    start_over = std::make_unique<alarm>(*time);
    const auto note = [this](const std::string& line) {
      sd_notify(0, fmt::format("EXTEND_TIMEOUT_USEC=30000000\nSTATUS=starting: {}", line).c_str());
    };
    note(healthy->line());
    start_notifier = std::thread([this, note, last = healthy->line(), sent = time->monotonic()]() mutable {
      bool stalled = false;
      while (!start_over->wait_for(std::chrono::seconds(1), [this] { return start_done; })) {
        const auto line = healthy->line();
        if (!healthy->progressing()) {
          if (!stalled)
            spdlog::error("start-up: no progress ({}): systemd's start timeout is no longer extended", line);
          stalled = true;
        } else if (line != last || time->monotonic() - sent >= std::chrono::seconds(10)) {
          note(line);
          last = line;
          sent = time->monotonic();
          stalled = false;
        }
      }
    });
  }

  void end_start_notes() {
    if (!start_over) return;
    start_over->notify([this] { start_done = true; });
    start_notifier.join();
    start_over.reset();
  }

  void start_metrics() {
    metrics = std::make_unique<metrics::endpoint>();
    probe = std::make_unique<metrics::daemon_probe>(metrics->registry(), version(), revision());
    metrics->collect_daemon([this] {
      return metrics::daemon_snapshot{time->simulated(), to_seconds(time->now()), admin ? admin->connections() : 0};
    });
    const auto probe_reply = [](const health::verdict& v) {
      return admin::http_reply{v.ok ? 200u : 503u, "application/json", v.body.dump() + "\n"};
    };
    std::map<std::string, admin::http_route> routes{
        {"/metrics", {[this] {
           return admin::http_reply{200, metrics::endpoint::content_type, metrics->scrape()};
         }}},
        {"/healthz", {[this, probe_reply] { return probe_reply(healthy->alive()); }, true}},
        {"/readyz", {[this, probe_reply] { return probe_reply(healthy->ready()); }, true}}};
    try {
      web = std::make_unique<admin::http_server>(admin::http_options{config.metrics.host, config.metrics.port},
                                                 std::move(routes));
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(fmt::format("metrics.host, metrics.port: {}", e.what()));
    }
    spdlog::info("metrics on http://{}/metrics (probes /healthz, /readyz)", web->address());
  }

  // Every topic the configuration reads or writes must exist before the
  // start goes on: a missing one is named, with its key and the command
  // that creates it (exit 2). Brokers that do not answer are an outage, not
  // a refusal: ingest waits for them as for any other.
  void check_topics() {
    if (embedded) return;
    const auto& k = config.kafka;
    struct need {
      const char* key;
      std::string topic;
      const char* partitions;
    };
    std::vector<need> needed{{"kafka.topics.cdr", k.topic_cdr, "<N>"},
                             {"kafka.topics.usage", k.topic_usage, "<N>"},
                             {"kafka.topics.dead_letter", k.topic_dead_letter, "<N>"},
                             {"kafka.topics.deletion_events", k.topic_deletion_events, "<N>"}};
    if (k.fleet()) {
      needed.push_back({"kafka.topics.control", k.topic_control, "1"});
      needed.push_back({"kafka.topics.replies", k.topic_replies, "1"});
      needed.push_back({"kafka.topics.handover", k.topic_handover, "<N>"});
    }
    std::vector<std::string> topics;
    for (const auto& n : needed) topics.push_back(n.topic);
    constexpr auto wait = std::chrono::seconds(10);
    const auto missing = kafka::missing_topics({bootstrap(), k.client_id + "-topic-check", k.properties}, topics, wait);
    if (!missing) {
      spdlog::warn("kafka: the brokers did not answer within {} s: the topics' existence is not checked", wait.count());
      return;
    }
    if (missing->empty()) return spdlog::info("kafka: the {} topics this configuration uses exist", topics.size());
    std::string what;
    for (const auto& n : needed) {
      if (std::find(missing->begin(), missing->end(), n.topic) == missing->end()) continue;
      what += fmt::format("\n  {} = \"{}\": kafka-topics.sh --bootstrap-server {} --create --topic {} --partitions {}",
                          n.key, n.topic, config.kafka.brokers, n.topic, n.partitions);
    }
    throw start_refused(fmt::format(
        "{} topic(s) this configuration uses do not exist on the cluster (or this client may not describe "
        "them); create them (retention and settings: docs/operations.md, \"Topics\") or correct the keys:{}",
        missing->size(), what));
  }

  void open_store() {
    store = std::make_unique<store::store>(config.storage);
    state = std::make_unique<store::saved_state>(*store);
    spdlog::info("store open at {}", config.storage.path);
    // Unreadable saved state is named (logged) now, before anything reads it.
    if (const auto bad = state->check_all(); !bad.empty()) {
      spdlog::critical("{} saved-state entr(ies) do not decode: sweeps and erasures are refused; ingest goes on",
                       bad.size());
    }
    bind_keystore(*store, *state, *keystore, options.new_keystore);
    vault = std::make_unique<service::vault>(*keystore, config.storage.max_seals_per_key);
    // Before anything reads or writes the subject index.
    const auto ledgered = [this] {
      return erasure_ledger(erasure_ledger::beside(config.storage.keystore_path), *keystore).index_hashes();
    };
    healthy->step("re-indexing identifiers (if the form changed)");
    auto [forms, report] =
        bring_to_form(*store, *state, *vault, phone::parser(), identity_form(config.events.default_region), ledgered,
                      1000, [this](std::uint64_t records) { healthy->advance(records, 0, "records read"); });
    ids = std::move(forms);
    spdlog::info("identifiers in form \"{}\"{}", ids.form(),
                 ids.earlier().empty() ? "" : fmt::format(" (earlier: {})", fmt::join(ids.earlier(), ", ")));
    metrics->collect_store([this] { return store_figures(); });
  }

  metrics::store_snapshot store_figures() const {
    metrics::store_snapshot s{{{"cdr", 0}, {"usage", 0}}, {}, store->write_stopped(),
                              store->stall_micros(),      {}, store->corrupt_entries()};
    for (const auto& [p, n] : store->counts()) s.records_by_kind[std::string(name(p.kind))] += static_cast<double>(n);
    for (const auto& f : store->sizes()) s.bytes_by_family.emplace_back(f.name, f.bytes);
    if (ingest) {
      for (const auto& [tp, l] : ingest->lag()) s.lag.push_back({tp.topic, tp.partition, l});
    }
    return s;
  }

  void start_retention() {
    retention_probe = std::make_unique<metrics::retention_probe>(metrics->registry());
    // The audit chain's key comes from the master key; a trail of an earlier
    // build (plain SHA-256) is re-keyed once, until the key store records
    // that it is keyed.
    const bool keyed = keystore->has_marker(audit_keyed_marker);
    retention = std::make_unique<service::retention>(
        config, *time, *store, *state, *retention_probe, subject_key, *vault,
        audit_keying{keystore->stable_secret("audit chain"), !keyed}, kafka_event_sink(config, bootstrap()), ids);
    if (!keyed) keystore->add_marker(audit_keyed_marker);
    // A simulated clock starts where the test says: a deliberate move.
    if (fake != nullptr) retention->clock_moved_deliberately();
    metrics->collect_retention([this] {
      auto f = retention->figures();
      if (fleet) fleet->figures(f);
      return f;
    });
    if (config.kafka.fleet()) {
      // Before the first sweep: none removes anything before the control
      // topic is applied up to where it ended when the sweep started.
      fleet = std::make_unique<fleet_node>(config, kafka_log(config, bootstrap()), *time, subject_key, load_fleet_key(),
                                           *retention);
      retention->set_sweep_barrier([this] { fleet->control().catch_up(); });
    }
    retention->set_erasure_fence([this] {
      auto* i = fenced_ingest.load();
      return i == nullptr || i->fence(std::chrono::seconds(30));
    });
    retention->start();
    if (fleet) fleet->start();
  }

  // A fleet key file that cannot be read is a configuration error: the
  // start is refused (exit 2), as --check-config says.
  fleet_key load_fleet_key() const {
    try {
      return fleet_key::load(config.kafka, subject_key);
    } catch (const std::runtime_error& e) {
      throw start_refused(fmt::format("kafka.fleet_key_file / kafka.fleet_accept_key_files: {}", e.what()));
    }
  }

  void start_ingest() {
    ingest_probe = std::make_unique<metrics::ingest_probe>(
        metrics->registry(), std::vector<std::string>{config.kafka.topic_cdr, config.kafka.topic_usage});
    ingest = std::make_unique<service::ingest>(
        config, bootstrap(), *time, *store, *ingest_probe, subject_key, *vault,
        [this](std::string why) {
          exit_code = 1;
          asio::post(io, [this, why] {
            spdlog::critical("stopping: {}", why);
            io.stop();
          });
        },
        [this] { return retention->holds(); }, [this] { return retention->decision_now(); },
        [this] { return retention->erased_subjects(); }, ids);
    ingest->start();
    fenced_ingest = ingest.get();
    spdlog::info("consuming {} and {} as group {}", config.kafka.topic_cdr, config.kafka.topic_usage,
                 config.kafka.group_id);
    if (config.demo.enabled) demo = std::make_unique<demo_traffic>(config, bootstrap(), *time);
  }

  void start_admin() {
    const auto& a = config.admin;
    admin::server_options o{a.socket, admin::lookup_group(a.socket_group), a.max_connections, a.max_request_bytes,
                            a.idle_timeout};
    if (!a.socket_group.empty() && !o.socket_gid) {
      throw std::runtime_error(fmt::format("admin.socket_group: group \"{}\" does not exist", a.socket_group));
    }
    admin_ctx.reset(new admin_context{config, *time, fake, started, started_monotonic, *reloader, *store, *retention,
                                      *keystore, *vault, web->address(), embedded.get(), ingest.get(), demo.get(),
                                      fleet.get(), subject_key});
    admin = std::make_unique<admin::server>(io, o, groups_of(a), [this](const admin::request& r, const admin::peer& p) {
      return dispatch(*admin_ctx, *probe, r, p);
    });
    if (fleet) {
      admin_ctx->drain = [this](std::uint32_t uid) {
        std::unique_lock once(draining, std::try_to_lock);
        if (!once.owns_lock()) throw fleet_unavailable("a drain is already running on this member");
        const drain_parts parts{
            config,
            *time,
            bootstrap(),
            *fleet,
            *retention,
            [this] { return ingest->status().value("assignment", nlohmann::json::object()); },
            [this] { return ingest->joined(); },
            [this] {
              fenced_ingest = nullptr;
              if (!ingest->stop(/*leave_group=*/true)) {
                return std::string("ingest did not stop: the member cannot leave the consumer group");
              }
              if (!ingest->left_committed()) {
                return std::string(
                    "the consumer group did not take this member's offsets as it left, so its "
                    "partitions' next owners re-read records this store holds; nothing was "
                    "handed over or emptied (restart the member: it commits its store's "
                    "offsets when its partitions come back; then drain again)");
              }
              return std::string();
            },
            subject_key};
        return drain(parts, uid);
      };
      fleet->queries().set_answerer([this](const control_message& q, const std::optional<std::string>& identifier) {
        return answer_for_fleet(*admin_ctx, *probe, q, identifier);
      });
    }
    spdlog::info("admin socket at {}", a.socket);
  }

  // SIGHUP: the reloadable keys go to their owners.
  void reload() {
    const auto next = reloader->reload();
    probe->reload(next.has_value());
    if (!next) return;
    logging::set_level(next->log.level);
    retention->set_schedule(next->sweep.interval, next->sweep.jitter);
    retention->set_max_clock_jump(next->sweep.max_clock_jump);
    admin->set_groups(groups_of(next->admin));
  }

  void arm_watchdog(asio::steady_timer& timer, std::chrono::microseconds interval) {
    timer.expires_after(interval);
    timer.async_wait([this, &timer, interval](boost::system::error_code ec) {
      if (ec) return;
      sd_notify(0, "WATCHDOG=1");
      arm_watchdog(timer, interval);
    });
  }

  // The probes' liveness: the loop ticks every second.
  void arm_heartbeat(asio::steady_timer& timer) {
    healthy->tick();
    timer.expires_after(std::chrono::seconds(1));
    timer.async_wait([this, &timer](boost::system::error_code ec) {
      if (!ec) arm_heartbeat(timer);
    });
  }

  // systemd's STATUS= line says what long operation runs (`systemctl
  // status`), checked every second and sent when it changes.
  void arm_status_line(asio::steady_timer& timer, std::string last) {
    timer.expires_after(std::chrono::seconds(1));
    timer.async_wait([this, &timer, last = std::move(last)](boost::system::error_code ec) {
      if (ec) return;
      auto line = retention->activity().line();
      if (line.empty()) line = "serving";
      if (line != last) sd_notify(0, ("STATUS=" + line).c_str());
      arm_status_line(timer, std::move(line));
    });
  }

  int serve() {
    std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        // systemd shows the unit "reloading" until READY=1 (ExecReload;
        // Type=notify-reload, which also wants MONOTONIC_USEC, needs
        // systemd 253, after Debian 12's).
        sd_notify(0, "RELOADING=1");
        reload();
        sd_notify(0, "READY=1");
        signals->async_wait(on_signal);
        return;
      }
      spdlog::info("{} received: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      healthy->stopping();
      sd_notify(0, "STOPPING=1");
      io.stop();
    };
    signals->async_wait(on_signal);
    asio::steady_timer watchdog(io);
    std::uint64_t watchdog_usec = 0;
    if (sd_watchdog_enabled(0, &watchdog_usec) > 0) {
      arm_watchdog(watchdog, std::chrono::microseconds{watchdog_usec / 2});
      spdlog::info("systemd watchdog: pinging every {} ms", watchdog_usec / 2000);
    }
    asio::steady_timer heartbeat(io);
    arm_heartbeat(heartbeat);
    end_start_notes();
    healthy->serving();
    sd_notify(0, "READY=1\nSTATUS=serving");
    asio::steady_timer status_line(io);
    if (std::getenv("NOTIFY_SOCKET") != nullptr) arm_status_line(status_line, "serving");
    spdlog::info("ready");
    io.run();
    return stop();
  }

  int stop() {
    healthy->stopping();
    // No scrape or probe reads a part while it is torn down.
    web.reset();
    // The control topic first: an erasure it applies may wait on ingest.
    if (fleet) fleet->stop();
    demo.reset();
    fenced_ingest = nullptr;
    const bool clean = ingest->stop();
    const bool abandoned = clean && ingest->abandoned();
    if (clean && !abandoned) {
      ingest.reset();
    } else {
      // Its thread is still running, or its consumer would wait for the
      // group to be destroyed: never destroyed, the process exits.
      static_cast<void>(ingest.release());
    }
    admin.reset();
    retention->stop();
    if (!clean) {
      // The consumer thread is still running; tearing the store down under
      // it would be worse than leaving now. RocksDB's WAL keeps what was
      // written.
      spdlog::error("stopped without finishing ingest");
      std::_Exit(exit_code.load());
    }
    fleet.reset();
    retention.reset();
    vault.reset();
    state.reset();
    store.reset();
    keystore.reset();
    embedded.reset();
    spdlog::info("stopped");
    if (abandoned) std::_Exit(exit_code.load());  // the consumer left without closing is not torn down
    return exit_code.load();
  }
};

daemon::daemon(daemon_config config, daemon_options options) : impl_(std::make_unique<impl>()) {
  impl_->config = std::move(config);
  impl_->options = std::move(options);
  impl_->digest = crypto::sha256_hex(impl_->config.effective_json);
}

daemon::~daemon() = default;

namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (const int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
  return set;
}

}  // namespace

void hold_stop_signals() {
  const auto set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int daemon::run() {
  auto& d = *impl_;
  // The handler first, then the signals held since main() are let through
  // to it (this thread only: the threads started meanwhile keep them
  // blocked, so Asio's handler runs here).
  d.signals = std::make_unique<asio::signal_set>(d.io, SIGTERM, SIGINT, SIGHUP);
  const auto set = stop_signals();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  d.start_clock();
  d.healthy->step("opening the key store");
  d.start_notes();
  d.reloader = std::make_unique<config_reloader>(d.options, d.config, d.digest);
  spdlog::info("cdr-retentiond {} ({}) starting, config {} (sha256:{})", version(), revision(), d.options.config_path,
               d.digest.substr(0, 12));
  // The keys first: a wrong master key or a lost key store stops the start
  // before anything is written.
  d.subject_key = crypto::load_key_file(d.config.storage.subject_key_file);
  d.keystore = open_keystore(d.config.storage, d.options.new_keystore, d.options.new_store);
  d.start_metrics();
  d.embedded = embedded_broker(d.config.kafka);
  d.healthy->step("checking the Kafka topics");
  d.check_topics();
  d.healthy->step("opening the store");
  d.open_store();
  d.healthy->step("finishing interrupted sweeps and erasures, verifying the audit trail");
  d.start_retention();
  d.healthy->step("starting ingest");
  d.start_ingest();
  d.healthy->step("opening the admin socket");
  d.start_admin();
  return d.serve();
}

std::vector<std::string> config_problems(const daemon_config& config) {
  auto out = kafka::property_problems(config.kafka.properties);
  const auto& region = config.events.default_region;
  if (!region.empty() && !phone::known_region(region)) {
    out.push_back(fmt::format("events.default_region: \"{}\" is not a region libphonenumber knows", region));
  }
  return out;
}

environment_check check_environment(const daemon_config& config) {
  environment_check out;
  const auto check = [&](const char* key, const std::function<void()>& load) {
    try {
      load();
    } catch (const std::exception& e) {
      out.fatal.push_back(fmt::format("{}: {}", key, e.what()));
    }
  };
  check("storage.subject_key_file", [&] { crypto::load_key_file(config.storage.subject_key_file); });
  check("storage.master_key_file", [&] { crypto::load_master_key(config.storage.master_key_file); });
  if (config.kafka.fleet()) {
    check("kafka.fleet_key_file", [&] {
      static_cast<void>(fleet_key::load(config.kafka, crypto::load_key_file(config.storage.subject_key_file)));
    });
  }
  for (auto& why : config_problems(config)) out.fatal.push_back(std::move(why));
  const auto& a = config.admin;
  if (!a.socket_group.empty() && !admin::lookup_group(a.socket_group)) {
    out.fatal.push_back(fmt::format("admin.socket_group: group \"{}\" does not exist", a.socket_group));
  }
  for (const auto& [key, group] :
       {std::pair{"admin.operator_group", a.operator_group}, std::pair{"admin.viewer_group", a.viewer_group}}) {
    if (!group.empty() && !admin::lookup_group(group)) {
      out.warnings.push_back(fmt::format("{}: group \"{}\" does not exist; nobody gets its rights", key, group));
    }
  }
  return out;
}

void rewrap_master_key(const daemon_config& config, const std::string& new_master_file) {
  // Opening the store takes its lock: a running daemon (which may add keys
  // meanwhile) makes this fail instead of losing them.
  store::store locked(config.storage);
  crypto::keystore keys(config.storage.keystore_path, crypto::load_master_key(config.storage.master_key_file), false);
  keys.rewrap(crypto::load_master_key(new_master_file));
}

}  // namespace cdr::service
