// In-process retention on a temporary RocksDB and manual time: the real
// store, key store, vault, saved state and retention units, no daemon, no
// Kafka, no sleeps. Tests "crash" by dropping what they built and opening it
// again.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include <prometheus/registry.h>

#include "cdr/core/config.h"
#include "cdr/core/identity.h"
#include "cdr/core/ingest.h"
#include "cdr/core/time_source.h"
#include "cdr/crypto/aead.h"
#include "cdr/crypto/crypto.h"
#include "cdr/crypto/keystore.h"
#include "cdr/metrics/retention_probe.h"
#include "cdr/store/saved_state.h"
#include "cdr/store/store.h"
#include "retention/retention.h"
#include "temp_dir.h"
#include "vault.h"

namespace cdr::test {

inline constexpr std::string_view subject_secret = "unit-subject-key-0123456789abcdef";

// Records deletion events instead of sending them; can refuse a number of
// rounds first.
class recording_sink final : public service::event_sink {
 public:
  std::set<std::uint64_t> send(const std::vector<deletion_event>& events) override {
    rounds.push_back(events.size());
    if (refuse > 0) {
      --refuse;
      return {};
    }
    std::set<std::uint64_t> acked;
    for (const auto& e : events) {
      acked.insert(e.event_id);
      sent.push_back(e);
    }
    return acked;
  }
  int refuse = 0;
  std::vector<std::size_t> rounds;
  std::vector<deletion_event> sent;
};

class service_fixture : public ::testing::Test {
 protected:
  explicit service_fixture(const char* now = "2025-01-15T00:00:00Z") : time_(parse_rfc3339(now).value()) {
    auto parsed = parse_config(
        default_config_toml, "defaults",
        {"storage.path=\"" + (dir_ / "data") + "\"", "storage.keystore_path=\"" + (dir_ / "keystore.json") + "\"",
         "storage.block_cache_mb=16", "storage.compression=\"none\""});
    config_ = std::get<daemon_config>(std::move(parsed));
    master_ = crypto::random_bytes(32);
    open();
  }
  ~service_fixture() override { close(); }

  // Builds everything on the directory's current contents.
  void open() {
    store_ = std::make_unique<store::store>(config_.storage);
    state_ = std::make_unique<store::saved_state>(*store_);
    state_->check_all();
    keystore_ = std::make_unique<crypto::keystore>(config_.storage.keystore_path, master_, !first_open_done_);
    first_open_done_ = true;
    vault_ = std::make_unique<service::vault>(*keystore_, config_.storage.max_seals_per_key);
    build_retention();
  }
  // The retention units on what is open, naming subjects as ids_ does.
  void build_retention() {
    retention_.reset();
    auto sink = std::make_unique<recording_sink>();
    sink_ = sink.get();
    retention_ = std::make_unique<service::retention>(
        config_, time_, *store_, *state_, probe_, std::string(subject_secret), *vault_,
        service::audit_keying{keystore_->stable_secret("audit chain"), true}, std::move(sink), ids_);
  }
  // Drops everything, as a crash would leave the directory (every change
  // the store applied was synced).
  void close() {
    retention_.reset();
    vault_.reset();
    keystore_.reset();
    state_.reset();
    store_.reset();
  }
  void reopen() {
    close();
    open();
  }

  // Stores `n` CDRs of month m for customer `customer`, each from `phone`
  // (or a phone of its own) and, if given, to `to`, sealed and indexed as
  // ingest does.
  void fill(month m, int first, int n, const std::string& customer = "acme", const std::string& phone = "",
            const std::string& to = "") {
    store::write_batch b(*store_);
    const partition p{record_kind::cdr, m, 0};
    std::string sealed;
    std::vector<std::string> hashes;
    for (int i = first; i < first + n; ++i) {
      const auto id = "id-" + std::to_string(1000000 + i);
      const auto from = phone.empty() ? "+4915112" + std::to_string(100000 + i) : phone;
      const auto lease = vault_->lease();
      std::vector<std::string> normalized{normalize_identifier(from)};
      if (!to.empty()) normalized.push_back(normalize_identifier(to));
      const auto plain = R"({"from":")" + from + (to.empty() ? R"("})" : R"(","to":[")" + to + R"("]})");
      vault_->seal_indexed(key_scope::partition, p, record_key(p, id), plain, normalized, sealed, hashes);
      b.put_cdr(p, id, R"({"customer_id":")" + customer + R"(","type":"cdr"})", sealed, static_cast<std::uint64_t>(i));
      for (const auto& h : hashes) b.put_subject(p, h, id);
    }
    store_->commit(b);
  }

  temp_dir dir_;
  manual_time time_;
  daemon_config config_;
  std::string master_;
  bool first_open_done_ = false;
  prometheus::Registry registry_;
  metrics::retention_probe probe_{registry_};
  std::unique_ptr<store::store> store_;
  std::unique_ptr<store::saved_state> state_;
  std::unique_ptr<crypto::keystore> keystore_;
  std::unique_ptr<service::vault> vault_;
  recording_sink* sink_ = nullptr;
  std::unique_ptr<service::retention> retention_;
  identity ids_;  // the "digits" form unless a test sets another
};

// Puts a raw value under a saved-state key, bypassing every encoder: what a
// damaged disk or a careless hand edit leaves. The store must be closed.
void put_raw_saved_state(const std::string& db_path, const std::string& key, const std::string& value);

// The live SST files of a closed store, read by hand: each one's family, key
// range, entry count and filter size.
struct raw_file {
  std::string family;
  std::string smallest;
  std::string largest;
  std::uint64_t entries = 0;
  std::uint64_t filter_bytes = 0;
  int level = 0;
  std::string compression;  // RocksDB's name, e.g. "LZ4", "ZSTD"
};
std::vector<raw_file> raw_files(const std::string& db_path);

}  // namespace cdr::test
