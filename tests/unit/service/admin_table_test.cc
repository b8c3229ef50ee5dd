// Every command of the core command table has exactly one handler (the
// build checks it too: a static_assert in lib/service/admin/table.cc).
#include <gtest/gtest.h>

#include <set>

#include "admin/handlers.h"
#include "cdr/core/admin_protocol.h"

namespace cdr::test {
namespace {

TEST(admin_handlers, one_per_command_of_the_core_table) {
  const auto commands = admin::commands();
  const auto table = service::handler_table();
  ASSERT_EQ(table.size(), commands.size());
  std::set<service::handler_fn> distinct;
  for (std::size_t i = 0; i < commands.size(); ++i) {
    EXPECT_EQ(table[i].command, commands[i].id) << commands[i].name;
    EXPECT_NE(table[i].run, nullptr) << commands[i].name;
    distinct.insert(table[i].run);
  }
  EXPECT_EQ(distinct.size(), commands.size()) << "no handler serves two commands";
}

}  // namespace
}  // namespace cdr::test
