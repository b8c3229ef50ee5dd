#include "cdr/phone/phone.h"

#include <phonenumbers/phonenumberutil.h>

#include <set>
#include <string>

namespace cdr::phone {
namespace {
namespace pn = i18n::phonenumbers;
}  // namespace

phone_parser parser() {
  // The instance is a process-wide singleton; its methods are const and
  // thread-safe (libphonenumber's documentation).
  const auto* util = pn::PhoneNumberUtil::GetInstance();
  return [util](std::string_view number, std::string_view region) -> std::optional<std::string> {
    pn::PhoneNumber parsed;
    const std::string text(number);
    const std::string code = region.empty() ? std::string("ZZ") : std::string(region);
    if (util->Parse(text, code, &parsed) != pn::PhoneNumberUtil::NO_PARSING_ERROR) return std::nullopt;
    if (!util->IsPossibleNumber(parsed)) return std::nullopt;
    std::string e164;
    util->Format(parsed, pn::PhoneNumberUtil::E164, &e164);
    if (e164.empty() || e164.front() != '+') return std::nullopt;
    return e164.substr(1);
  };
}

bool known_region(std::string_view region) {
  std::set<std::string> regions;
  pn::PhoneNumberUtil::GetInstance()->GetSupportedRegions(&regions);
  return regions.count(std::string(region)) > 0;
}

}  // namespace cdr::phone
