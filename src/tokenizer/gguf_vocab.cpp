#include "tokenizer/gguf_vocab.h"

#include <spdlog/spdlog.h>

namespace moon {
namespace {

using gguf::GgufFile;
using gguf::Value;
using gguf::ValueType;

Result<std::vector<std::string>> read_strings(const GgufFile& file, std::string_view key,
                                              bool required) {
  const Value* v = file.find(key);
  if (v == nullptr) {
    if (required) return make_error("{}: {} is missing", file.name(), key);
    return std::vector<std::string>{};
  }
  const Value::Array* a = v->array();
  if (a == nullptr || (a->element_type != ValueType::String && v->array_size() > 0)) {
    return make_error("{}: {} should be an array of strings, not {}", file.name(), key,
                      v->to_string(2));
  }
  return std::vector<std::string>(a->strings.begin(), a->strings.end());
}

// A special-token id, if the key is present, holds an integer and names a token.
std::optional<TokenId> read_id(const GgufFile& file, std::string_view key, size_t n_tokens) {
  const Value* v = file.find(key);
  if (v == nullptr) return std::nullopt;
  const std::optional<uint64_t> id = v->as_uint();
  if (!id || *id >= n_tokens) {
    // llama.cpp's converter writes -1 (as uint32 4294967295) for "none"; stay quiet for it.
    if (!(id && *id == 0xFFFFFFFFu)) {
      spdlog::warn("{}: ignoring {} = {}: not a token id below {}", file.name(), key,
                   v->to_string(), n_tokens);
    }
    return kNoToken;
  }
  return static_cast<TokenId>(*id);
}

Result<std::optional<bool>> read_bool(const GgufFile& file, std::string_view key) {
  const Value* v = file.find(key);
  if (v == nullptr) return std::optional<bool>{};
  const std::optional<bool> b = v->as_bool();
  if (!b) return make_error("{}: {} should be a bool, not {}", file.name(), key, v->to_string());
  return b;
}

TokenType to_token_type(int64_t v) {
  return v >= 0 && v <= 6 ? static_cast<TokenType>(v) : TokenType::Undefined;
}

}  // namespace

Result<VocabSpec> read_vocab_spec(const GgufFile& file) {
  VocabSpec spec;
  const Value* model = file.find("tokenizer.ggml.model");
  if (model == nullptr) {
    return make_error("{} has no tokenizer: tokenizer.ggml.model is missing", file.name());
  }
  const std::optional<std::string_view> model_name = model->as_string();
  if (!model_name) {
    return make_error("{}: tokenizer.ggml.model should be a string, not {}", file.name(),
                      model->to_string());
  }
  if (*model_name == "llama") {
    spec.kind = TokenizerKind::Spm;
  } else if (*model_name == "gpt2") {
    spec.kind = TokenizerKind::Bpe;
  } else {
    return make_error(
        "{}: unsupported tokenizer.ggml.model '{}' (supported: 'llama' for SentencePiece-style "
        "BPE, 'gpt2' for byte-level BPE)",
        file.name(), *model_name);
  }

  MOON_ASSIGN_OR_RETURN(spec.tokens, read_strings(file, "tokenizer.ggml.tokens", true));
  if (spec.tokens.empty()) return make_error("{}: tokenizer.ggml.tokens is empty", file.name());
  const size_t n = spec.tokens.size();

  if (const Value* v = file.find("tokenizer.ggml.scores")) {
    const Value::Array* a = v->array();
    if (a == nullptr || a->floats.size() != n) {
      return make_error("{}: tokenizer.ggml.scores should be {} floats, not {}", file.name(), n,
                        v->to_string(2));
    }
    spec.scores.assign(a->floats.begin(), a->floats.end());
  }
  if (const Value* v = file.find("tokenizer.ggml.token_type")) {
    const Value::Array* a = v->array();
    if (a == nullptr || a->ints.size() != n) {
      return make_error("{}: tokenizer.ggml.token_type should be {} integers, not {}", file.name(),
                        n, v->to_string(2));
    }
    spec.types.reserve(n);
    for (int64_t t : a->ints) spec.types.push_back(to_token_type(t));
  }
  if (spec.kind == TokenizerKind::Bpe) {
    MOON_ASSIGN_OR_RETURN(spec.merges, read_strings(file, "tokenizer.ggml.merges", true));
  }
  if (const Value* v = file.find("tokenizer.ggml.pre")) {
    const std::optional<std::string_view> pre = v->as_string();
    if (!pre) {
      return make_error("{}: tokenizer.ggml.pre should be a string, not {}", file.name(),
                        v->to_string());
    }
    spec.pre = *pre;
  }
  if (const Value* v = file.find("general.name")) spec.model_name = v->as_string().value_or("");

  // llama.cpp's defaults for SentencePiece vocabularies, which older files rely on.
  if (spec.kind == TokenizerKind::Spm) {
    spec.unk = 0;
    spec.bos = n > 1 ? 1 : kNoToken;
    spec.eos = n > 2 ? 2 : kNoToken;
  }
  const std::pair<const char*, TokenId*> ids[] = {
      {"tokenizer.ggml.bos_token_id", &spec.bos},
      {"tokenizer.ggml.eos_token_id", &spec.eos},
      {"tokenizer.ggml.unknown_token_id", &spec.unk},
      {"tokenizer.ggml.eot_token_id", &spec.eot},
      {"tokenizer.ggml.eom_token_id", &spec.eom},
      {"tokenizer.ggml.padding_token_id", &spec.pad},
  };
  for (const auto& [key, target] : ids) {
    if (std::optional<TokenId> id = read_id(file, key, n)) *target = *id;
  }

  MOON_ASSIGN_OR_RETURN(spec.add_bos, read_bool(file, "tokenizer.ggml.add_bos_token"));
  MOON_ASSIGN_OR_RETURN(spec.add_eos, read_bool(file, "tokenizer.ggml.add_eos_token"));
  MOON_ASSIGN_OR_RETURN(spec.add_space_prefix, read_bool(file, "tokenizer.ggml.add_space_prefix"));
  return spec;
}

}  // namespace moon
