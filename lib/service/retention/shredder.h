// Crypto-shredding (docs/architecture.md, "Keys"): destroys the data keys
// that protect nothing any more, so every copy of what they sealed forgets.
#pragma once

#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "context.h"

namespace cdr::service {

class key_shredder {
 public:
  explicit key_shredder(retention_context& ctx) : ctx_(ctx) {}

  // Destroys partition keys of stripped (or dropped) partitions and held
  // keys without held copies. Journalled before, audited after (with the
  // next purge); returns the names.
  nlohmann::json destroy_unused(std::string_view trigger, std::uint32_t uid);

 private:
  std::vector<std::pair<key_scope, partition>> unused() const;

  retention_context& ctx_;
};

}  // namespace cdr::service
