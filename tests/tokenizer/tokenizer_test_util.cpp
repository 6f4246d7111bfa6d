#include "tokenizer_test_util.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "common/test_data.h"
#include "gguf/gguf_file.h"

namespace moon::test {

std::string vocab_path(const std::string& name) {
  return test_data_file("models/vocab/ggml-vocab-" + name + ".gguf");
}

std::string vocab_param_name(const ::testing::TestParamInfo<const char*>& info) {
  std::string s = info.param;
  for (char& c : s) {
    if (c == '-') c = '_';
  }
  return s;
}

void VocabTest::SetUp() {
  name_ = GetParam();
  MOON_REQUIRE_TEST_FILE(path, "models/vocab/ggml-vocab-" + name_ + ".gguf");
  path_ = path;
  tok_ = vocab_tokenizer(name_);
  ASSERT_NE(tok_, nullptr);
}

const Tokenizer* vocab_tokenizer(const std::string& name) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = cache.find(name); it != cache.end()) return it->second.get();
  const std::string path = vocab_path(name);
  if (path.empty()) return nullptr;
  auto file = gguf::GgufFile::open(path);
  if (!file.ok()) {
    ADD_FAILURE() << file.error().message;
    return nullptr;
  }
  auto tokenizer = Tokenizer::from_gguf(**file);
  if (!tokenizer.ok()) {
    ADD_FAILURE() << tokenizer.error().message;
    return nullptr;
  }
  return (cache[name] = std::move(*tokenizer)).get();
}

std::vector<VocabCase> read_vocab_cases(const std::string& gguf_path) {
  const std::string inp = read_file(gguf_path + ".inp");
  const std::string out = read_file(gguf_path + ".out");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<VocabCase> cases;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t end = inp.find(separator, pos);
    if (end == std::string::npos) {
      ADD_FAILURE() << gguf_path << ".inp: text without a closing separator at byte " << pos;
      return {};
    }
    cases.push_back({inp.substr(pos, end - pos), {}});
    pos = end + separator.size();
  }
  std::istringstream lines(out);
  std::string line;
  size_t i = 0;
  while (std::getline(lines, line)) {
    if (i >= cases.size()) {
      ADD_FAILURE() << gguf_path << ".out has more lines than .inp has texts";
      return {};
    }
    std::istringstream ids(line);
    TokenId id;
    while (ids >> id) cases[i].ids.push_back(id);
    ++i;
  }
  if (i != cases.size()) {
    ADD_FAILURE() << gguf_path << ".out has " << i << " lines for " << cases.size() << " texts";
    return {};
  }
  return cases;
}

std::string hex_bytes(const std::string& s) {
  std::string out = "[";
  char buf[4];
  for (unsigned char c : s) {
    snprintf(buf, sizeof buf, "%02x", c);
    if (out.size() > 1) out += ' ';
    out += buf;
  }
  return out + "]";
}

std::string ids_to_string(const std::vector<TokenId>& ids) {
  std::string out;
  for (TokenId id : ids) {
    if (!out.empty()) out += ' ';
    out += std::to_string(id);
  }
  return out;
}

}  // namespace moon::test
