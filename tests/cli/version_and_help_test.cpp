// `moon --version` and what `moon serve --help` tells: the real binary, driven through a shell.
#include <gtest/gtest.h>

#include <regex>

#include "common/run_command.h"
#include "common/test_data.h"

namespace moon {
namespace {

TEST(MoonCommand, VersionPrintsTheProjectVersionAndExitsZero) {
  const std::string version = test::project_version();
  ASSERT_FALSE(version.empty());
  const test::RunResult r = test::run_command(MOON_BINARY_PATH, {"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "moon " + version + "\n");
  EXPECT_EQ(r.err, "");
}

TEST(MoonCommand, ServeHelpShowsTheDefaults) {
  const test::RunResult r = test::run_command(MOON_BINARY_PATH, {"serve", "--help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // CLI11 writes a default after the option's type, as "=VALUE" (the help text may wrap).
  for (const char* expected :
       {R"(--host TEXT=127\.0\.0\.1\s)", R"(--port [^\n]*=8080\s)",
        R"(--max-connections [^\n]*=1024\s)", R"(--max-connections-per-ip [^\n]*=256\s)",
        R"(--shutdown-timeout [^\n]*=30\s)", R"(--max-num-seqs [^\n]*=256\s)",
        R"(--block-size [^\n]*=16\s)"}) {
    EXPECT_TRUE(std::regex_search(r.out, std::regex(expected))) << expected << "\n" << r.out;
  }
}

}  // namespace
}  // namespace moon
