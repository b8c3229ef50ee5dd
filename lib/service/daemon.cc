#include "cdr/service/daemon.h"

#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include "cdr/admin/server.h"
#include "cdr/core/hex.h"
#include "cdr/core/ingest.h"
#include "cdr/crypto/crypto.h"
#include "cdr/crypto/keystore.h"
#include "cdr/kafka/embedded_cluster.h"
#include "cdr/logging/logging.h"
#include "cdr/metrics/ingest_probe.h"
#include "cdr/metrics/metrics.h"
#include "cdr/metrics/retention_probe.h"
#include "cdr/store/store.h"
#include "demo.h"
#include "ingest.h"
#include "retention.h"

namespace cdr::service {
namespace asio = boost::asio;

std::string_view version() { return CDR_VERSION; }
std::string_view revision() { return CDR_REVISION; }

namespace {

// The real clock; the only place the daemon reads wall time.
class system_time final : public clock {
 public:
  instant now() const override {
    return std::chrono::floor<microseconds>(std::chrono::system_clock::now());
  }
  bool simulated() const override { return false; }
};

// A stored JSON value as JSON (it was validated at ingest).
nlohmann::json as_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::json(text) : j;
}

// A stored record as JSON, its identifiers opened. When they cannot be
// ("key_destroyed": stripped in a restored copy; "unreadable": tampered),
// identifiers is null and identifiers_status says why.
nlohmann::json record_json(const store::stored_record& r, const retention& keeper) {
  nlohmann::json out{{"kind", name(r.where.kind)},
                     {"id", r.id},
                     {"month", r.where.month.to_string()},
                     {"class", r.where.cls}};
  if (r.where.kind == record_kind::cdr) {
    out["metadata"] = as_json(r.metadata);
    const auto ids = keeper.identifiers_of(r);
    out["identifiers"] = ids.json ? as_json(*ids.json) : nlohmann::json(nullptr);
    if (!ids.json && ids.status != "none") out["identifiers_status"] = ids.status;
  } else {
    out["record"] = as_json(r.metadata);
  }
  return out;
}

// Metrics of the daemon itself, declared in one place.
struct daemon_probe {
  explicit daemon_probe(prometheus::Registry& r)
      : admin_requests(prometheus::BuildCounter()
                           .Name("cdr_retention_admin_requests_total")
                           .Help("Admin socket requests by command and outcome (ok or an error code).")
                           .Register(r)),
        reloads(prometheus::BuildCounter()
                    .Name("cdr_retention_config_reloads_total")
                    .Help("SIGHUP configuration reloads by result (applied or refused).")
                    .Register(r)) {
    prometheus::BuildGauge()
        .Name("cdr_retention_build_info")
        .Help("Build information; the value is always 1.")
        .Register(r)
        .Add({{"version", std::string(version())}, {"revision", std::string(revision())}})
        .Set(1);
  }
  void admin_request(std::string_view command, std::string_view outcome) {
    admin_requests.Add({{"command", std::string(command)}, {"outcome", std::string(outcome)}}).Increment();
  }
  prometheus::Family<prometheus::Counter>& admin_requests;
  prometheus::Family<prometheus::Counter>& reloads;
};

// "a.b.c" -> value, for comparing two effective configurations.
void flatten(const nlohmann::json& j, const std::string& prefix, std::map<std::string, nlohmann::json>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
  } else {
    out[prefix] = j;
  }
}

// Opens the key store (creating it, and its directory, for a new store).
// A missing key store next to an existing store is refused unless
// new_keystore: its identifiers would silently become unreadable.
std::unique_ptr<crypto::keystore> open_keystore(const storage_config& c, bool new_keystore) {
  auto master = crypto::load_master_key(c.master_key_file);
  const bool exists = crypto::keystore::exists(c.keystore_path);
  const bool store_exists = std::filesystem::exists(std::filesystem::path(c.path) / "CURRENT");
  if (!exists && store_exists && !new_keystore) {
    throw std::runtime_error(fmt::format(
        "the key store {} (storage.keystore_path) is missing, but the store at {} exists: restore the key store "
        "from its backup (docs/operations.md, \"Key store\"); or, if it is lost for good, start once with "
        "--new-keystore, knowing that the identifiers already stored stay unreadable",
        c.keystore_path, c.path));
  }
  if (!exists) {
    const auto dir = std::filesystem::path(c.keystore_path).parent_path();
    if (!dir.empty()) {
      std::filesystem::create_directories(dir);
      std::filesystem::permissions(dir, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace);
    }
    spdlog::warn("creating a new key store at {}", c.keystore_path);
  }
  auto keys = std::make_unique<crypto::keystore>(c.keystore_path, std::move(master), !exists);
  spdlog::info("key store {} open: {} live key(s), {} destroyed", c.keystore_path, keys->live(),
               keys->destroyed_total());
  return keys;
}

// Records which key store the store is sealed under; a store written under
// another key store is refused (unless new_keystore).
void bind_keystore(store::store& s, const crypto::keystore& keys, bool new_keystore) {
  const auto id = cdr::to_hex(keys.id());
  const auto bound = s.entry("keystore_id");
  if (bound && *bound == id) return;
  if (bound && !new_keystore) {
    throw std::runtime_error(fmt::format(
        "the store was written under key store {} but {} is key store {}: point storage.keystore_path at the "
        "right one (or start with --new-keystore if it is lost for good)",
        *bound, keys.path(), id));
  }
  if (bound) spdlog::warn("--new-keystore: identifiers sealed under key store {} stay unreadable", *bound);
  store::change c(s);
  c.put_entry("keystore_id", id);
  s.apply(c);
}

// Keys a SIGHUP applies; every other change needs a restart.
const std::set<std::string> reloadable_keys{"log.level", "sweep.interval", "sweep.jitter", "admin.operator_group",
                                            "admin.viewer_group"};

}  // namespace

struct daemon::impl {
  daemon_config config;
  daemon_options options;
  std::unique_ptr<clock> time;
  manual_clock* fake = nullptr;  // set when time is simulated
  instant started{};
  std::string digest;

  asio::io_context io;
  std::unique_ptr<metrics::endpoint> metrics;
  std::unique_ptr<daemon_probe> probe;
  std::unique_ptr<kafka::embedded_cluster> embedded;
  std::unique_ptr<crypto::keystore> keystore;
  std::unique_ptr<service::vault> vault;
  std::unique_ptr<store::store> store;
  std::unique_ptr<metrics::ingest_probe> ingest_probe;
  std::unique_ptr<metrics::retention_probe> retention_probe;
  std::unique_ptr<service::retention> retention;
  std::unique_ptr<service::ingest> ingest;
  std::unique_ptr<demo_traffic> demo;
  std::unique_ptr<admin::server> admin;
  std::string subject_key;
  std::atomic<int> exit_code{0};
  std::chrono::steady_clock::time_point started_steady = std::chrono::steady_clock::now();

  // What `config` shows: the configuration in effect (start-up values plus
  // reloaded keys). Guarded: admin commands run on worker threads.
  mutable std::mutex effective_mutex;
  nlohmann::json effective;
  std::vector<std::string> restart_needed;

  static admin::group_policy groups(const admin_config& admin) {
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

  nlohmann::json status() const {
    const auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_steady).count();
    nlohmann::json kafka{{"brokers", config.kafka.brokers},
                         {"group_id", config.kafka.group_id},
                         {"topics",
                          {{"cdr", config.kafka.topic_cdr},
                           {"usage", config.kafka.topic_usage},
                           {"dead_letter", config.kafka.topic_dead_letter}}}};
    if (embedded) kafka["embedded_bootstrap"] = embedded->bootstrap_servers();
    if (ingest) kafka["consumer"] = ingest->status();
    if (demo) kafka["demo_events_produced"] = demo->produced();
    nlohmann::json records{{"cdr", 0}, {"usage", 0}};
    std::size_t partitions = 0;
    for (const auto& [p, n] : store->counts()) {
      records[std::string(name(p.kind))] = records[std::string(name(p.kind))].get<std::int64_t>() + n;
      ++partitions;
    }
    nlohmann::json bytes = nlohmann::json::object();
    for (const auto& f : store->sizes()) bytes[f.name] = f.bytes;
    return {{"version", version()},
            {"revision", revision()},
            {"pid", getpid()},
            {"started_at", format_rfc3339(started)},
            {"uptime_seconds", uptime},
            {"clock", {{"source", time->simulated() ? "simulated" : "real"}, {"now", format_rfc3339(time->now())}}},
            {"config", config_status()},
            {"metrics", {{"listen", metrics->address()}}},
            {"kafka", kafka},
            {"retention", retention_status()},
            {"keystore",
             {{"path", keystore->path()},
              {"keys_live", keystore->live()},
              {"keys_destroyed", keystore->destroyed_total()},
              {"decrypt_failures", vault->decrypt_failures()}}},
            {"storage",
             {{"path", config.storage.path},
              {"records", records},
              {"partitions", partitions},
              {"bytes", bytes},
              {"write_stopped", store->write_stopped()}}}};
  }

  nlohmann::json config_status() const {
    std::lock_guard lock(effective_mutex);
    return {{"path", options.config_path}, {"digest", "sha256:" + digest}, {"restart_needed_for", restart_needed}};
  }

  // SIGHUP: re-read the file (with the same --set overrides). Reloadable
  // keys apply now; others are reported as needing a restart; an invalid
  // file changes nothing.
  void reload() {
    std::ifstream file(options.config_path);
    std::stringstream text;
    text << file.rdbuf();
    auto parsed = file ? parse_config(text.str(), options.config_path, options.overrides)
                       : std::variant<daemon_config, config_error>(
                             config_error{options.config_path, 0, "", "cannot read the file"});
    if (auto* err = std::get_if<config_error>(&parsed)) {
      spdlog::error("configuration reload refused, the running configuration stays: {}", err->to_string());
      probe->reloads.Add({{"result", "refused"}}).Increment();
      return;
    }
    const auto& next = std::get<daemon_config>(parsed);
    std::map<std::string, nlohmann::json> before, after;
    {
      std::lock_guard lock(effective_mutex);
      flatten(effective, "", before);
    }
    flatten(nlohmann::json::parse(next.effective_json), "", after);
    std::vector<std::string> applied, restart;
    for (const auto& [key, value] : after) {
      const auto it = before.find(key);
      if (it != before.end() && it->second == value) continue;
      (reloadable_keys.count(key) != 0 ? applied : restart).push_back(key);
    }
    for (const auto& [key, value] : before) {
      if (after.count(key) == 0) restart.push_back(key);
    }
    logging::set_level(next.log.level);
    retention->set_schedule(next.sweep.interval, next.sweep.jitter);
    admin->set_groups(groups(next.admin));
    {
      std::lock_guard lock(effective_mutex);
      for (const auto& key : applied) {
        std::string pointer = "/" + key;
        std::replace(pointer.begin(), pointer.end(), '.', '/');
        effective[nlohmann::json::json_pointer(pointer)] = after[key];
      }
      restart_needed = restart;
    }
    probe->reloads.Add({{"result", "applied"}}).Increment();
    spdlog::warn("configuration reloaded from {}: applied [{}]; needs a restart: [{}]", options.config_path,
                 fmt::join(applied, ", "), fmt::join(restart, ", "));
  }

  nlohmann::json retention_status() const {
    const auto g = retention->figures();
    return {{"holds_active", g.holds_active},
            {"records_held", g.records_held},
            {"overdue_partitions", g.overdue_partitions},
            {"overdue_records", g.overdue_records},
            {"deletion_events_pending", g.events_pending},
            {"sweep_interval", format_duration(retention->interval())}};
  }

  admin::reply advance_clock(const admin::request& req) {
    if (fake == nullptr) {
      return admin::error{req.id, admin::error_code::unavailable,
                          "the daemon runs on the real clock; debug advance-clock needs --fake-clock"};
    }
    auto arg = admin::string_arg(req, "duration");
    if (auto* e = std::get_if<admin::error>(&arg)) return *e;
    const auto& text = std::get<std::optional<std::string>>(arg);
    const auto by = text ? parse_duration(*text) : std::nullopt;
    if (!by) {
      return admin::error{req.id, admin::error_code::invalid_argument,
                          "\"duration\" must be a duration such as 90s, 45m, 12h or 17d"};
    }
    const auto before = fake->now();
    fake->advance(*by);
    spdlog::warn("simulated clock advanced by {}: {} -> {}", *text, format_rfc3339(before), format_rfc3339(fake->now()));
    return nlohmann::json{{"before", format_rfc3339(before)}, {"now", format_rfc3339(fake->now())}};
  }

  admin::reply record_get(const admin::request& req) {
    auto id = admin::required_string_arg(req, "id");
    auto kind = admin::string_arg(req, "kind");
    if (auto* e = std::get_if<admin::error>(&id)) return *e;
    if (auto* e = std::get_if<admin::error>(&kind)) return *e;
    const auto& id_text = std::get<std::string>(id);
    std::vector<record_kind> kinds{record_kind::cdr, record_kind::usage};
    if (const auto& k = std::get<std::optional<std::string>>(kind)) {
      const auto parsed = record_kind_from_name(*k);
      if (!parsed) return admin::error{req.id, admin::error_code::invalid_argument, "\"kind\" must be cdr or usage"};
      kinds = {*parsed};
    }
    for (auto k : kinds) {
      if (auto r = store->get(k, id_text)) return record_json(*r, *retention);
    }
    return admin::error{req.id, admin::error_code::not_found, "no stored record has that id"};
  }

  admin::reply subject_export(const admin::request& req, const admin::peer& peer) {
    auto arg = admin::required_string_arg(req, "identifier");
    if (auto* e = std::get_if<admin::error>(&arg)) return *e;
    const auto& identifier = std::get<std::string>(arg);
    const auto normalized = normalize_identifier(identifier);
    const auto hash = crypto::hmac_sha256(subject_key, normalized);
    admin::stream out;
    for (const auto& key : retention->subject_records(normalized)) {
      if (auto r = store->get(record_kind::cdr, record_id_of(key))) out.items.push_back(record_json(*r, *retention));
    }
    out.result = {{"records", out.items.size()}, {"subject", cdr::to_hex(hash)}};
    retention->subject_exported(hash, out.items.size(), peer.uid);
    spdlog::info("subject export by uid {}: subject {} ({} records)", peer.uid, cdr::to_hex(hash).substr(0, 16),
                 out.items.size());
    return out;
  }

  admin::reply sweep(const admin::request& req, const admin::peer& peer) {
    const auto dry = req.args.find("dry_run");
    if (dry != req.args.end() && !dry->is_boolean()) {
      return admin::error{req.id, admin::error_code::invalid_argument, "\"dry_run\" must be true or false"};
    }
    auto as_of = admin::string_arg(req, "as_of");
    if (auto* e = std::get_if<admin::error>(&as_of)) return *e;
    const auto& text = std::get<std::optional<std::string>>(as_of);
    const bool dry_run = dry != req.args.end() && dry->get<bool>();
    if (text && !dry_run) {
      return admin::error{req.id, admin::error_code::invalid_argument, "\"as_of\" needs \"dry_run\": a sweep runs now"};
    }
    if (dry_run) {
      const auto t = text ? parse_rfc3339(*text) : std::optional<instant>(time->now());
      if (!t) return admin::error{req.id, admin::error_code::invalid_argument, "\"as_of\" must be an RFC 3339 time"};
      return retention->forecast(*t);
    }
    return retention->sweep("admin", peer.uid);
  }

  admin::reply hold(const admin::request& req, const admin::peer& peer) {
    if (req.command == "hold list") return retention->hold_list();
    if (req.command == "hold add") {
      auto r = retention->hold_add(req.args, peer.uid);
      if (auto* msg = std::get_if<std::string>(&r)) return admin::error{req.id, admin::error_code::invalid_argument, *msg};
      return std::get<nlohmann::json>(std::move(r));
    }
    const auto it = req.args.find("id");
    std::optional<std::uint64_t> id;
    if (it != req.args.end() && it->is_number_unsigned()) id = it->get<std::uint64_t>();
    if (it != req.args.end() && it->is_string()) {
      const auto& s = it->get_ref<const std::string&>();
      char* end = nullptr;
      const auto v = std::strtoull(s.c_str(), &end, 10);
      if (!s.empty() && *end == '\0' && s[0] != '-') id = v;
    }
    if (!id) return admin::error{req.id, admin::error_code::invalid_argument, "\"id\" must be a hold id"};
    if (auto r = retention->hold_release(*id, peer.uid)) return *r;
    return admin::error{req.id, admin::error_code::not_found, "no active hold has that id"};
  }

  admin::reply subject_erase(const admin::request& req, const admin::peer& peer) {
    auto arg = admin::required_string_arg(req, "identifier");
    if (auto* e = std::get_if<admin::error>(&arg)) return *e;
    const auto& identifier = std::get<std::string>(arg);
    return retention->subject_erase(identifier, peer.uid);
  }

  admin::reply checkpoint(const admin::request& req, const admin::peer& peer) {
    auto arg = admin::string_arg(req, "to");
    if (auto* e = std::get_if<admin::error>(&arg)) return *e;
    const auto& to = std::get<std::optional<std::string>>(arg);
    if (!to || to->empty() || (*to)[0] != '/') {
      return admin::error{req.id, admin::error_code::invalid_argument, "\"to\" must be an absolute directory path"};
    }
    if (std::filesystem::exists(*to)) {
      return admin::error{req.id, admin::error_code::invalid_argument, "\"to\" must not exist yet"};
    }
    return retention->checkpoint(*to, peer.uid);
  }

  admin::reply audit(const admin::request& req) {
    if (req.command == "audit verify") {
      const auto v = retention->audit().verify();
      nlohmann::json out{{"ok", v.ok}, {"entries", v.entries}, {"path", retention->audit().path()}};
      if (!v.ok) {
        out["problem"] = v.problem;
        out["line"] = v.line;
      }
      return out;
    }
    auto since = admin::string_arg(req, "since");
    if (auto* e = std::get_if<admin::error>(&since)) return *e;
    std::optional<instant> from;
    if (const auto& text = std::get<std::optional<std::string>>(since)) {
      from = parse_rfc3339(*text);
      if (!from) return admin::error{req.id, admin::error_code::invalid_argument, "\"since\" must be an RFC 3339 time"};
    }
    admin::stream out;
    out.items = retention->audit().read(from);
    out.result = {{"records", out.items.size()}};
    return out;
  }

  admin::reply handle(const admin::request& req, const admin::peer& peer) {
    admin::reply out;
    try {
      out = dispatch(req, peer);
    } catch (const std::exception& e) {
      spdlog::error("admin: \"{}\" failed: {}", req.command, e.what());
      out = admin::error{req.id, admin::error_code::internal, e.what()};
    }
    const auto* e = std::get_if<admin::error>(&out);
    probe->admin_request(req.command, e ? admin::name(e->code) : "ok");
    spdlog::debug("admin: uid {} ran \"{}\": {}", peer.uid, req.command, e ? e->message : "ok");
    return out;
  }

  admin::reply dispatch(const admin::request& req, const admin::peer& peer) {
    admin::reply out;
    if (req.command == "sweep") {
      out = sweep(req, peer);
    } else if (req.command.rfind("hold ", 0) == 0) {
      out = hold(req, peer);
    } else if (req.command == "subject erase") {
      out = subject_erase(req, peer);
    } else if (req.command == "verify") {
      out = retention->verify();
    } else if (req.command == "checkpoint") {
      out = checkpoint(req, peer);
    } else if (req.command.rfind("audit ", 0) == 0) {
      out = audit(req);
    } else if (req.command == "record get") {
      out = record_get(req);
    } else if (req.command == "subject export") {
      out = subject_export(req, peer);
    } else if (req.command == "status") {
      out = status();
    } else if (req.command == "config") {
      std::lock_guard lock(effective_mutex);
      out = effective;
    } else if (req.command == "debug advance-clock") {
      out = advance_clock(req);
    } else {
      out = admin::error{req.id, admin::error_code::unknown_command, "no handler for " + req.command};
    }
    return out;
  }

  void arm_watchdog(asio::steady_timer& timer, std::chrono::microseconds interval) {
    timer.expires_after(interval);
    timer.async_wait([this, &timer, interval](boost::system::error_code ec) {
      if (ec) return;
      sd_notify(0, "WATCHDOG=1");
      arm_watchdog(timer, interval);
    });
  }
};

daemon::daemon(daemon_config config, daemon_options options) : impl_(std::make_unique<impl>()) {
  impl_->config = std::move(config);
  impl_->options = std::move(options);
  impl_->digest = crypto::sha256_hex(impl_->config.effective_json);
}

daemon::~daemon() = default;

int daemon::run() {
  auto& d = *impl_;
  if (d.options.fake_clock) {
    auto fake = std::make_unique<manual_clock>(*d.options.fake_clock);
    d.fake = fake.get();
    d.time = std::move(fake);
    spdlog::warn("running on a SIMULATED clock starting at {} (--fake-clock): for tests only",
                 format_rfc3339(*d.options.fake_clock));
  } else {
    d.time = std::make_unique<system_time>();
  }
  d.started = d.time->now();
  spdlog::info("cdr-retentiond {} ({}) starting, config {} (sha256:{})", version(), revision(),
               d.options.config_path, d.digest.substr(0, 12));
  // The keys first: a wrong master key or a lost key store stops the start
  // before anything is written.
  d.subject_key = crypto::load_key_file(d.config.storage.subject_key_file);
  d.keystore = open_keystore(d.config.storage, d.options.new_keystore);

  d.metrics = std::make_unique<metrics::endpoint>(d.config.metrics);
  d.probe = std::make_unique<daemon_probe>(d.metrics->registry());
  d.metrics->add(std::make_shared<metrics::callback_collector>([&d] {
    return std::vector<prometheus::MetricFamily>{
        metrics::gauge_family("cdr_retention_clock_simulated",
                              "1 when the daemon runs on a simulated clock (--fake-clock), else 0.",
                              d.time->simulated() ? 1 : 0),
        metrics::gauge_family("cdr_retention_clock_time_seconds",
                              "The daemon's notion of now, as Unix time in seconds.", to_seconds(d.time->now())),
        metrics::gauge_family("cdr_retention_admin_connections", "Open admin socket connections.",
                              d.admin ? d.admin->connections() : 0)};
  }));
  spdlog::info("metrics on http://{}/metrics", d.metrics->address());

  if (d.config.kafka.embedded()) {
    const int p = d.config.kafka.embedded_partitions;
    d.embedded = std::make_unique<kafka::embedded_cluster>(
        1, std::vector<kafka::topic_spec>{{d.config.kafka.topic_cdr, p},
                                          {d.config.kafka.topic_usage, p},
                                          {d.config.kafka.topic_dead_letter, p},
                                          {d.config.kafka.topic_deletion_events, p}});
    spdlog::warn("kafka.brokers = \"embedded\": an in-process mock broker on {} (not for production)",
                 d.embedded->bootstrap_servers());
  }

  d.store = std::make_unique<store::store>(d.config.storage);
  spdlog::info("store open at {}", d.config.storage.path);
  bind_keystore(*d.store, *d.keystore, d.options.new_keystore);
  d.vault = std::make_unique<service::vault>(*d.keystore);
  d.metrics->add(std::make_shared<metrics::callback_collector>([&d] {
    std::map<record_kind, double> by_kind{{record_kind::cdr, 0}, {record_kind::usage, 0}};
    for (const auto& [p, n] : d.store->counts()) by_kind[p.kind] += static_cast<double>(n);
    std::vector<std::pair<prometheus::Labels, double>> records, bytes, lag;
    for (const auto& [k, n] : by_kind) records.push_back({{{"kind", std::string(name(k))}}, n});
    for (const auto& f : d.store->sizes()) bytes.push_back({{{"column_family", f.name}}, static_cast<double>(f.bytes)});
    if (d.ingest) {
      for (const auto& [tp, l] : d.ingest->lag()) {
        lag.push_back({{{"topic", tp.topic}, {"partition", std::to_string(tp.partition)}}, static_cast<double>(l)});
      }
    }
    return std::vector<prometheus::MetricFamily>{
        metrics::labelled_gauge_family("cdr_retention_records", "Records stored, by kind.", records),
        metrics::labelled_gauge_family("cdr_retention_store_bytes",
                                       "Bytes of live SST files and memtables, by column family.", bytes),
        metrics::gauge_family("cdr_retention_store_write_stopped", "1 while RocksDB stops writes, else 0.",
                              d.store->write_stopped() ? 1 : 0),
        metrics::counter_family("cdr_retention_store_write_stall_seconds_total",
                                "Time RocksDB delayed or stopped writes, in seconds.",
                                static_cast<double>(d.store->stall_micros()) / 1e6),
        metrics::labelled_gauge_family(
            "cdr_retention_consumer_lag_messages",
            "Messages between the consumer's position and the partition's end (librdkafka statistics).", lag)};
  }));
  d.ingest_probe = std::make_unique<metrics::ingest_probe>(d.metrics->registry());
  const auto bootstrap = d.embedded ? d.embedded->bootstrap_servers() : d.config.kafka.brokers;
  d.retention_probe = std::make_unique<metrics::retention_probe>(d.metrics->registry());
  d.retention = std::make_unique<service::retention>(d.config, bootstrap, *d.time, *d.store, *d.retention_probe,
                                                     d.subject_key, *d.vault);
  d.metrics->add(std::make_shared<metrics::callback_collector>([&d] {
    const auto g = d.retention->figures();
    return std::vector<prometheus::MetricFamily>{
        metrics::gauge_family("cdr_retention_overdue_partitions",
                              "Partitions past a deadline, not yet swept and not held (0 when healthy).",
                              static_cast<double>(g.overdue_partitions)),
        metrics::gauge_family("cdr_retention_overdue_records", "Records in overdue partitions (0 when healthy).",
                              static_cast<double>(g.overdue_records)),
        metrics::gauge_family("cdr_retention_holds_active", "Active legal holds.", static_cast<double>(g.holds_active)),
        metrics::gauge_family("cdr_retention_records_held",
                              "Records kept past their deadline in the held store by legal holds.",
                              static_cast<double>(g.records_held)),
        metrics::gauge_family("cdr_retention_deletion_events_pending",
                              "Deletion events in the outbox, not yet acknowledged by Kafka.",
                              static_cast<double>(g.events_pending)),
        metrics::labelled_gauge_family(
            "cdr_retention_keys", "Data keys in the key store (live) and destroyed since it was created.",
            {{{{"state", "live"}}, static_cast<double>(d.keystore->live())},
             {{{"state", "destroyed"}}, static_cast<double>(d.keystore->destroyed_total())}}),
        metrics::counter_family("cdr_retention_decrypt_failures_total",
                                "Identifier values that did not decrypt (tampered or corrupt), since start.",
                                static_cast<double>(d.vault->decrypt_failures()))};
  }));
  d.retention->start();
  d.ingest = std::make_unique<service::ingest>(d.config, bootstrap, *d.time, *d.store, *d.ingest_probe, d.subject_key,
                                               *d.vault,
                                               [&d](std::string why) {
                                                 d.exit_code = 1;
                                                 asio::post(d.io, [&d, why] {
                                                   spdlog::critical("stopping: {}", why);
                                                   d.io.stop();
                                                 });
                                               },
                                               [&d] { return d.retention->holds(); });
  d.ingest->start();
  spdlog::info("consuming {} and {} as group {}", d.config.kafka.topic_cdr, d.config.kafka.topic_usage,
               d.config.kafka.group_id);
  if (d.config.demo.enabled) d.demo = std::make_unique<demo_traffic>(d.config, bootstrap, *d.time);

  admin::server_options admin_options{d.config.admin.socket, admin::lookup_group(d.config.admin.socket_group),
                                      d.config.admin.max_connections, d.config.admin.max_request_bytes,
                                      d.config.admin.idle_timeout};
  if (!d.config.admin.socket_group.empty() && !admin_options.socket_gid) {
    throw std::runtime_error(fmt::format("admin.socket_group: group \"{}\" does not exist", d.config.admin.socket_group));
  }
  d.admin = std::make_unique<admin::server>(
      d.io, admin_options, impl::groups(d.config.admin),
      [&d](const admin::request& r, const admin::peer& p) { return d.handle(r, p); });
  d.effective = nlohmann::json::parse(d.config.effective_json);
  spdlog::info("admin socket at {}", d.config.admin.socket);

  asio::signal_set signals(d.io, SIGTERM, SIGINT, SIGHUP);
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      d.reload();
      signals.async_wait(on_signal);
      return;
    }
    spdlog::info("{} received: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    sd_notify(0, "STOPPING=1");
    d.io.stop();
  };
  signals.async_wait(on_signal);

  asio::steady_timer watchdog(d.io);
  std::uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0) {
    d.arm_watchdog(watchdog, std::chrono::microseconds{watchdog_usec / 2});
    spdlog::info("systemd watchdog: pinging every {} ms", watchdog_usec / 2000);
  }
  sd_notify(0, "READY=1\nSTATUS=serving");
  spdlog::info("ready");

  d.io.run();

  d.demo.reset();
  const bool clean = d.ingest->stop();
  d.ingest.reset();
  d.admin.reset();
  d.retention->stop();
  if (!clean) {
    // The consumer thread is still running; tearing the store down under it
    // would be worse than leaving now. RocksDB's WAL keeps what was written.
    spdlog::error("stopped without finishing ingest");
    std::_Exit(d.exit_code.load());
  }
  d.retention.reset();
  d.store.reset();
  d.vault.reset();
  d.keystore.reset();
  d.embedded.reset();
  spdlog::info("stopped");
  return d.exit_code.load();
}

void rewrap_master_key(const daemon_config& config, const std::string& new_master_file) {
  // Opening the store takes its lock: a running daemon (which may add keys
  // meanwhile) makes this fail instead of losing them.
  store::store locked(config.storage);
  crypto::keystore keys(config.storage.keystore_path, crypto::load_master_key(config.storage.master_key_file), false);
  keys.rewrap(crypto::load_master_key(new_master_file));
}

}  // namespace cdr::service
