#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "cdr/core/key_layout.h"

namespace cdr {
namespace {

TEST(key_layout, byte_order_is_kind_month_class_order) {
  std::mt19937 rng(7);
  std::vector<partition> parts;
  for (int i = 0; i < 2000; ++i) {
    parts.push_back({rng() % 2 ? record_kind::cdr : record_kind::usage,
                     month::of(1990 + static_cast<int>(rng() % 80), 1 + static_cast<int>(rng() % 12)),
                     static_cast<retention_class>(rng() % 3 == 0 ? 0xffff : rng() % 300)});
  }
  auto by_bytes = parts;
  std::sort(parts.begin(), parts.end());
  std::sort(by_bytes.begin(), by_bytes.end(),
            [](const partition& a, const partition& b) { return partition_prefix(a) < partition_prefix(b); });
  EXPECT_EQ(parts, by_bytes);
}

TEST(key_layout, a_partition_range_holds_exactly_its_records) {
  const partition p{record_kind::cdr, month::of(2025, 3), 0xffff};  // the end key must carry
  const auto range = partition_range(p);
  const auto inside = record_key(p, "zzzz\xff\xff");
  EXPECT_LE(range.begin, record_key(p, ""));
  EXPECT_LT(inside, range.end);
  EXPECT_GE(record_key({record_kind::cdr, month::of(2025, 4), 0}, "a"), range.end);
  EXPECT_LT(record_key({record_kind::cdr, month::of(2025, 3), 0xfffe}, "\xff"), range.begin);
  EXPECT_GE(subject_key(p, std::string(32, '\xff'), "id"), range.begin);
  EXPECT_LT(subject_key(p, std::string(32, '\xff'), "id"), range.end);
}

TEST(key_layout, decodes_what_it_encodes) {
  const partition p{record_kind::usage, month::of(2031, 12), 513};
  const auto key = record_key(p, "u-7f3a9c");
  EXPECT_EQ(key.size(), partition_prefix_size + 8);
  EXPECT_EQ(decode_partition(key), p);
  EXPECT_EQ(record_id_of(key), "u-7f3a9c");
  EXPECT_EQ(p.to_string(), "usage/2031-12/513");
  EXPECT_FALSE(decode_partition("short"));
  EXPECT_FALSE(decode_partition(std::string("\x07\0\0\0\0\0\0", 7)));
}

TEST(key_layout, key_names_round_trip_and_reject_anything_else) {
  const partition p{record_kind::cdr, month::of(2025, 3), 513};
  EXPECT_EQ(key_name(key_scope::partition, p), "p/cdr/2025-03/513");
  EXPECT_EQ(key_name(key_scope::held, p), "h/cdr/2025-03/513");
  EXPECT_EQ(key_name(key_scope::partition, p, 0), "p/cdr/2025-03/513");
  EXPECT_EQ(key_name(key_scope::partition, p, 7), "p/cdr/2025-03/513#7");
  for (auto scope : {key_scope::partition, key_scope::held}) {
    for (std::uint32_t generation : {0u, 1u, 4294967295u}) {
      const auto parsed = parse_key_name(key_name(scope, p, generation));
      ASSERT_TRUE(parsed);
      EXPECT_EQ(parsed->scope, scope);
      EXPECT_EQ(parsed->p, p);
      EXPECT_EQ(parsed->generation, generation);
    }
  }
  for (std::string_view bad :
       {"", "p", "p/", "x/cdr/2025-03/0", "p/cdr/2025-13/0", "p/sms/2025-03/0", "p/cdr/2025-03/", "p/cdr/2025-03/65536",
        "p/cdr/2025-03/01", "p/cdr/2025-03/-1", "p/cdr/2025-03/0/x", "p/cdr/2025-03/0#", "p/cdr/2025-03/0#0",
        "p/cdr/2025-03/0#01", "p/cdr/2025-03/0#4294967296", "p/cdr/2025-03/0#1#2", "p/cdr/2025-03/0#x"}) {
    EXPECT_FALSE(parse_key_name(bad)) << bad;
  }
}

}  // namespace
}  // namespace cdr
