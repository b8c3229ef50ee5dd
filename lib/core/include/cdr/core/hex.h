// Lower-case hexadecimal, for hashes shown to people and kept in JSON.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cdr {

std::string to_hex(std::string_view bytes);
// nullopt unless `text` is an even number of hex digits.
std::optional<std::string> from_hex(std::string_view text);

}  // namespace cdr
