// Pre-tokenization for byte-level BPE: the regular expressions that cut text into words before
// merges run, as named by tokenizer.ggml.pre. Unicode classes (\p{L}, \p{N}, \p{P}, \s) come
// from PCRE2 in UTF + UCP mode.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace moon {

// What a tokenizer.ggml.pre name stands for.
struct BpePreset {
  // Applied in order: the first to the whole text, each later one to every piece the previous
  // produced. Text between matches is kept as pieces of its own (Hugging Face's "Isolated").
  std::vector<std::string> patterns;
  // A word that is itself a token is emitted whole, without merges (Llama-3's ignore_merges).
  bool ignore_merges = false;
  // Whether BOS is added when the file does not say (tokenizer.ggml.add_bos_token absent).
  bool add_bos_default = false;
};

// The preset for `pre`; an error naming the supported names when it is unknown. "default"
// and an absent name (empty) mean GPT-2's pattern, the latter with a warning.
Result<BpePreset> bpe_preset_for(std::string_view pre);

class PreTokenizer {
 public:
  static Result<PreTokenizer> create(const std::vector<std::string>& patterns);
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Appends the pieces of `text` (views into it, in order, covering it exactly) to `pieces`.
  // Safe to call from several threads at once. Invalid UTF-8 never matches a pattern, so it
  // ends up in pieces of its own.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

 private:
  struct Regex;
  PreTokenizer() = default;
  std::vector<std::unique_ptr<Regex>> regexes_;
};

}  // namespace moon
