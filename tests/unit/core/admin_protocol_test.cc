#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "cdr/core/admin_protocol.h"

namespace cdr::admin {
namespace {

error expect_error(std::string_view line) {
  auto r = parse_request(line);
  EXPECT_TRUE(std::holds_alternative<error>(r)) << line;
  return std::holds_alternative<error>(r) ? std::get<error>(r) : error{};
}

TEST(admin_protocol, parses_a_request) {
  auto r = parse_request(R"({"id": 7, "command": "debug advance-clock", "args": {"duration": "90s"}})");
  ASSERT_TRUE(std::holds_alternative<request>(r));
  const auto& req = std::get<request>(r);
  EXPECT_EQ(req.id, 7);
  EXPECT_EQ(req.command, "debug advance-clock");
  EXPECT_EQ(std::get<std::optional<std::string>>(string_arg(req, "duration")), "90s");
  EXPECT_EQ(std::get<std::optional<std::string>>(string_arg(req, "other")), std::nullopt);
  auto plain = std::get<request>(parse_request(R"({"command":"status"})"));
  EXPECT_TRUE(plain.id.is_null());
  EXPECT_TRUE(plain.args.is_object());
}

TEST(admin_protocol, malformed_requests_get_precise_errors) {
  EXPECT_EQ(expect_error("not json").code, error_code::invalid_json);
  EXPECT_EQ(expect_error("[1]").code, error_code::invalid_json);
  EXPECT_EQ(expect_error("").code, error_code::invalid_json);
  EXPECT_EQ(expect_error(R"({"id":1})").code, error_code::invalid_request);
  EXPECT_EQ(expect_error(R"({"id":1})").id, 1);
  EXPECT_EQ(expect_error(R"({"command":5})").code, error_code::invalid_request);
  EXPECT_EQ(expect_error(R"({"command":"status","args":[]})").code, error_code::invalid_request);
  EXPECT_EQ(expect_error(R"({"command":"status","sudo":true})").code, error_code::invalid_request);
  EXPECT_EQ(expect_error(R"({"command":"rm -rf"})").code, error_code::unknown_command);
  const auto bad_arg = std::get<request>(parse_request(R"({"command":"debug advance-clock","args":{"duration":5}})"));
  EXPECT_TRUE(std::holds_alternative<error>(string_arg(bad_arg, "duration")));
}

TEST(admin_protocol, responses_are_one_json_line) {
  const auto ok = ok_response(3, {{"a", 1}});
  EXPECT_EQ(ok, "{\"id\":3,\"ok\":true,\"result\":{\"a\":1}}\n");
  const auto err = error_response({"x", error_code::permission_denied, "no\nway"});
  EXPECT_EQ(err.find('\n'), err.size() - 1);
  const auto parsed = nlohmann::json::parse(err);
  EXPECT_EQ(parsed["error"]["code"], "permission_denied");
  EXPECT_EQ(parsed["id"], "x");
  // Invalid UTF-8 in a message never breaks the line.
  EXPECT_NO_THROW(nlohmann::json::parse(error_response({nullptr, error_code::internal, "bad \xff byte"})));
}

TEST(admin_protocol, access_follows_uid_and_groups) {
  const group_policy g{1000, 50, 60};
  EXPECT_EQ(access_of({0, 0, {}}, g), access::operator_);
  EXPECT_EQ(access_of({1000, 1000, {}}, g), access::operator_);
  EXPECT_EQ(access_of({2000, 50, {}}, g), access::operator_);
  EXPECT_EQ(access_of({2000, 100, {7, 50}}, g), access::operator_);
  EXPECT_EQ(access_of({2000, 60, {}}, g), access::viewer);
  EXPECT_EQ(access_of({2000, 100, {60}}, g), access::viewer);
  EXPECT_EQ(access_of({2000, 100, {61}}, g), access::none);
  EXPECT_EQ(access_of({2000, 50, {}}, {1000, std::nullopt, std::nullopt}), access::none);
}

TEST(admin_protocol, every_command_is_documented_with_a_right) {
  for (const auto& c : commands()) {
    EXPECT_FALSE(c.summary.empty()) << c.name;
    EXPECT_NE(c.required, access::none) << c.name;
    EXPECT_EQ(find_command(c.name), &c);
  }
  EXPECT_EQ(find_command("status")->required, access::viewer);
  EXPECT_EQ(find_command("debug advance-clock")->required, access::operator_);
  // Commands that reveal data are for operators only.
  EXPECT_EQ(find_command("record get")->required, access::operator_);
  EXPECT_EQ(find_command("subject export")->required, access::operator_);
  EXPECT_EQ(find_command("drain")->required, access::operator_);
}

// --fleet is taken exactly by the reads a member answers for another; never
// by a command that changes anything (a member runs those only from the
// control topic's actions).
TEST(admin_protocol, fleet_reads_are_the_reads_that_take_fleet) {
  std::set<std::string_view> reads;
  for (const auto& c : commands()) {
    const bool takes = std::any_of(c.args.begin(), c.args.end(), [](const arg_spec& a) { return a.name == "fleet"; });
    EXPECT_EQ(takes, fleet_readable(c.id)) << c.name;
    if (takes) reads.insert(c.name);
  }
  EXPECT_EQ(reads, (std::set<std::string_view>{"status", "verify", "hold list", "sweep", "subject export"}));
  EXPECT_EQ(cli_flag(*std::find_if(find_command("verify")->args.begin(), find_command("verify")->args.end(),
                                   [](const arg_spec& a) { return a.name == "fleet"; })),
            "--fleet");
}

}  // namespace
}  // namespace cdr::admin
