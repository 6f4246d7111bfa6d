// GBNF, the grammar notation of llama.cpp's server (`grammar` on /completion), read into a
// Grammar. Rules are `name ::= alternatives`, where an alternative is a sequence of
// "literals", [character classes] ([^...] negated, a-z ranges), rule names, (groups), `.`
// (any character), each optionally followed by *, +, ?, {m}, {m,} or {m,n}; `#` starts a
// comment. A rule ends at the end of its line, unless a group is open or the next line
// continues it with `|`. The grammar starts at `root`.
#pragma once

#include <string_view>

#include "grammar/grammar.h"

namespace moon::grammar {

// The grammar `text` defines; an error names the line and column of the first problem.
Result<Grammar> parse_gbnf(std::string_view text);

// `text` as a GBNF literal (quotes included), every byte outside printable ASCII escaped.
std::string gbnf_literal(std::string_view text);

}  // namespace moon::grammar
