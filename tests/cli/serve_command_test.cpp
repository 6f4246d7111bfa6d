// `moon serve` refusing what it cannot serve, at once and by name: a --chat-template that is
// neither a file nor a template, and a --model that is a FIFO (which used to hang forever).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/run_command.h"
#include "common/test_data.h"

namespace moon {
namespace {

// Under `timeout`, so that a hang fails (exit 124) instead of stalling the test.
test::RunResult serve(const std::vector<std::string>& args) {
  std::vector<std::string> all = {"20", MOON_BINARY_PATH, "serve", "--port", "0"};
  all.insert(all.end(), args.begin(), args.end());
  return test::run_command("timeout", all);
}

TEST(ServeCommand, AChatTemplatePathThatIsNotThereIsAnError) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  const auto r = serve({"--model", model, "--chat-template", "/no/such/dir/template.jinja"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 124) << "it hung";
  EXPECT_NE((r.out + r.err).find("neither a readable file nor a template"), std::string::npos)
      << r.out << r.err;
}

TEST(ServeCommand, AModelThatIsAFifoIsRefusedNotWaitedOn) {
  const std::string fifo = test::temp_dir() + "/serve_command_test.fifo";
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto r = serve({"--model", fifo});
  ::unlink(fifo.c_str());
  EXPECT_NE(r.exit_code, 124) << "it waited for a writer";
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("is not a regular file"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace moon
