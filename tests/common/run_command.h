// Runs a program through the shell and captures its exit code, stdout and stderr, for tests
// that drive the real `moon` binary.
#pragma once

#include <string>
#include <vector>

namespace moon::test {

struct RunResult {
  int exit_code = -1;  // -1 when the program could not run or was killed by a signal
  std::string out;
  std::string err;
};

// `program` and every argument are quoted for the shell, so any text passes unchanged.
RunResult run_command(const std::string& program, const std::vector<std::string>& args);

}  // namespace moon::test
