// Legal holds: the active set, shared with ingest and every sweep; adding
// and releasing them, each audited.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "context.h"

namespace cdr::service {

class hold_registry {
 public:
  explicit hold_registry(retention_context& ctx);

  // Reads the holds from the store. A hold that does not decode is never
  // dropped: while one exists, snapshot() also holds a hold over everything
  // (so ingest keeps every late event whole) and the saved state is not
  // readable (so sweeps and erasures are refused).
  void load();
  // What records are matched against: the active holds, plus the hold over
  // everything while a saved hold is unreadable.
  std::shared_ptr<const std::vector<hold>> snapshot() const;
  // The readable active holds and how many do not decode.
  std::vector<hold> active() const;
  std::size_t unreadable() const;

  // A hold from an admin request's arguments (the subject as its keyed
  // hash); an error message for the requester otherwise.
  std::variant<hold, std::string> validate(const nlohmann::json& args) const;
  // Validates, numbers, stores and audits a hold (caller holds the
  // retention lock); an error message for the requester otherwise.
  std::variant<hold, std::string> add(const nlohmann::json& args, std::uint32_t uid);
  // Numbers, stores and audits a validated hold. control_next: the control
  // topic position saved in the same batch (a fleet hold; one whose origin
  // request is already here is not added twice).
  hold add(hold h, std::uint32_t uid, std::optional<control_step> control_next);
  // The id of the active hold a fleet request added.
  std::optional<std::uint64_t> by_request(std::string_view request) const;
  // Removes and audits the hold (`origin`: the fleet request, if any);
  // nullopt when no hold has that id. Throws state_unreadable when that
  // hold does not decode. control_next as for add.
  std::optional<hold> release(std::uint64_t id, std::uint32_t uid, const audit::request_note& note,
                              std::optional<control_step> control_next = std::nullopt);

 private:
  retention_context& ctx_;
  std::uint64_t counter_ = 0;
  bool counter_readable_ = true;
  mutable std::mutex mutex_;
  std::shared_ptr<const std::vector<hold>> matched_;  // guarded by mutex_
  std::vector<hold> active_;                          // guarded by mutex_
  std::size_t unreadable_ = 0;                        // guarded by mutex_
};

}  // namespace cdr::service
