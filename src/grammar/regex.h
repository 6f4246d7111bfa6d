// Regular expressions (the common ECMAScript/PCRE subset that JSON Schema's `pattern` and
// vLLM's `guided_regex` use) as GBNF expressions. The whole text must match: `^` and `$` at
// the ends are accepted and change nothing. Groups, alternation, character classes with
// ranges and \d \w \s (and their negations), `.`, and the quantifiers * + ? {m} {m,} {m,n}
// (lazy and possessive marks ignored). Backreferences, lookaround and anchors inside the
// pattern are refused by name.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "grammar/grammar.h"
#include "util/result.h"

namespace moon::grammar {

enum class RegexContext {
  kPlain,       // the text itself
  kJsonString,  // the inside of a JSON string: `"`, `\` and control characters escaped
};

Result<std::string> regex_to_gbnf(std::string_view pattern,
                                  RegexContext context = RegexContext::kPlain);

// A GBNF character class for `ranges` (negated: their complement).
std::string gbnf_class(const std::vector<CodepointRange>& ranges, bool negated);

}  // namespace moon::grammar
