// The libphonenumber adapter: phone numbers to E.164 (cdr/core/identity.h).
#pragma once

#include <string_view>

#include "cdr/core/identity.h"

namespace cdr::phone {

// Parses with libphonenumber; a number that is not possible for its country
// (too short, too long) is nullopt, so the core keeps its digits.
phone_parser parser();

// Whether libphonenumber knows this region code (e.g. "HR").
bool known_region(std::string_view region);

}  // namespace cdr::phone
