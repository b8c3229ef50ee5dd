#include "cdr/core/render.h"

#include <algorithm>
#include <array>
#include <cctype>

#include <fmt/format.h>

namespace cdr::render {
namespace {

using json = nlohmann::json;

// Columns people look for first, in this order; the rest follow as the
// reply names them.
constexpr std::array<std::string_view, 8> leading_columns{"member", "id",     "kind",  "month",
                                                          "class",  "action", "state", "deadline"};

bool is_table(const json& v) {
  return v.is_array() && !v.empty() && std::any_of(v.begin(), v.end(), [](const json& e) { return e.is_object(); });
}

void flatten_into(const json& v, const std::string& prefix, std::vector<std::pair<std::string, json>>* out) {
  for (const auto& [k, child] : v.items()) {
    const auto name = prefix.empty() ? k : prefix + "." + k;
    if (child.is_object() && !child.empty()) {
      flatten_into(child, name, out);
    } else {
      out->emplace_back(name, child);
    }
  }
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string table(const json& rows) {
  std::vector<std::string> columns;
  std::vector<std::vector<std::pair<std::string, json>>> flat;
  for (const auto& row : rows) {
    flat.push_back(row.is_object() ? flatten(row) : std::vector<std::pair<std::string, json>>{{"value", row}});
    for (const auto& [name, value] : flat.back()) {
      if (std::find(columns.begin(), columns.end(), name) == columns.end()) columns.push_back(name);
    }
  }
  const auto rank = [](const std::string& c) {
    const auto at = std::find(leading_columns.begin(), leading_columns.end(), c);
    return static_cast<std::size_t>(at - leading_columns.begin());
  };
  std::stable_sort(columns.begin(), columns.end(),
                   [&](const std::string& a, const std::string& b) { return rank(a) < rank(b); });

  std::vector<std::vector<std::string>> cells(1 + flat.size());
  for (const auto& c : columns) cells[0].push_back(upper(c));
  for (std::size_t r = 0; r < flat.size(); ++r) {
    for (const auto& c : columns) {
      const auto at = std::find_if(flat[r].begin(), flat[r].end(), [&](const auto& kv) { return kv.first == c; });
      cells[r + 1].push_back(at == flat[r].end() ? "-" : cell(at->second));
    }
  }
  std::vector<std::size_t> width(columns.size());
  for (const auto& line : cells) {
    for (std::size_t c = 0; c < line.size(); ++c) width[c] = std::max(width[c], line[c].size());
  }
  std::string out;
  for (const auto& line : cells) {
    std::string text;
    for (std::size_t c = 0; c < line.size(); ++c) {
      text += line[c];
      if (c + 1 < line.size()) text.append(width[c] - line[c].size() + 2, ' ');
    }
    out += text + "\n";
  }
  return out;
}

bool plain_yaml(std::string_view s) {
  if (s.empty()) return false;
  // Words YAML 1.1 readers take for booleans or null.
  static constexpr std::array<std::string_view, 9> words{"true", "false", "null", "yes", "no", "on", "off", "y", "n"};
  std::string lower(s);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (std::find(words.begin(), words.end(), lower) != words.end()) return false;
  // Starting with a letter and made of word characters: never a number, a
  // date, an indicator or a comment.
  if (!std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '/' || c == '@';
  });
}

std::string yaml_scalar(const json& v) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    return plain_yaml(s) ? s : v.dump();  // a JSON string is a YAML double-quoted scalar
  }
  return v.dump();  // numbers, true/false, null: the same in YAML
}

bool yaml_inline(const json& v) { return !v.is_structured() || v.empty(); }

void yaml_into(const json& v, std::size_t indent, std::string* out);

// A member or an item's value after "key:" or "-".
void yaml_value(const json& v, std::size_t indent, std::string* out) {
  if (yaml_inline(v)) {
    *out += " " + yaml_scalar(v) + "\n";  // [] and {} included
    return;
  }
  *out += "\n";
  yaml_into(v, indent, out);
}

void yaml_into(const json& v, std::size_t indent, std::string* out) {
  const std::string pad(indent, ' ');
  if (v.is_object()) {
    for (const auto& [k, child] : v.items()) {
      *out += pad + yaml_scalar(json(k)) + ":";
      yaml_value(child, indent + 2, out);
    }
    return;
  }
  for (const auto& item : v) {
    if (item.is_object() && !item.empty()) {
      // "- " then the object's members, aligned under the first.
      std::string nested;
      yaml_into(item, indent + 2, &nested);
      *out += pad + "- " + nested.substr(indent + 2);
      continue;
    }
    *out += pad + "-";
    yaml_value(item, indent + 2, out);
  }
}

}  // namespace

std::optional<format> format_from_name(std::string_view name) {
  if (name == "text") return format::text;
  if (name == "json") return format::json;
  if (name == "yaml") return format::yaml;
  return std::nullopt;
}

std::vector<std::pair<std::string, json>> flatten(const json& object) {
  std::vector<std::pair<std::string, json>> out;
  flatten_into(object, "", &out);
  return out;
}

std::string cell(const json& value) {
  std::string raw;
  if (value.is_null()) return "-";
  if (value.is_string()) {
    raw = value.get<std::string>();
    if (raw.empty()) return "\"\"";
  } else if (value.is_array() &&
             std::none_of(value.begin(), value.end(), [](const json& e) { return e.is_structured(); })) {
    for (const auto& e : value) raw += (raw.empty() ? "" : ",") + (e.is_string() ? e.get<std::string>() : e.dump());
    if (value.empty()) return "-";
  } else {
    raw = value.dump();
  }
  std::string out;
  for (char c : raw) {
    const bool blank = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (blank && (out.empty() || out.back() == ' ')) continue;
    out += blank ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out.empty() ? "\"\"" : out;
}

std::string text(const json& result) {
  if (is_table(result)) return table(result);
  if (!result.is_object()) return (result.is_string() ? result.get<std::string>() : result.dump()) + "\n";
  // The scalars as "a.b: value" lines, each array of objects as a table
  // after them.
  std::string lines;
  std::string tables;
  for (const auto& [name, value] : flatten(result)) {
    if (is_table(value)) {
      tables += "\n" + name + ":\n" + table(value);
    } else if (value.is_array()) {
      lines += name + ": " + (value.empty() ? "(none)" : cell(value)) + "\n";
    } else {
      lines += name + ": " + (value.is_string() ? value.get<std::string>() : value.dump()) + "\n";
    }
  }
  return lines.empty() && !tables.empty() ? tables.substr(1) : lines + tables;
}

std::string operation_line(const json& op) {
  std::string out = op.value("kind", "") + ": " + std::to_string(op.value("done", 0));
  if (op.contains("total") && op["total"].is_number()) out += "/" + op["total"].dump();
  out += " " + op.value("unit", "");
  if (const auto bytes = op.value("bytes", 0.0); bytes > 0) {
    out += fmt::format(", {:.1f} MiB", bytes / (1024.0 * 1024.0));
  }
  return out + fmt::format(", {:.0f} s", op.value("seconds", 0.0));
}

std::string roff(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
      if (c == '\n') out += "\\&";
    }
  }
  return (out.empty() || (out[0] != '.' && out[0] != '\'') ? "" : "\\&") + out;
}

json status_summary(const json& s) {
  const auto at = [&](const char* pointer, json fallback = nullptr) {
    return s.value(json::json_pointer(pointer), std::move(fallback));
  };
  json problems = json::array();
  const auto consumer = at("/kafka/consumer", json::object());
  const std::string state = consumer.value("state", "none");
  if (state == "paused") problems.push_back("ingest paused: " + consumer.value("pause_reason", std::string("?")));
  std::int64_t lag = 0;
  bool lag_known = false;
  const auto lags = consumer.value("lag", json::object());  // items() of a temporary would dangle
  for (const auto& [topic, parts] : lags.items()) {
    for (const auto& [p, n] : parts.items()) {
      if (n.is_number()) lag += n.get<std::int64_t>(), lag_known = true;
    }
  }
  const auto overdue = at("/retention/overdue_partitions", 0).get<std::int64_t>();
  if (overdue > 0) problems.push_back(std::to_string(overdue) + " partition(s) overdue");
  if (!at("/retention/saved_state/ok", true).get<bool>()) problems.push_back("saved state does not decode");
  if (at("/retention/clock_guard/sweeps_paused", false).get<bool>()) problems.push_back("sweeps paused: clock jump");
  if (at("/storage/write_stopped", false).get<bool>()) problems.push_back("store writes stopped");
  if (at("/storage/corrupt_entries", 0).get<std::int64_t>() > 0) problems.push_back("corrupt store entries");
  if (at("/keystore/decrypt_failures", 0).get<std::int64_t>() > 0) problems.push_back("decrypt failures");
  const auto purge = at("/retention/erasure_purge");
  if (purge.is_object() && !purge.value("on_time", true)) problems.push_back("erasure purge forecast late");
  const auto fleet = at("/kafka/fleet");
  if (fleet.is_object() && fleet.contains("blocked")) problems.push_back("control topic blocked");
  json out{{"health", problems.empty() ? "ok" : "attention"},
           {"ingest", state},
           {"lag", lag_known ? json(lag) : json(nullptr)},
           {"last_sweep", at("/retention/clock_guard/last_sweep_at")},
           {"overdue_partitions", overdue},
           {"holds_active", at("/retention/holds_active", 0)},
           {"pending_purges", purge.is_object() ? purge.value("subjects", json(0)) : json(0)},
           {"records", at("/storage/records", json::object())}};
  if (!problems.empty()) out["problems"] = problems;
  if (fleet.is_object()) {
    std::int64_t live = 0;
    const auto members = fleet.value("members", json::array());
    for (const auto& m : members) live += m.value("live", false) ? 1 : 0;
    out["fleet"] = std::to_string(live) + " of " + std::to_string(members.size()) + " members live";
  }
  return out;
}

std::string yaml(const json& value) {
  if (yaml_inline(value)) return yaml_scalar(value) + "\n";
  std::string out;
  yaml_into(value, 0, &out);
  return out;
}

}  // namespace cdr::render
