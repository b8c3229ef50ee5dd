// The audit trail's chain: keyed, repaired after a short write, re-keyed
// once from a legacy (plain SHA-256) trail.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "cdr/crypto/crypto.h"
#include "fixture.h"

namespace cdr::test {
namespace {

// Lines re-chained with plain SHA-256 (as builds before the keyed chain
// did, or as anyone holding only the data directory could); the file's text
// and the last hash.
std::pair<std::string, std::string> rechain_with_sha256(std::vector<nlohmann::json> lines) {
  std::string prev(64, '0');
  std::string text;
  for (auto& l : lines) {
    l["prev"] = prev;
    auto bare = l;
    bare.erase("hash");
    l["hash"] = crypto::sha256_hex(bare.dump());
    prev = l["hash"];
    text += l.dump() + "\n";
  }
  return {text, prev};
}

std::vector<nlohmann::json> lines_of(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(nlohmann::json::parse(l));
  return out;
}

class audit_chain : public service_fixture {
 protected:
  void add_hold(const std::string& customer) {
    ASSERT_TRUE(std::holds_alternative<nlohmann::json>(
        retention_->hold_add({{"customer", customer}, {"reason", "r"}, {"reference", "x"}}, 0)));
  }
  std::string trail() { return read_file(retention_->audit().path()); }
  void append_raw(const std::string& bytes) {
    std::ofstream(retention_->audit().path(), std::ios::app | std::ios::binary) << bytes;
  }
};

// Finding 7 of "Hardening": after a short write the next append glued onto
// the partial line and `audit verify` failed from then on.
TEST_F(audit_chain, a_partial_last_line_is_cut_off_and_the_repair_is_audited) {
  add_hold("a");
  add_hold("b");
  ASSERT_TRUE(retention_->audit().verify().ok);
  const auto complete = trail();
  const std::string partial = R"({"entry":{"action":"hold_add","hold":{"customer":"c")";
  append_raw(partial);  // a full disk, a kill mid-write
  EXPECT_FALSE(retention_->audit().verify().ok) << "the partial line is seen";
  reopen();  // the next start drains: the tail is repaired before anything is appended
  const auto v = retention_->audit().verify();
  EXPECT_TRUE(v.ok) << v.problem << " at line " << v.line;
  EXPECT_EQ(v.entries, 3u) << "two holds and the repair";
  const auto now = trail();
  EXPECT_EQ(now.substr(0, complete.size()), complete) << "the complete entries are untouched";
  EXPECT_NE(now.find("\"action\":\"repair_audit_tail\""), std::string::npos) << now;
  EXPECT_NE(now.find("\"truncated_bytes\":" + std::to_string(partial.size())), std::string::npos) << now;
  add_hold("d");
  EXPECT_TRUE(retention_->audit().verify().ok);
  EXPECT_EQ(retention_->audit().verify().entries, 4u);
}

// Issue "Fleet trust", item 8: a reader of the trail (audit export) never
// skips a line it cannot read; it gets the line's number and text instead.
TEST_F(audit_chain, an_unreadable_line_is_exported_as_such_never_skipped) {
  add_hold("a");
  add_hold("b");
  auto text = trail();
  const auto second = text.find('\n') + 1;
  text.replace(second, 1, "#");  // line 2 no longer parses
  std::ofstream(retention_->audit().path(), std::ios::trunc | std::ios::binary) << text;
  std::vector<nlohmann::json> seen;
  const auto since = parse_rfc3339("2000-01-01T00:00:00Z");
  EXPECT_EQ(retention_->audit().for_each(since, [&](nlohmann::json j) { seen.push_back(std::move(j)); }), 2u);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1]["line"], 2) << seen[1].dump();
  EXPECT_EQ(seen[1]["unreadable"], "not a JSON object");
  EXPECT_EQ(seen[1]["text"].get<std::string>().front(), '#');
}

TEST_F(audit_chain, lines_appended_before_a_crash_moved_the_head_are_kept_once) {
  add_hold("a");
  const auto head_after_a = encode(state_->head().value());
  add_hold("b");
  // The head lags the file by one complete line, as a crash between the
  // append and the head's update leaves it.
  close();
  put_raw_saved_state(dir_ / "data", "audit_head", head_after_a);
  open();
  const auto v = retention_->audit().verify();
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.entries, 2u) << "the second line is taken as appended, not appended again";
  EXPECT_EQ(state_->head()->seq, 2u);
}

TEST_F(audit_chain, a_copy_of_the_data_directory_alone_cannot_forge_the_chain) {
  add_hold("a");
  add_hold("b");
  // Rewrite an entry and re-chain it with plain SHA-256, as anyone holding
  // only the data directory could: the keyed chain does not verify.
  auto text = trail();
  const auto at = text.find("\"customer\":\"a\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 14, "\"customer\":\"z\"");
  std::ofstream(retention_->audit().path(), std::ios::trunc) << rechain_with_sha256(lines_of(text)).first;
  const auto v = retention_->audit().verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.line, 1u);
  EXPECT_NE(v.problem.find("does not match its hash (keyed"), std::string::npos) << v.problem;
}

// A trail written by a build before the keyed chain: re-keyed once when
// allowed (the daemon allows it until the key store records it is keyed),
// never when not.
TEST_F(audit_chain, a_legacy_trail_is_re_keyed_once_and_only_when_allowed) {
  add_hold("a");
  add_hold("b");
  close();
  // Re-chain the trail with plain SHA-256 and point the head at it.
  const auto [legacy, prev] = rechain_with_sha256(lines_of(read_file(dir_ / "data/audit.jsonl")));
  std::ofstream(dir_ / "data/audit.jsonl", std::ios::trunc) << legacy;
  put_raw_saved_state(dir_ / "data", "audit_head", R"({"hash":")" + prev + R"(","seq":2})");
  open();  // migration allowed (the fixture's keying)
  auto v = retention_->audit().verify();
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.entries, 3u) << "two holds and the re-keying";
  EXPECT_NE(trail().find("\"legacy_head\":\"" + prev + "\""), std::string::npos);
  // Once keyed, nothing changes at the next start.
  const auto keyed = trail();
  reopen();
  EXPECT_EQ(trail(), keyed);
}

}  // namespace
}  // namespace cdr::test
