// `moon serve` on every model family (../shared/models/arch/): the real binary, each tiny
// file with its own chat template and stop tokens. Chat requests render the file's template,
// and the greedy tokens are llama.cpp's (up to the first near-tie, as golden_check.h says);
// the family's end-of-turn token ends a turn.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/test_client.h"
#include "common/test_data.h"

namespace moon::test {
namespace {

using json = nlohmann::json;

struct Family {
  const char* arch;
  const char* golden_suffix;  // Gemma: the exact-GELU golden, whose logits moon follows to 1e-4
  int end_of_turn;            // the id that ends a turn, from the data README
};

const Family kFamilies[] = {
    {"qwen2", "", 1538},           // <|im_end|>
    {"qwen3", "", 1538},           // <|im_end|>
    {"phi3", "", 1543},            // <|end|>
    {"gemma2", "-exact-gelu", 2},  // </s>: this vocabulary has no <end_of_turn>
    {"gemma3", "-exact-gelu", 2},  // </s>
    {"llama3", "", 1545},          // <|eot_id|>
};

class FamilyServer : public ::testing::TestWithParam<Family> {
 protected:
  void SetUp() override {
    const std::string arch = GetParam().arch;
    MOON_REQUIRE_TEST_FILE(model, "models/arch/tiny-" + arch + "-f32.gguf");
    MOON_REQUIRE_TEST_FILE(golden,
                           "models/arch/golden-tiny-" + arch + GetParam().golden_suffix + ".jsonl");
    goldens_ = read_jsonl(golden);
    server_ = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--model", model, "--threads", "1", "--kv-cache-memory", "16MiB"});
    ASSERT_TRUE(server_->ready()) << server_->log();
  }

  json post(const std::string& path, const json& body) {
    const HttpResult r = http_request(server_->port(), "POST", path, body.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? json::parse(r.body) : json::object();
  }

  // The request's generated ids must be the golden's until its first near-tie.
  static void expect_golden_tokens(const json& choice, const json& golden) {
    EXPECT_EQ(choice["prompt_token_ids"], golden["prompt_token_ids"]);
    const auto got = choice["token_ids"].get<std::vector<int>>();
    const auto want = golden["output_token_ids"].get<std::vector<int>>();
    const auto margins = golden["margins"].get<std::vector<double>>();
    ASSERT_EQ(got.size(), want.size());
    for (size_t s = 0; s < want.size() && margins[s] >= 2e-4; ++s) {
      ASSERT_EQ(got[s], want[s]) << golden["id"] << " step " << s;
    }
    EXPECT_EQ(choice["finish_reason"], "length");
  }

  std::unique_ptr<ServerProcess> server_;
  std::vector<json> goldens_;
};

TEST_P(FamilyServer, GreedyOutputIsLlamaCpps) {
  int checked = 0;
  for (const json& golden : goldens_) {
    SCOPED_TRACE(golden["id"].get<std::string>());
    const json sampling = {
        {"max_tokens", 32}, {"temperature", 0}, {"return_token_ids", true}, {"ignore_eos", true}};
    json body = sampling;
    std::string path = "/v1/completions";
    if (golden.contains("messages")) {  // rendered by the server from the file's own template
      body["messages"] = golden["messages"];
      path = "/v1/chat/completions";
    } else if (golden.value("parse_special", false)) {
      body["prompt"] = golden["prompt_token_ids"];  // completions text is never parsed for them
    } else {
      body["prompt"] = golden["prompt"];
    }
    const json out = post(path, body);
    ASSERT_TRUE(out.contains("choices")) << out.dump();
    expect_golden_tokens(out["choices"][0], golden);
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

TEST_P(FamilyServer, TheEndOfTurnTokenEndsTheReply) {
  // Pushing a token to the top makes it every greedy pick: the end-of-turn token stops the
  // reply at once (and is no part of its text), an ordinary one runs to max_tokens.
  const auto reply = [&](int token) {
    const json body = {{"max_tokens", 8},
                       {"temperature", 0},
                       {"logit_bias", {{std::to_string(token), 100}}},
                       {"prompt", "Hello"}};
    const json out = post("/v1/completions", body);
    return out.contains("choices") ? out["choices"][0] : json::object();
  };
  const json stopped = reply(GetParam().end_of_turn);
  EXPECT_EQ(stopped["finish_reason"], "stop") << stopped.dump();
  EXPECT_EQ(stopped["text"], "");
  const json ordinary = reply(300);
  EXPECT_EQ(ordinary["finish_reason"], "length") << ordinary.dump();
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyServer, ::testing::ValuesIn(kFamilies),
                         [](const auto& info) { return std::string(info.param.arch); });

}  // namespace
}  // namespace moon::test
