// scripts/fault_tests.py --short against the moon this build made: malformed HTTP, many
// streams, disconnects, a short KV pool, slow clients and SIGTERM, each with its own checks
// (the script's docstring). Run through ctest so that CI runs it on every change.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/run_command.h"
#include "common/test_data.h"

namespace moon::test {
namespace {

constexpr char kModel[] = "models/stories260K-f32.gguf";
const std::string kScript = std::string(MOON_SOURCE_DIR) + "/scripts/fault_tests.py";

// Sanitized servers are several times slower and their memory says little about the server's
// own (shadow memory, quarantine): the script then widens its time bounds and skips the
// memory ones.
#ifdef MOON_SANITIZED  // tests/CMakeLists.txt sets it in every sanitizer build
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

std::vector<std::string> script_args(const std::string& model, std::vector<std::string> extra) {
  std::vector<std::string> args = {kScript,          "--short", "--moon",
                                   MOON_BINARY_PATH, "--model", model};
  if (kSanitized) args.push_back("--sanitized");
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(FaultScript, ShortRunPassesEveryCheck) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  const RunResult r = run_command("/usr/bin/python3", script_args(model, {}));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find(" checks passed in "), std::string::npos) << r.out << r.err;
}

// The script's verdict is its exit code: a check that fails must make it non-zero and be
// named. No server grows by 0 bytes while it answers 1,000 requests.
TEST(FaultScript, AFailedCheckIsNamedAndMakesTheExitCodeNonZero) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  if (kSanitized) GTEST_SKIP() << "a sanitized run has no memory bound to fail";
  const RunResult r = run_command("/usr/bin/python3",
                                  script_args(model, {"--only", "fuzz", "--fuzz-rss-mib", "0"}));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("FAILED [fuzz] peak RSS within 0 MiB of the start"), std::string::npos)
      << r.out << r.err;
}

}  // namespace
}  // namespace moon::test
