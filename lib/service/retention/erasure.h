// Subject erasure (notice: data subjects can have their identifiers
// erased): finds the subject's records through the subject index of every
// live key, removes their identifiers and every index entry of those
// records in one commit, and defers the records a legal hold covers until
// its release.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "context.h"
#include "holds.h"

namespace cdr::service {

class subject_erasure {
 public:
  subject_erasure(retention_context& ctx, const hold_registry& holds) : ctx_(ctx), holds_(holds) {}

  // The record keys (partition prefix + id) whose identifiers include this
  // normalised identifier, in live partitions and held copies.
  std::vector<std::string> records_of(std::string_view normalized) const;
  // Erases the identifiers of these records for the subject with this keyed
  // hash, except those a hold covers: those are deferred. trigger: "admin",
  // "deferred" (a sweep retries) or "hold_release".
  nlohmann::json erase(const std::string& subject, const std::vector<std::string>& record_keys, std::uint32_t uid,
                       std::string_view trigger);
  // Runs every erasure a hold deferred again (those no hold covers now go).
  nlohmann::json run_deferred(std::uint32_t uid, std::string_view trigger);

 private:
  // A stored copy of a record's identifiers: in its partition (sealed under
  // the partition key) or in the held family (under the held key).
  struct source {
    family where;
    key_scope scope;
    std::string key;
    std::vector<std::string> normalized;  // its identifiers; none if it does not open
  };
  std::vector<source> sources_of(const partition& p, const std::string& record_key) const;
  bool held_back(const partition& p, const std::string& record_key, const std::string& subject,
                 const std::vector<source>& sources) const;
  // Removes a record's identifier copies and every index entry of them.
  void remove(const partition& p, std::string_view id, const std::vector<source>& sources, store::change& c,
              std::vector<std::pair<family, std::string>>& removed) const;

  retention_context& ctx_;
  const hold_registry& holds_;
};

}  // namespace cdr::service
