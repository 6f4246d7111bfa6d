// libFuzzer target for both tokenizers (Llama 2's SentencePiece and Llama 3's byte-level BPE,
// from $MOON_TEST_DATA/models/vocab/): arbitrary bytes encoded (with and without special
// tokens) and arbitrary ids decoded. Decoded text is always valid UTF-8; encoding valid
// UTF-8 text and decoding it gives the text back.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "gguf/gguf_file.h"
#include "tokenizer/tokenizer.h"
#include "util/utf8.h"

namespace {

std::unique_ptr<moon::Tokenizer> load(const char* name) {
  const char* env = std::getenv("MOON_TEST_DATA");
  const std::string path =
      std::string(env ? env : "../shared") + "/models/vocab/ggml-vocab-" + name + ".gguf";
  auto file = moon::gguf::GgufFile::open(path);
  if (!file) {
    std::fprintf(stderr, "cannot open %s: %s\n", path.c_str(), file.error().message.c_str());
    std::abort();
  }
  auto tok = moon::Tokenizer::from_gguf(**file);
  if (!tok) std::abort();
  return std::move(*tok);
}

const moon::Tokenizer& tokenizer(int which) {
  static const auto spm = load("llama-spm");
  static const auto bpe = load("llama-bpe");
  return which ? *bpe : *spm;
}

bool valid_utf8(const std::string& s) {
  return moon::utf8::sanitize(s) == s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const moon::Tokenizer& tok = tokenizer(data[0] & 1);
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 2) {
    // Arbitrary ids, two bytes each.
    std::vector<moon::TokenId> ids;
    for (size_t i = 0; i + 1 < text.size(); i += 2) {
      ids.push_back(static_cast<moon::TokenId>(static_cast<uint8_t>(text[i]) |
                                               (static_cast<uint8_t>(text[i + 1]) << 8)) %
                    (tok.vocab_size() + 8));  // a few out of range too
    }
    if (!valid_utf8(tok.decode(ids, (data[0] & 4) != 0))) std::abort();
    return 0;
  }
  const auto ids = tok.encode(text, (data[0] & 4) != 0, (data[0] & 8) != 0);
  const std::string back = tok.decode(ids, /*skip_special=*/true);
  if (!valid_utf8(back)) std::abort();
  // Plain valid text (no special-token parsing, no BOS) comes back as it was.
  if (!(data[0] & 4) && !(data[0] & 8) && valid_utf8(text) &&
      tok.kind() == moon::TokenizerKind::Bpe && back != text) {
    std::abort();
  }
  return 0;
}
