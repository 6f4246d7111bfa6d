// OpenAI's /v1/chat/completions answer: each choice a "message" (streaming: "delta"s, the
// first carrying the assistant's role). With tools, a finished choice is read for calls
// (src/chat/tool_calls.h): they answer as "tool_calls" with the text around them as
// content, and while streaming, text that may still become a call is held back.
#pragma once

#include <string>
#include <vector>

#include "chat/tool_calls.h"
#include "server/openai_format.h"

namespace moon::server {

class ChatFormat : public OpenAiFormat {
 public:
  ChatFormat(const JobOptions& opts, const Tokenizer& tok, uint64_t serial);

  std::string on_finish(size_t i, const Choice& c, std::string reason) override;
  std::string stream(size_t i, Choice& c, const PromptLogprobs& prompt_logprobs) override;

 protected:
  nlohmann::json answer_choice(size_t i, const Choice& c,
                               const PromptLogprobs& prompt_logprobs) const override;

 private:
  struct Reply {
    bool role_sent = false;  // streaming
    // With tools, once finished: the calls read from the text and the text around them.
    std::vector<ToolCall> calls;
    std::string content;
  };
  std::vector<Reply> replies_;  // per choice
};

}  // namespace moon::server
