#include "reindex.h"

#include <algorithm>
#include <optional>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "cdr/core/retention.h"
#include "failpoint.h"

namespace cdr::service {
namespace {

// The re-index's position: a stage byte (live identifiers, then held ones)
// and the last key of that stage done.
constexpr char live_stage = 'r';
constexpr char held_stage = 'h';

// True when the store holds nothing a form could have named: no identifiers
// anywhere, no hold, no erasure record.
bool nothing_named(const store::store& s, store::saved_state& state) {
  bool any = false;
  const auto seen = [&](std::string_view, std::string_view) {
    any = true;
    return false;
  };
  s.scan(family::identifiers, {"", ""}, seen);
  s.scan(family::held, held_range(held_tag::identifiers), seen);
  if (any) return false;
  if (!state.holds().items.empty()) return false;
  state.for_each_erasure_request([&](const std::string&, const erasure_request&) { any = true; });
  return !any;
}

class reindexer {
 public:
  reindexer(store::store& s, store::saved_state& state, vault& keys, const identity& forms, identity_state& st,
            const ledger_indexes& ledgered, std::size_t batch, reindex_report& report,
            const std::function<void(std::uint64_t)>& progressed)
      : store_(s),
        state_(state),
        keys_(keys),
        forms_(forms),
        st_(st),
        ledgered_(ledgered),
        batch_(batch),
        progressed_(progressed),
        report_(report) {}

  void run() {
    auto& m = *st_.moving;
    const char stage = m.after.empty() ? live_stage : m.after.front();
    const std::string after = m.after.empty() ? std::string() : m.after.substr(1);
    if (stage == live_stage) {
      pass(live_stage, family::identifiers, key_range{after, ""}, after);
      pass(held_stage, family::held, held_range(held_tag::identifiers), "");
    } else {
      auto r = held_range(held_tag::identifiers);
      r.begin = after;
      pass(held_stage, family::held, r, after);
    }
  }

 private:
  void pass(char stage, family f, key_range r, const std::string& skip) {
    std::optional<store::change> c;
    c.emplace(store_);
    std::size_t in_batch = 0;
    std::string last;
    store_.scan(f, r, [&](std::string_view key, std::string_view sealed) {
      if (key == skip) return true;  // the position is the last key done
      move_one(f, key, sealed, *c);
      last.assign(key);
      if (++in_batch == batch_) {
        commit(c, stage, last);
        in_batch = 0;
      }
      return true;
    });
    if (in_batch > 0) commit(c, stage, last);
  }

  void move_one(family f, std::string_view key, std::string_view sealed, store::change& c) {
    const bool held = f == family::held;
    const std::string_view rk = held ? key.substr(1) : key;
    const auto p = decode_partition(rk);
    ++report_.records;
    if (!p) return;
    const auto scope = held ? key_scope::held : key_scope::partition;
    const auto o = keys_.open(scope, *p, key, sealed);
    if (o.status != vault::open_status::ok) {
      // Destroyed under a sweep or unreadable: nothing of it can be found
      // by subject anyway (verify reports what does not decrypt).
      ++report_.unreadable;
      return;
    }
    std::vector<std::string> before;
    std::vector<std::string> after;
    for (const auto& v : identifier_values(o.plaintext)) {
      before.push_back(forms_.normalize_as(st_.form, v));
      after.push_back(forms_.normalize_as(st_.moving->to, v));
    }
    const auto id = record_id_of(rk);
    const auto name = key_name(scope, *p);
    const auto index_family = held ? family::held : family::subject_index;
    const auto has = [](const std::vector<std::string>& v, const std::string& s) {
      return std::find(v.begin(), v.end(), s) != v.end();
    };
    // The value's index entry under the partition's (or held) key: its key
    // in the index family and its hash; nullopt when the key is gone.
    const auto entry = [&](const std::string& normalized) -> std::optional<std::pair<std::string, std::string>> {
      auto hash = keys_.index_hash(scope, *p, normalized);
      if (!hash) return std::nullopt;
      auto k = subject_key(*p, *hash, id);
      return std::pair{held ? held_key(held_tag::subject, k) : std::move(k), std::move(*hash)};
    };
    for (const auto& b : before) {
      if (has(after, b)) continue;
      if (auto e = entry(b)) {
        if (ledgered_.count({name, e->second}) > 0) {
          ++report_.kept;
        } else {
          c.remove(index_family, e->first);
        }
      }
    }
    for (const auto& a : after) {
      if (has(before, a)) continue;
      if (auto e = entry(a)) {
        c.put(index_family, e->first, "");
        ++report_.moved;
      }
    }
  }

  void commit(std::optional<store::change>& c, char stage, const std::string& last) {
    st_.moving->after = std::string(1, stage) + last;
    st_.moving->records = report_.records;
    state_.put_identity(*c, st_);
    store_.apply(*c);
    c.emplace(store_);
    if (report_.records % 100000 < batch_) {
      spdlog::info("re-indexing identifiers ({} to {}): {} records read, {} index entries moved", st_.form,
                   st_.moving->to, report_.records, report_.moved);
    }
    if (progressed_) progressed_(report_.records);
    failpoint("after_reindex_batch");
  }

  store::store& store_;
  store::saved_state& state_;
  vault& keys_;
  const identity& forms_;
  identity_state& st_;
  const ledger_indexes& ledgered_;
  std::size_t batch_;
  const std::function<void(std::uint64_t)>& progressed_;
  reindex_report& report_;
};

void save(store::store& s, store::saved_state& state, const identity_state& st) {
  store::change c(s);
  state.put_identity(c, st);
  s.apply(c);
}

}  // namespace

std::pair<identity, reindex_report> bring_to_form(store::store& s, store::saved_state& state, vault& keys,
                                                  const phone_parser& parser, const std::string& form,
                                                  const std::function<ledger_indexes()>& ledgered, std::size_t batch,
                                                  const std::function<void(std::uint64_t)>& progressed) {
  reindex_report report;
  report.to = form;
  identity_state st;
  if (auto recorded = state.identity()) {
    if (!*recorded) {
      throw std::runtime_error("the store's identifier form (saved state \"identity\") does not decode: " +
                               recorded->error() + "; holds and erasures could stop matching");
    }
    st = std::move(recorded->value());
    report.from = st.form;
  } else if (nothing_named(s, state)) {
    save(s, state, identity_state{form, {}, std::nullopt});
    return {identity(parser, form), report};
  } else {
    st.form = "digits";  // a store of a build before forms
    report.from = st.form;
  }
  const identity forms(parser, form);
  for (;;) {
    if (!st.moving) {
      if (st.form == form) break;
      st.moving = identity_state::migration{form, "", 0};
      save(s, state, st);
      spdlog::warn("re-indexing identifiers: the store is written in form \"{}\", the configuration asks for \"{}\"",
                   st.form, form);
    } else {
      report.resumed = true;
      report.records = st.moving->records;
      spdlog::warn("re-indexing identifiers ({} to {}): taken up again after {} records", st.form, st.moving->to,
                   st.moving->records);
    }
    const auto kept = ledgered ? ledgered() : ledger_indexes{};
    reindexer(s, state, keys, forms, st, kept, std::max<std::size_t>(batch, 1), report, progressed).run();
    const auto to = st.moving->to;
    std::erase(st.earlier, to);
    if (std::find(st.earlier.begin(), st.earlier.end(), st.form) == st.earlier.end()) st.earlier.push_back(st.form);
    st.form = to;
    st.moving.reset();
    save(s, state, st);
    spdlog::warn(
        "re-indexing identifiers: done, {} records read, {} index entries moved ({} old ones kept for the erasure "
        "ledger), {} not readable",
        report.records, report.moved, report.kept, report.unreadable);
  }
  return {identity(parser, st.form, st.earlier), report};
}

}  // namespace cdr::service
