#include "table_text.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "cdr/core/render.h"

namespace cdr::test {

std::vector<std::vector<std::string>> read_table(const std::string& text) {
  std::vector<std::vector<std::string>> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::size_t at = 0;
    while (at < line.size()) {
      auto end = line.find("  ", at);
      if (end == std::string::npos) end = line.size();
      cells.push_back(line.substr(at, end - at));
      at = line.find_first_not_of(' ', end);
      if (at == std::string::npos) break;
    }
    lines.push_back(cells);
  }
  return lines;
}

std::string table_mismatch(const std::string& table, const nlohmann::json& rows) {
  const auto lines = read_table(table);
  if (lines.size() != 1 + rows.size()) {
    return "the table has " + std::to_string(lines.size()) + " lines for " + std::to_string(rows.size()) + " rows";
  }
  const auto& header = lines[0];
  std::ostringstream diff;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto& cells = lines[r + 1];
    if (cells.size() != header.size()) {
      diff << "row " << r << " has " << cells.size() << " cells for " << header.size() << " columns\n";
      continue;
    }
    std::vector<bool> seen(header.size());
    for (const auto& [name, value] : render::flatten(rows[r])) {
      std::string column;
      for (char c : name) column += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      const auto at = std::find(header.begin(), header.end(), column);
      if (at == header.end()) {
        diff << "no column " << column << "\n";
        continue;
      }
      const auto c = static_cast<std::size_t>(at - header.begin());
      seen[c] = true;
      if (cells[c] != render::cell(value))
        diff << "row " << r << " " << column << ": " << cells[c] << " vs " << value << "\n";
    }
    for (std::size_t c = 0; c < header.size(); ++c) {
      if (!seen[c] && cells[c] != "-")
        diff << "row " << r << " " << header[c] << " has " << cells[c] << " for no member\n";
    }
  }
  return diff.str();
}

}  // namespace cdr::test
