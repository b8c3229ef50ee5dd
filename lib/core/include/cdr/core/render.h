// How cdr-retentionctl shows a reply: `--format text` (people: "key: value"
// lines, and list-shaped results as aligned tables, like kubectl or rpk),
// `json` (the daemon's reply as sent) or `yaml`. Pure functions of the reply.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace cdr::render {

enum class format { text, json, yaml };

std::optional<format> format_from_name(std::string_view name);

// A result for people. Scalars and nested objects as "a.b: value" lines;
// every array of objects as a table under a "key:" heading, one row per
// element and one column per (flattened) member, upper-case, two spaces
// apart; an array of scalars as "a,b,c"; an empty one as "(none)".
std::string text(const nlohmann::json& result);

// One long operation of `status` "operations" in words, as the CLI's
// progress line and systemd's STATUS= show it: "verify: 12/40 files,
// 3.2 MiB, 4 s" (no total when unknown, no bytes when none).
std::string operation_line(const nlohmann::json& op);

// Text for a man page (roff): backslashes and dashes escaped, no line
// starting with a control character.
std::string roff(std::string_view text);

// The health summary `status` opens with, from its full result: "health"
// ("ok", or "attention" with "problems", one line each), ingest state and
// total lag, the last sweep, overdue partitions, active holds, pending
// purges, fleet members live of known, records.
nlohmann::json status_summary(const nlohmann::json& status);

// The same value as a YAML document (block style; strings quoted unless
// they are plain words YAML reads back as the same string).
std::string yaml(const nlohmann::json& value);

// A table's row: each member of an object, nested objects flattened to
// "a.b" names, in the order the table shows them.
std::vector<std::pair<std::string, nlohmann::json>> flatten(const nlohmann::json& object);

// What a table cell shows for a value: strings as they are (blanks collapsed
// to one space, "" for the empty string), null as "-", arrays of scalars
// joined with ",", anything else as compact JSON. Never contains two spaces
// in a row, so a table splits back into its cells.
std::string cell(const nlohmann::json& value);

}  // namespace cdr::render
