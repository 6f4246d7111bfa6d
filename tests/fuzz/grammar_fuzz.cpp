// libFuzzer target for the grammar engine. The first byte picks what the text (up to the
// first NUL) is: GBNF, a regular expression, or a JSON schema; the bytes after the NUL are
// then fed to the compiled automaton one at a time. Invariants, beyond not crashing:
//   - what regex_to_gbnf and json_schema_to_gbnf make always parses as GBNF;
//   - at every step the token mask allows a byte exactly when advancing by it is not dead.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "grammar/gbnf.h"
#include "grammar/grammar_automaton.h"
#include "grammar/json_schema.h"
#include "grammar/regex.h"

namespace {

std::shared_ptr<const moon::grammar::TokenTrie> byte_vocab() {
  static const auto vocab = [] {
    std::vector<std::string> pieces;
    for (int b = 0; b < 256; ++b) pieces.emplace_back(1, static_cast<char>(b));
    pieces.emplace_back("");  // 256: the end
    return std::make_shared<const moon::grammar::TokenTrie>(pieces, std::vector<bool>{},
                                                            std::vector<int32_t>{256});
  }();
  return vocab;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moon::grammar;
  if (size < 1) return 0;
  const std::string_view all(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t nul = all.find('\0');
  const std::string_view text = all.substr(0, nul);
  const std::string_view walk = nul == std::string_view::npos ? "" : all.substr(nul + 1);
  // What a conversion makes must parse, unless it is too ambiguous to match in bounded time
  // (a faithful conversion of `(a|){9090}` is, and is refused with a message).
  const auto parses_or_is_too_ambiguous = [](const std::string& g) {
    auto parsed = parse_gbnf(g);
    return parsed.ok() || parsed.error().message.find("too ambiguous") != std::string::npos;
  };
  std::string gbnf;
  switch (data[0] % 3) {
    case 0:
      gbnf = std::string(text);
      break;
    case 1: {
      auto r = regex_to_gbnf(text, data[0] & 4 ? RegexContext::kJsonString : RegexContext::kPlain);
      if (!r) return 0;
      gbnf = "root ::= " + *r + "\n";
      if (!parses_or_is_too_ambiguous(gbnf)) std::abort();  // a conversion made bad GBNF
      break;
    }
    default: {
      nlohmann::ordered_json schema;
      try {
        schema = nlohmann::ordered_json::parse(text);
      } catch (const std::exception&) {
        return 0;
      }
      auto r = json_schema_to_gbnf(schema, {.compact_whitespace = (data[0] & 4) != 0});
      if (!r) return 0;
      gbnf = *r;
      if (!parses_or_is_too_ambiguous(gbnf)) std::abort();
      break;
    }
  }
  auto grammar = parse_gbnf(gbnf);
  if (!grammar) return 0;
  GrammarAutomaton a(std::move(*grammar), byte_vocab());
  int32_t s = a.start();
  for (size_t i = 0; i < walk.size() && i < 256 && s != GrammarAutomaton::kDead; ++i) {
    const std::vector<uint64_t> bits = a.allowed_tokens(s);
    const auto b = static_cast<uint8_t>(walk[i]);
    const bool allowed = (bits[b >> 6] >> (b & 63)) & 1;
    const char c = static_cast<char>(b);
    const int32_t next = a.advance(s, std::string_view(&c, 1));
    if (allowed != (next != GrammarAutomaton::kDead)) std::abort();  // mask and walk disagree
    s = next;
  }
  return 0;
}
