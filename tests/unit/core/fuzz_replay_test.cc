// The fuzz harnesses over their committed seed corpora and every crash
// input fuzzing found (tests/fuzz/regressions), in the ordinary builds, so
// the sanitizer build runs them on every change.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "harnesses.h"

namespace cdr {
namespace {

using harness = void (*)(const std::uint8_t*, std::size_t);

std::size_t replay(const std::string& target, harness run) {
  std::size_t n = 0;
  for (const auto* kind : {"corpus", "regressions"}) {
    const auto dir = std::filesystem::path(CDR_SOURCE_DIR) / "tests/fuzz" / kind / target;
    for (const auto& f : std::filesystem::directory_iterator(dir)) {
      if (!f.is_regular_file() || f.path().filename() == ".keep") continue;
      std::ifstream in(f.path(), std::ios::binary);
      std::stringstream s;
      s << in.rdbuf();
      const auto bytes = s.str();
      SCOPED_TRACE(f.path().string());
      run(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
      ++n;
    }
  }
  return n;
}

TEST(fuzz_replay, event_corpus_and_regressions) { EXPECT_GT(replay("event", fuzz::event), 5u); }
TEST(fuzz_replay, admin_request_corpus_and_regressions) { EXPECT_GT(replay("admin_request", fuzz::admin_request), 5u); }
TEST(fuzz_replay, config_corpus_and_regressions) { EXPECT_GT(replay("config", fuzz::config), 5u); }

}  // namespace
}  // namespace cdr
