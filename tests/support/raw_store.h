// A closed store read and written by hand, past the store's own code: what
// tests plant (damaged state, an older format) and what they read back
// (files as flushes and compactions left them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cdr::test {

// Puts a raw value under a saved-state key, bypassing every encoder: what a
// damaged disk or a careless hand edit leaves. The store must be closed.
void put_raw_saved_state(const std::string& db_path, const std::string& key, const std::string& value);

// The live SST files of a closed store, read by hand: each one's family, key
// range, entry count and filter size.
struct raw_file {
  std::string family;         // "metadata"
  std::string column_family;  // "metadata/cdr/2024-03"
  std::string smallest;
  std::string largest;
  std::uint64_t entries = 0;
  std::uint64_t filter_bytes = 0;
};
std::vector<raw_file> raw_files(const std::string& db_path);

// Turns a closed store of the current format into format 2's layout: each
// record family's month column families folded into one shared family of
// the family's name, and format version 2. keep_moved: keys before the
// cursor (about the middle of each family) also stay in their month
// families, with the cursor saved, as a migration killed halfway leaves it.
void to_format_2(const std::string& db_path, bool halfway = false);

// The names of the store's column families.
std::vector<std::string> column_families(const std::string& db_path);

}  // namespace cdr::test
