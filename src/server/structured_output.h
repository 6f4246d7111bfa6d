// Structured output as the APIs spell it, turned into one grammar for the sampler:
//   OpenAI:    response_format {"type": "json_object"} or {"type": "json_schema",
//              "json_schema": {"schema": ...}};
//   vLLM:      guided_json, guided_regex, guided_choice, guided_grammar, and the newer
//              structured_outputs {json, regex, choice, grammar, json_object};
//   llama.cpp: grammar (GBNF) and json_schema;
//   TGI:       parameters.grammar {"type": "json" | "regex", "value": ...}.
// A request names at most one. The schema is read from the body with its keys in the order
// written, since properties are generated in that order.
//
// Compiled grammars are kept by their GBNF text (a few of them, least recently used out), so
// the clients that send one schema with every request share one automaton and its cached
// masks.
#pragma once

#include <list>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>

#include "grammar/grammar_automaton.h"
#include "server/api_error.h"
#include "tokenizer/tokenizer.h"

namespace moon::server {

// Whether the body names any structured-output field (so it is worth reading in order).
bool mentions_structured_output(const nlohmann::json& body);

struct GrammarSpec {
  std::string gbnf;
  std::string field;  // the request field it came from, for errors
};

// The grammar `body` (an OpenAI or vLLM request) asks for, or nullopt when it asks for
// none; an error names the field.
std::optional<ApiError> structured_output_gbnf(const nlohmann::ordered_json& body,
                                               std::optional<GrammarSpec>& spec);
// The same for a TGI request's `parameters`.
std::optional<ApiError> tgi_grammar_gbnf(const nlohmann::ordered_json& parameters,
                                         std::optional<GrammarSpec>& spec);

class GrammarCache {
 public:
  explicit GrammarCache(const Tokenizer& tokenizer, size_t capacity = 16);

  // The automaton for `spec` over this vocabulary; a grammar error names the field.
  std::variant<std::shared_ptr<grammar::GrammarAutomaton>, ApiError> get(const GrammarSpec& spec);

 private:
  const Tokenizer& tokenizer_;
  std::shared_ptr<const grammar::TokenTrie> vocab_;  // built on first use
  size_t capacity_;
  std::list<std::pair<std::string, std::shared_ptr<grammar::GrammarAutomaton>>> lru_;
  std::unordered_map<std::string_view, decltype(lru_)::iterator> index_;
};

}  // namespace moon::server
