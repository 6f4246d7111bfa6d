// tests/dist/tensor_parallel_test.py against the moon this build made: `mpirun -np 2 moon
// serve --tensor-parallel-size 2` on loopback, its goldens, memory, and a rank that dies or
// hangs (the script's docstring has the checks). Run through ctest so CI runs it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "common/run_command.h"
#include "common/test_data.h"
#include "dist/mpi_communicator.h"

namespace moon::test {
namespace {

#ifdef MOON_SANITIZED  // tests/CMakeLists.txt sets it in every sanitizer build
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

TEST(TensorParallelScript, TwoRanksUnderMpirunPassEveryCheck) {
  MOON_REQUIRE_TEST_FILE(golden, "models/golden-stories260K.jsonl");
  // CI installs Open MPI (scripts/install-deps.sh); elsewhere a build without it skips.
  if (!mpi_available() || std::system("command -v mpirun > /dev/null") != 0) {
    // CI (MOON_REQUIRE_TEST_DATA=1, set by .ci/run) must not pass without them.
    if (test_data_required()) FAIL() << "CI must build with Open MPI and have mpirun";
    GTEST_SKIP() << "SKIPPED LOUDLY: moon was built without MPI or mpirun is missing";
  }
  std::vector<std::string> args = {
      std::string(MOON_SOURCE_DIR) + "/tests/dist/tensor_parallel_test.py", "--moon",
      MOON_BINARY_PATH, "--data", test_data_dir()};
  if (kSanitized) args.push_back("--sanitized");
  const RunResult r = run_command("/usr/bin/python3", args);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("all checks passed"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace moon::test
