// Side topics without personal data in clear. Dead letters (docs/data-protection.md,
// "Topics that hold personal data"): a rejected message may carry phone
// numbers and e-mail addresses the daemon could not find (it did not
// parse), so its key and value go to the dead-letter topic sealed
// (AES-256-GCM) under a key derived from the subject key, which every
// member of a fleet holds. The message's value is a JSON envelope:
//   {"format": "cdr-retention dead letter v1",
//    "source": {"topic": T, "partition": P, "offset": O},
//    "reason": R, "bytes": N, "sealed": "<hex>"}
// The source is the sealed bytes' associated data: an envelope moved to
// another source does not open. `cdr-retentionctl dead-letter open` opens
// one (operator, audited).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "cdr/crypto/aead.h"

namespace cdr::service {

class dead_letter_seal {
 public:
  explicit dead_letter_seal(std::string_view subject_key);

  struct source {
    std::string topic;
    std::int32_t partition = 0;
    std::int64_t offset = 0;
  };
  // The dead letter's value.
  std::string seal(const source& from, std::string_view reason, std::string_view key, std::string_view value);

  struct opened {
    source from;
    std::string reason;
    std::string key;
    std::string value;
  };
  // nullopt with `why` set when the text is no envelope, or it does not open
  // under this key (another subject key, altered bytes or source).
  std::optional<opened> open(std::string_view envelope, std::string* why);

 private:
  std::mutex mutex_;
  crypto::aead aead_;  // guarded by mutex_
};

// A drained member's records on the handover topic travel sealed the same
// way (docs/data-protection.md, "Topics that hold personal data"): the value
// is the sealed event, its record id (the message key) the associated data.
// Every member opens them with the fleet's shared subject key.
class handover_seal {
 public:
  explicit handover_seal(std::string_view subject_key);
  std::string seal(std::string_view id, std::string_view event);
  // nullopt when the value is not a sealed handover of this fleet for `id`.
  std::optional<std::string> open(std::string_view id, std::string_view value);

 private:
  std::mutex mutex_;
  crypto::aead aead_;  // guarded by mutex_
};

}  // namespace cdr::service
