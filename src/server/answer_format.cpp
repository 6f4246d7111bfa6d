#include "server/answer_format.h"

#include <fmt/format.h>

#include <ctime>
#include <random>

#include "server/chat_format.h"
#include "server/completion_format.h"
#include "server/tgi_format.h"

namespace moon::server {

AnswerFormat::AnswerFormat(const JobOptions& opts, const Tokenizer& tok, const char* id_prefix,
                           uint64_t serial)
    : opts_(opts),
      tok_(tok),
      id_(fmt::format("{}-{:x}{:08x}", id_prefix, serial,
                      static_cast<uint32_t>(std::random_device{}()))),
      created_(static_cast<int64_t>(std::time(nullptr))) {}

std::string AnswerFormat::on_finish(size_t, const Choice&, std::string reason) {
  return reason;
}

std::string AnswerFormat::stream_opening(size_t) {
  return {};
}

std::unique_ptr<AnswerFormat> make_answer_format(const JobOptions& opts, const Tokenizer& tok,
                                                 uint64_t serial) {
  switch (opts.kind) {
    case ApiKind::kChat:
      return std::make_unique<ChatFormat>(opts, tok, serial);
    case ApiKind::kTgi:
      return std::make_unique<TgiFormat>(opts, tok, serial);
    case ApiKind::kCompletion:
      break;
  }
  return std::make_unique<CompletionFormat>(opts, tok, serial);
}

}  // namespace moon::server
