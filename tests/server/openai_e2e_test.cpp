// Runs the scripts in tests/e2e against a real server: openai_client.mjs (the official `openai`
// npm client) and structured_output.mjs (structured output through the `openai` client, ajv,
// LangChain and the Vercel AI SDK). Skips loudly when Node.js or the installed packages
// (`npm ci` in tests/e2e) are missing.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/test_data.h"
#include "common/test_client.h"

namespace moon::test {
namespace {

const std::string kE2e = std::string(MOON_SOURCE_DIR) + "/tests/e2e";

// The npm packages of `packages` that tests/e2e/node_modules lacks, space-separated.
std::string missing_packages(const std::vector<std::string>& packages) {
  std::string missing;
  for (const std::string& p : packages) {
    if (!std::filesystem::exists(kE2e + "/node_modules/" + p + "/package.json")) {
      missing += (missing.empty() ? "" : " ") + p;
    }
  }
  return missing;
}

// Starts a server on stories260K with a chat template that concatenates the message contents
// after BOS, runs `node SCRIPT BASE_URL` for at most `timeout_s` seconds and expects exit 0.
void run_script(const std::string& model, const std::string& script, int timeout_s) {
  const std::string template_path = temp_dir() + "/e2e_chat_template.jinja";
  std::ofstream(template_path)
      << "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}";
  ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "64MiB",
                        "--chat-template", template_path});
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string cmd = "timeout " + std::to_string(timeout_s) + " node '" + kE2e + "/" +
                          script + "' http://127.0.0.1:" + std::to_string(server.port()) +
                          "/v1 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  std::array<char, 4096> buf;
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0;) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out << "\n" << server.log();
}

TEST(OpenAiClient, NodeScriptPasses) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  if (std::system("command -v node >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "NODE.JS MISSING: install node to run the OpenAI client e2e test";
  }
  if (!missing_packages({"openai"}).empty()) {
    GTEST_SKIP() << "OPENAI NPM CLIENT MISSING: run `npm ci` in " << kE2e;
  }
  run_script(model, "openai_client.mjs", 120);
}

TEST(OpenAiClient, StructuredOutputScriptPasses) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  if (std::system("command -v node >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "NODE.JS MISSING: install node to run the structured output e2e test";
  }
  const std::string missing =
      missing_packages({"openai", "zod", "ajv", "ajv-formats", "@langchain/core",
                        "@langchain/openai", "ai", "@ai-sdk/openai-compatible"});
  if (!missing.empty()) {
    GTEST_SKIP() << "NPM PACKAGES MISSING (" << missing << "): run `npm ci` in " << kE2e;
  }
  run_script(model, "structured_output.mjs", 300);
}

}  // namespace
}  // namespace moon::test
