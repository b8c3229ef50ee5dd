// Reads back a table cdr-retentionctl printed (cdr/core/render.h) and checks
// it against the JSON rows it came from: the test that text and
// `--format json` carry the same data.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cdr::test {

// The lines of a table: the header's words, then each row's cells (cells
// are two or more spaces apart and never hold two spaces).
std::vector<std::vector<std::string>> read_table(const std::string& text);

// Empty when `table` (a header and one line per row) shows every row of
// `rows` in order, each member under its column as render::cell() shows it
// and "-" under columns the row lacks; otherwise what differs.
std::string table_mismatch(const std::string& table, const nlohmann::json& rows);

}  // namespace cdr::test
