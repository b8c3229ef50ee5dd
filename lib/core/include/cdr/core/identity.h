// One subject, one identity (docs/events.md, "Identifier rules"): how an
// end-user identifier is written before it is hashed for the subject index,
// the holds and the erasure records.
//
// A *form* names a normalisation, and is recorded in the store (the saved
// state's "identity" entry) so that a store written under one form is
// re-indexed when the configuration asks for another (service/reindex.h):
//   "digits"      the first builds': a phone number's digits with a leading
//                 + or 00 removed, e-mail addresses lower-cased;
//   "e164"        phone numbers parsed as international numbers (libphonenumber)
//                 and written as their E.164 digits (without the +);
//   "e164:HR"     the same, numbers without a country code read as Croatian
//                 (events.default_region).
// Every form writes an international number (+385 91 123 4567,
// 00385911234567) the same way, so only national numbers and odd spellings
// move when the form changes.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cdr {

// Parses a phone number as written (with the default region for national
// numbers, none when empty) and returns its E.164 digits without the +;
// nullopt when it is not a possible number. The libphonenumber adapter
// (cdr/phone/phone.h) is the production one.
using phone_parser = std::function<std::optional<std::string>(std::string_view number, std::string_view region)>;

// Whether `text` is written as an identifier the daemon knows (a phone
// number: digits with + ( ) - . / and spaces, at least three digits; an
// e-mail address: local@domain; an IPv4 or IPv6 address). A request about
// anything else is refused unless it says "raw": a typo must not export,
// erase or hold nothing and succeed.
bool identifier_shape(std::string_view text);

// The first builds' normalisation (form "digits").
std::string normalize_identifier(std::string_view value);

// The form a configuration asks for: "e164" or "e164:<REGION>".
std::string identity_form(std::string_view default_region);
// A form's region ("" for none); nullopt when the text is no known form.
std::optional<std::string> form_region(std::string_view form);

class identity {
 public:
  // The "digits" form alone (no parser): what a store written before forms
  // existed used, and what tests that do not care take.
  identity();
  // `form` for what is written now; `earlier`: forms the store was written
  // under before (holds and erasure records made then name subjects by them).
  identity(phone_parser parser, std::string form, std::vector<std::string> earlier = {});
  // A shared "digits" identity.
  static const identity& digits();

  const std::string& form() const { return form_; }
  const std::vector<std::string>& earlier() const { return earlier_; }

  // The identifier in the current form.
  std::string normalize(std::string_view value) const { return normalize_as(form_, value); }
  // In a given form (an unknown form is treated as "digits").
  std::string normalize_as(std::string_view form, std::string_view value) const;
  // The current form first, then each earlier form that writes it
  // differently: what a hold or an erasure of any time may name it by.
  std::vector<std::string> forms_of(std::string_view value) const;

 private:
  phone_parser parser_;
  std::string form_;
  std::vector<std::string> earlier_;
};

}  // namespace cdr
