// What the fleet (fleet/) needs of this member's store and retention state,
// and nothing more: retention implements it, so fleet/ and retention/ do not
// include each other, and the control log can be tested against a fake.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "cdr/core/audit_record.h"
#include "cdr/core/config.h"
#include "cdr/core/saved_state.h"
#include "cdr/core/time.h"

namespace cdr::service {

// This member's name: kafka.group_instance_id, or "<client_id>@<host name>".
std::string member_name(const kafka_config& k);

class fleet_port {
 public:
  virtual ~fleet_port() = default;
  // The next control-topic offset to apply, as saved with the last one.
  virtual std::uint64_t control_position() const = 0;
  // Whether a control request was applied here before (a replay).
  virtual bool control_applied(std::string_view request) const = 0;
  // Applies one control message with `next` saved in the same batch as its
  // effect (`identifier`: a subject_erase's, opened): what the requester
  // is told, or an error message.
  virtual std::variant<nlohmann::json, std::string> apply_control(const control_message& m,
                                                                  const std::optional<std::string>& identifier,
                                                                  std::uint64_t next) = 0;
  // Audits `entry` about messages refused or skipped, with the control
  // position moved past them (`next`; none for replies).
  virtual void refuse_control(std::optional<std::uint64_t> next, const audit::record& entry) = 0;
  // What a heartbeat announces: the records stored, the earliest deadline.
  virtual std::pair<std::int64_t, std::optional<instant>> holdings() const = 0;
  // The members heard of that have not left, kept across restarts.
  virtual std::vector<std::string> known_members() const = 0;
  virtual void set_known_member(std::string_view name, bool known) = 0;
  // A drain: every record kept, as the event that stores it again; then
  // the store emptied, audited with `report`.
  virtual void for_each_handover_event(
      const std::function<void(std::string_view id, const std::string& event)>& fn) const = 0;
  virtual nlohmann::json empty_store(const nlohmann::json& report, std::uint32_t uid) = 0;
};

}  // namespace cdr::service
