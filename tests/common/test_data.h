// Where the shared test data lives: env MOON_TEST_DATA, default ../shared beside the
// project root. Tests that need it skip loudly (GTEST_SKIP with the path) when it is absent,
// or fail under MOON_REQUIRE_TEST_DATA=1 (CI sets it: a CI without the data must not pass
// while testing nothing).
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace moon::test {

// The data root, e.g. "/work/shared"; empty when it does not exist.
std::string test_data_dir();
// Path of a file under the data root ("models/stories260K-f32.gguf"); empty if missing.
std::string test_data_file(const std::string& relative);
// A scratch directory unique to the running test binary, created on first use.
std::string temp_dir();

// Whether missing test data fails a test instead of skipping it (MOON_REQUIRE_TEST_DATA=1).
bool test_data_required();

// The whole of a file, as bytes; "" when it cannot be read.
std::string read_file(const std::string& path);
// The non-empty lines of a text file (e.g. the records of a .jsonl file), without their '\n'.
std::vector<std::string> read_lines(const std::string& path);
// Those lines parsed as JSON, one value each (a .jsonl file such as the golden outputs).
std::vector<nlohmann::json> read_jsonl(const std::string& path);

// The version CMakeLists.txt declares (project(moon VERSION ...)), read from the file, for
// tests of what the binary reports; "" when it is not found.
std::string project_version();

}  // namespace moon::test

// Ends the current test for want of `what` (a path under the data root, or a description):
// a loud skip, or a failure where the data is required.
#define MOON_MISSING_TEST_DATA(what)                                                             \
  do {                                                                                           \
    if (::moon::test::test_data_required()) {                                                    \
      GTEST_FAIL() << "TEST DATA MISSING (MOON_REQUIRE_TEST_DATA=1): " << (what)                 \
                   << " not found under MOON_TEST_DATA (default ../shared)";                     \
    } else {                                                                                     \
      GTEST_SKIP() << "TEST DATA MISSING: " << (what)                                            \
                   << " not found under MOON_TEST_DATA (default ../shared); set MOON_TEST_DATA"; \
    }                                                                                            \
  } while (0)

#define MOON_REQUIRE_TEST_FILE(var, relative)                     \
  const std::string var = ::moon::test::test_data_file(relative); \
  if (var.empty()) MOON_MISSING_TEST_DATA(relative)
