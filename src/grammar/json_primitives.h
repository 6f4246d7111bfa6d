// The JSON building blocks the schema grammars are made of (json-string, json-number, ws,
// the string formats, ...), as GBNF rule bodies by name. A rule's body names the other
// blocks it uses.
#pragma once

#include <map>
#include <string>

namespace moon::grammar {

const std::map<std::string, std::string>& json_primitives();

// The ws body when whitespace is compact (JsonGrammarOptions).
inline constexpr const char* kCompactWhitespace = R"(" "?)";

}  // namespace moon::grammar
