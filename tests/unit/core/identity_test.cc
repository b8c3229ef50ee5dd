#include "cdr/core/identity.h"

#include <gtest/gtest.h>

#include "cdr/phone/phone.h"

namespace cdr {
namespace {

TEST(identity, the_digits_form_is_the_first_builds_normalisation) {
  EXPECT_EQ(normalize_identifier("+385 91 123-4567"), "385911234567");
  EXPECT_EQ(normalize_identifier("00385911234567"), "385911234567");
  EXPECT_EQ(normalize_identifier("(385) 91.123.4567"), "385911234567");
  EXPECT_EQ(normalize_identifier("091 123 4567"), "0911234567") << "a national number keeps its trunk prefix";
  EXPECT_EQ(normalize_identifier(" Jane.Doe@ACME.example "), "jane.doe@acme.example");
  EXPECT_EQ(normalize_identifier("Acme"), "Acme") << "other identifiers are kept as sent";
  EXPECT_EQ(normalize_identifier("203.0.113.7"), "203.0.113.7") << "an IPv4 address is not a phone number";
  EXPECT_EQ(identity::digits().normalize("00385 91 123 4567"), "385911234567");
}

TEST(identity, forms_and_regions) {
  EXPECT_EQ(identity_form(""), "e164");
  EXPECT_EQ(identity_form("HR"), "e164:HR");
  EXPECT_EQ(form_region("e164:HR"), "HR");
  EXPECT_EQ(form_region("e164"), "");
  EXPECT_EQ(form_region("digits"), "");
  EXPECT_FALSE(form_region("e164:hr"));
  EXPECT_FALSE(form_region("e164:HRV"));
  EXPECT_FALSE(form_region("phone"));
}

// With libphonenumber (the adapter), every spelling of one number is one
// subject: international, 00-prefixed, national with the default region.
TEST(identity, every_spelling_of_a_number_is_one_subject) {
  const identity ids(phone::parser(), "e164:HR");
  for (const char* spelling : {"+385 91 123 4567", "00385911234567", "091 123 4567", "091-123-4567",
                               "+385 (0)91 123 4567", "+385911234567", "(091) 123 4567", "385 91 123 4567"}) {
    EXPECT_EQ(ids.normalize(spelling), "385911234567") << spelling;
  }
  EXPECT_EQ(ids.normalize("+1 (650) 253-0000"), "16502530000");
  EXPECT_EQ(ids.normalize("0044 20 7946 0958"), "442079460958");
  // Without a region a national number cannot be placed: it keeps its digits.
  const identity no_region(phone::parser(), "e164");
  EXPECT_EQ(no_region.normalize("091 123 4567"), "0911234567");
  EXPECT_EQ(no_region.normalize("+385 91 123 4567"), "385911234567");
  // What libphonenumber does not take as a possible number keeps its digits;
  // e-mail addresses and anything else are as the digits form writes them.
  EXPECT_EQ(ids.normalize("123"), "123");
  EXPECT_EQ(ids.normalize(" Jane.Doe@ACME.example"), "jane.doe@acme.example");
  EXPECT_EQ(ids.normalize("203.0.113.7"), "203.0.113.7");
  EXPECT_EQ(ids.normalize("Acme"), "Acme");
  // A national number of another region is read with the default one.
  EXPECT_EQ(identity(phone::parser(), "e164:DE").normalize("0151 12100001"), "4915112100001");
}

TEST(identity, a_number_in_e164_is_taken_as_is) {
  int calls = 0;
  const identity ids(
      [&](std::string_view, std::string_view) -> std::optional<std::string> {
        ++calls;
        return "1";
      },
      "e164:HR");
  EXPECT_EQ(ids.normalize("+385911234567"), "385911234567");
  EXPECT_EQ(calls, 0) << "no parse for a number already in E.164";
  EXPECT_EQ(ids.normalize("+385 91 123 4567"), "1");
  EXPECT_EQ(calls, 1);
}

TEST(identity, earlier_forms_name_a_value_where_they_differ) {
  const identity ids(phone::parser(), "e164:HR", {"digits"});
  EXPECT_EQ(ids.forms_of("091 123 4567"), (std::vector<std::string>{"385911234567", "0911234567"}));
  EXPECT_EQ(ids.forms_of("+385 91 123 4567"), (std::vector<std::string>{"385911234567"}));
  EXPECT_EQ(ids.normalize_as("digits", "091 123 4567"), "0911234567");
  EXPECT_EQ(identity(phone::parser(), "e164:HR").forms_of("091 123 4567"), (std::vector<std::string>{"385911234567"}));
}

TEST(identity, the_region_must_be_known) {
  EXPECT_TRUE(phone::known_region("HR"));
  EXPECT_TRUE(phone::known_region("US"));
  EXPECT_FALSE(phone::known_region("XX"));
  EXPECT_FALSE(phone::known_region(""));
}

}  // namespace
}  // namespace cdr
