// The fuzz harnesses over their committed seed corpora and every crash
// input fuzzing found (tests/fuzz/regressions), in the ordinary builds, so
// the sanitizer build runs them on every change.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "harnesses.h"

namespace cdr {
namespace {

using harness = void (*)(const std::uint8_t*, std::size_t);

std::size_t replay(const std::string& target, harness run) {
  std::size_t n = 0;
  for (const auto* kind : {"corpus", "regressions"}) {
    const auto dir = std::filesystem::path(CDR_SOURCE_DIR) / "tests/fuzz" / kind / target;
    // In name order: a crash that needs a sequence (the harness keeps its
    // parser across inputs) is kept as files named in that order.
    std::vector<std::filesystem::path> files;
    for (const auto& f : std::filesystem::directory_iterator(dir)) {
      if (f.is_regular_file() && f.path().filename() != ".keep") files.push_back(f.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::stringstream s;
      s << in.rdbuf();
      const auto bytes = s.str();
      SCOPED_TRACE(f.string());
      run(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
      ++n;
    }
  }
  return n;
}

TEST(fuzz_replay, event_corpus_and_regressions) { EXPECT_GT(replay("event", fuzz::event), 5u); }
// The crash 5bedb18 fixed is among the regressions: a long message with a
// quote, then an unbalanced document of that length, through one parser.
TEST(fuzz_replay, the_fixed_event_parser_crash_is_kept_as_a_regression) {
  const auto dir = std::filesystem::path(CDR_SOURCE_DIR) / "tests/fuzz/regressions/event";
  EXPECT_TRUE(std::filesystem::exists(dir / "5bedb18-1-previous-message"));
  EXPECT_TRUE(std::filesystem::exists(dir / "5bedb18-2-unbalanced"));
}
TEST(fuzz_replay, admin_request_corpus_and_regressions) { EXPECT_GT(replay("admin_request", fuzz::admin_request), 5u); }
TEST(fuzz_replay, config_corpus_and_regressions) { EXPECT_GT(replay("config", fuzz::config), 5u); }

}  // namespace
}  // namespace cdr
