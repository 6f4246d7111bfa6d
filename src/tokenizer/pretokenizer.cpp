#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <spdlog/spdlog.h>

#include <array>

#include "util/utf8.h"

namespace moon {
namespace {

// GPT-2's pattern (encoder.py), also the one Hugging Face's ByteLevel pre-tokenizer uses.
constexpr std::string_view kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Llama-3's tokenizer.json pattern: digits in groups of up to three.
constexpr std::string_view kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2's: as Llama-3's but every digit alone.
constexpr std::string_view kQwen2 = R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N})"
                                    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct NamedPreset {
  std::array<std::string_view, 8> names;
  std::array<std::string_view, 5> patterns;
  bool ignore_merges;
  bool add_bos_default;
};

// Names as llama.cpp's convert_hf_to_gguf.py writes them into tokenizer.ggml.pre.
const NamedPreset kPresets[] = {
    {{"gpt-2", "default", "phi-2", "mpt", "olmo", "jais", "roberta-bpe"}, {kGpt2}, false, false},
    {{"llama-bpe", "llama3", "llama-v3", "falcon3"}, {kLlama3}, true, true},
    {{"dbrx", "smaug-bpe"}, {kLlama3}, false, false},
    {{"qwen2", "stablelm2", "megrez"}, {kQwen2}, false, false},
    // deepseek-coder's tokenizer.json: a Sequence of Isolated splits, then ByteLevel without
    // its own regex.
    {{"deepseek-coder"},
     {R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)",
      R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)", R"(\p{N})"},
     false,
     false},
    {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
     {R"(\p{N})", kGpt2},
     false,
     false},
};

BpePreset to_preset(const NamedPreset& p) {
  BpePreset preset;
  for (std::string_view pattern : p.patterns) {
    if (!pattern.empty()) preset.patterns.emplace_back(pattern);
  }
  preset.ignore_merges = p.ignore_merges;
  preset.add_bos_default = p.add_bos_default;
  return preset;
}

}  // namespace

Result<BpePreset> bpe_preset_for(std::string_view pre) {
  if (pre.empty()) {
    spdlog::warn(
        "tokenizer.ggml.pre is missing; splitting words with GPT-2's pattern, which "
        "may not be what this model was trained with");
    return to_preset(kPresets[0]);
  }
  std::string supported;
  for (const NamedPreset& p : kPresets) {
    for (std::string_view name : p.names) {
      if (name.empty()) continue;
      if (name == pre) return to_preset(p);
      supported += supported.empty() ? "" : ", ";
      supported += name;
    }
  }
  return make_error("unsupported tokenizer.ggml.pre '{}' (supported: {})", pre, supported);
}

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }

  // Appends the pieces of `subject`: each match, and each stretch between matches.
  void split(std::string_view subject, pcre2_match_data* md,
             std::vector<std::string_view>& out) const {
    const auto* data = reinterpret_cast<PCRE2_SPTR>(subject.data());
    size_t offset = 0;
    size_t last = 0;
    while (offset < subject.size()) {
      int rc = pcre2_match(code, data, subject.size(), offset, 0, md, nullptr);
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        // A long backtracking run outgrew JIT's small stack; the interpreter keeps its
        // frames on the heap.
        rc = pcre2_match(code, data, subject.size(), offset, PCRE2_NO_JIT, md, nullptr);
      }
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        spdlog::error("pre-tokenizer regex failed with PCRE2 error {}; keeping the rest whole", rc);
        break;
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t start = ov[0];
      const size_t end = ov[1];
      if (end > start) {
        if (start > last) out.push_back(subject.substr(last, start - last));
        out.push_back(subject.substr(start, end - start));
        last = offset = end;
      } else {
        // None of the patterns can match empty text, but a custom one might: step over
        // one character so the loop always advances.
        const size_t n = utf8::valid_char_length(subject.substr(start));
        offset = start + (n == 0 ? 1 : n);
      }
    }
    if (last < subject.size()) out.push_back(subject.substr(last));
  }
};

Result<PreTokenizer> PreTokenizer::create(const std::vector<std::string>& patterns) {
  PreTokenizer pre;
  for (const std::string& pattern : patterns) {
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    // MATCH_INVALID_UTF: text is user input, and invalid UTF-8 must not abort the match.
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error,
                                     &error_offset, nullptr);
    if (code == nullptr) {
      std::array<PCRE2_UCHAR, 256> message{};
      pcre2_get_error_message(error, message.data(), message.size());
      return make_error("bad pre-tokenizer pattern '{}' at offset {}: {}", pattern, error_offset,
                        reinterpret_cast<const char*>(message.data()));
    }
    // JIT is an optimization only; without it (unsupported CPU) matching still works.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    auto regex = std::make_unique<Regex>();
    regex->code = code;
    pre.regexes_.push_back(std::move(regex));
  }
  return pre;
}

PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  if (text.empty()) return;
  if (regexes_.empty()) {
    pieces.push_back(text);
    return;
  }
  // One ovector pair is all we read; match data is per call so that const use is thread-safe.
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create(1, nullptr), &pcre2_match_data_free);
  if (regexes_.size() == 1) {
    regexes_[0]->split(text, md.get(), pieces);
    return;
  }
  std::vector<std::string_view> current{text};
  std::vector<std::string_view> next;
  for (const auto& regex : regexes_) {
    next.clear();
    for (std::string_view piece : current) regex->split(piece, md.get(), next);
    current.swap(next);
  }
  pieces.insert(pieces.end(), current.begin(), current.end());
}

}  // namespace moon
