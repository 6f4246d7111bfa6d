// Runs tests/e2e/openai_client.mjs (the official `openai` npm client) against a real server.
// Skips loudly when Node.js or the installed client (`npm ci` in tests/e2e) is missing.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/test_data.h"
#include "common/test_client.h"

namespace moon::test {
namespace {

TEST(OpenAiClient, NodeScriptPasses) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  const std::string e2e = std::string(MOON_SOURCE_DIR) + "/tests/e2e";
  if (std::system("command -v node >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "NODE.JS MISSING: install node to run the OpenAI client e2e test";
  }
  if (!std::filesystem::exists(e2e + "/node_modules/openai/package.json")) {
    GTEST_SKIP() << "OPENAI NPM CLIENT MISSING: run `npm ci` in " << e2e;
  }
  const std::string template_path = temp_dir() + "/e2e_chat_template.jinja";
  std::ofstream(template_path)
      << "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}";
  ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "64MiB",
                        "--chat-template", template_path});
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string cmd = "timeout 120 node '" + e2e +
                          "/openai_client.mjs' http://127.0.0.1:" + std::to_string(server.port()) +
                          "/v1 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  std::array<char, 4096> buf;
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0;) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out << "\n" << server.log();
}

}  // namespace
}  // namespace moon::test
