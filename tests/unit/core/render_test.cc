#include "cdr/core/render.h"

#include <gtest/gtest.h>

#include <string>

#include "table_text.h"

namespace cdr::render {
namespace {

using json = nlohmann::json;

const json sweep_forecast = json::parse(R"([
  {"action":"strip_identifiers","class":0,"deadline":"2022-02-01T00:00:00Z","kind":"cdr","month":"2021-01",
   "partial_holds":[1,3],"records":12},
  {"action":"drop_usage","class":2,"deadline":"2027-02-01T00:00:00Z","kind":"usage","month":"2024-02",
   "partial_holds":[],"records":1,"note":"two  spaces\tand a tab"},
  {"action":"drop_metadata","class":0,"deadline":"2027-01-01T00:00:00Z","kind":"cdr","month":"2017-02",
   "origin":{"member":"pod-1","request":"pod-1/ab"},"records":4,"reason":""}
])");

TEST(render, a_table_carries_every_row_and_member_of_the_json) {
  const auto table = text(sweep_forecast);
  EXPECT_EQ(test::table_mismatch(table, sweep_forecast), "") << table;
  // People's columns first.
  EXPECT_EQ(table.rfind("KIND   MONTH    CLASS  ACTION ", 0), 0u) << table;
  // The check can fail: a row or a value changed is seen.
  auto changed = sweep_forecast;
  changed[1]["records"] = 2;
  EXPECT_NE(test::table_mismatch(table, changed), "");
  changed.erase(1);
  EXPECT_NE(test::table_mismatch(table, changed), "");
}

TEST(render, cells_are_one_token_per_column) {
  EXPECT_EQ(cell(json(nullptr)), "-");
  EXPECT_EQ(cell(json("")), "\"\"");
  EXPECT_EQ(cell(json("  two  spaces\tand\na tab ")), "two spaces and a tab");
  EXPECT_EQ(cell(json::parse("[1,\"b\",true]")), "1,b,true");
  EXPECT_EQ(cell(json::array()), "-");
  EXPECT_EQ(cell(json::parse(R"([{"a":1}])")), R"([{"a":1}])");
  EXPECT_EQ(cell(json(42)), "42");
}

TEST(render, objects_are_lines_then_a_table_per_list) {
  const json verify = {{"ok", true},
                       {"wal_files", 2},
                       {"residues", json::array()},
                       {"keystore", {{"keys_live", 4}, {"path", "/var/lib/k.json"}}},
                       {"pending_purges", {{{"subject", "ab12"}, {"deadline", "2026-12-03T00:00:00Z"}}}},
                       {"members", {"pod-0", "pod-1"}}};
  EXPECT_EQ(text(verify),
            "keystore.keys_live: 4\n"
            "keystore.path: /var/lib/k.json\n"
            "members: pod-0,pod-1\n"
            "ok: true\n"
            "residues: (none)\n"
            "wal_files: 2\n"
            "\n"
            "pending_purges:\n"
            "DEADLINE              SUBJECT\n"
            "2026-12-03T00:00:00Z  ab12\n");
  // Only a list: the table without a blank line before it.
  EXPECT_EQ(text({{"holds", {{{"id", 1}, {"reason", "case"}}}}}), "holds:\nID  REASON\n1   case\n");
}

TEST(render, yaml_is_block_style_with_strings_quoted_when_yaml_would_read_them_otherwise) {
  const json v = {{"ok", true},
                  {"result",
                   {{"holds", {{{"id", 1}, {"reason", "yes"}, {"month", "2025-01"}, {"to", nullptr}}}},
                    {"empty", json::array()},
                    {"name", "cdr-retentiond@vm"},
                    {"note", "a: b # c"}}}};
  EXPECT_EQ(yaml(v),
            "ok: true\n"
            "result:\n"
            "  empty: []\n"
            "  holds:\n"
            "    - id: 1\n"
            "      month: \"2025-01\"\n"
            "      reason: \"yes\"\n"
            "      to: null\n"
            "  name: cdr-retentiond@vm\n"
            "  note: \"a: b # c\"\n");
  EXPECT_EQ(yaml(json("plain")), "plain\n");
  // Strings a YAML parser would read as something else are quoted.
  for (const char* s : {"NO", "no", "1e3", "-", " lead", "~", "null", "0x1F", "@at", "*star"}) {
    EXPECT_EQ(yaml(json(s)), json(s).dump() + "\n") << s;
  }
  EXPECT_EQ(yaml(json::parse("[[1,2],{}]")), "-\n  - 1\n  - 2\n- {}\n");
}

TEST(render, format_names) {
  EXPECT_EQ(format_from_name("text"), format::text);
  EXPECT_EQ(format_from_name("json"), format::json);
  EXPECT_EQ(format_from_name("yaml"), format::yaml);
  EXPECT_EQ(format_from_name("table"), std::nullopt);
}

TEST(render, status_summary_says_what_needs_attention_in_a_few_lines) {
  auto status = nlohmann::json::parse(R"({
    "kafka": {"consumer": {"state": "running", "lag": {"cdr": {"0": 3, "1": 4}}},
              "fleet": {"members": [{"live": true}, {"live": false}]}},
    "retention": {"overdue_partitions": 0, "holds_active": 2, "erasure_purge": null,
                  "saved_state": {"ok": true}, "clock_guard": {"last_sweep_at": "2026-12-01T00:00:00Z"}},
    "storage": {"records": {"cdr": 10, "usage": 1}, "write_stopped": false, "corrupt_entries": 0},
    "keystore": {"decrypt_failures": 0}})");
  auto s = render::status_summary(status);
  EXPECT_EQ(s["health"], "ok");
  EXPECT_FALSE(s.contains("problems"));
  EXPECT_EQ(s["lag"], 7);
  EXPECT_EQ(s["holds_active"], 2);
  EXPECT_EQ(s["pending_purges"], 0);
  EXPECT_EQ(s["last_sweep"], "2026-12-01T00:00:00Z");
  EXPECT_EQ(s["fleet"], "1 of 2 members live");
  status["kafka"]["consumer"]["state"] = "paused";
  status["kafka"]["consumer"]["pause_reason"] = "no_space";
  status["retention"]["overdue_partitions"] = 3;
  status["retention"]["erasure_purge"] = {{"on_time", false}, {"subjects", 4}};
  status["kafka"]["consumer"]["lag"] = nlohmann::json::object();
  s = render::status_summary(status);
  EXPECT_EQ(s["health"], "attention");
  EXPECT_EQ(
      s["problems"],
      nlohmann::json::parse(R"(["ingest paused: no_space", "3 partition(s) overdue", "erasure purge forecast late"])"));
  EXPECT_TRUE(s["lag"].is_null()) << "unknown, not 0";
  EXPECT_EQ(s["pending_purges"], 4);
}

}  // namespace
}  // namespace cdr::render
