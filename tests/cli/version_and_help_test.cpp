// `moon --version` and what `moon serve --help` tells: the real binary, driven through a shell.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "common/run_command.h"

namespace moon {
namespace {

// The version CMakeLists.txt declares, read from the file itself.
std::string declared_version() {
  std::ifstream in(std::string(MOON_SOURCE_DIR) + "/CMakeLists.txt");
  std::stringstream ss;
  ss << in.rdbuf();
  std::smatch m;
  const std::string text = ss.str();
  if (!std::regex_search(text, m, std::regex(R"(project\(moon VERSION ([0-9.]+))"))) return "";
  return m[1];
}

TEST(MoonCommand, VersionPrintsTheProjectVersionAndExitsZero) {
  const std::string version = declared_version();
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
