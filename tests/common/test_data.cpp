#include "common/test_data.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace moon::test {

std::string test_data_dir() {
  namespace fs = std::filesystem;
  const char* env = std::getenv("MOON_TEST_DATA");
  fs::path root = env && *env ? fs::path(env) : fs::path(MOON_SOURCE_DIR) / ".." / "shared";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return {};
  return fs::weakly_canonical(root, ec).string();
}

std::string test_data_file(const std::string& relative) {
  std::string root = test_data_dir();
  if (root.empty()) return {};
  std::string path = root + "/" + relative;
  std::error_code ec;
  return std::filesystem::exists(path, ec) ? path : std::string();
}

bool test_data_required() {
  const char* env = std::getenv("MOON_REQUIRE_TEST_DATA");
  return env && std::string(env) == "1";
}

std::string temp_dir() {
  static const std::string dir = [] {
    auto path =
        std::filesystem::temp_directory_path() / ("moon-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    return path.string();
  }();
  return dir;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(std::move(line));
  }
  return lines;
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> records;
  for (const std::string& line : read_lines(path)) records.push_back(nlohmann::json::parse(line));
  return records;
}

std::string project_version() {
  const std::string text = read_file(std::string(MOON_SOURCE_DIR) + "/CMakeLists.txt");
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(R"(project\(moon VERSION ([0-9.]+))"))) return "";
  return m[1];
}

}  // namespace moon::test
