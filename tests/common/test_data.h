// Where the shared test data lives: env MOON_TEST_DATA, default ../shared beside the
// project root. Tests that need it skip loudly (GTEST_SKIP with the path) when it is absent.
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

// The whole of a file, as bytes; "" when it cannot be read.
std::string read_file(const std::string& path);
// The non-empty lines of a text file (e.g. the records of a .jsonl file), without their '\n'.
std::vector<std::string> read_lines(const std::string& path);
// Those lines parsed as JSON, one value each (a .jsonl file such as the golden outputs).
std::vector<nlohmann::json> read_jsonl(const std::string& path);

}  // namespace moon::test

#define MOON_REQUIRE_TEST_FILE(var, relative)                                                  \
  const std::string var = ::moon::test::test_data_file(relative);                              \
  if (var.empty()) {                                                                           \
    GTEST_SKIP() << "TEST DATA MISSING: " << (relative)                                        \
                 << " not found under MOON_TEST_DATA (default ../shared); set MOON_TEST_DATA"; \
  }
