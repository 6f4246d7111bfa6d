// JSON Schema as a GBNF grammar whose sentences are exactly the JSON texts (compact or with
// bounded whitespace) that the schema accepts, for the keywords it supports:
//   type (one or a list), properties, required, additionalProperties (false, true or a
//   schema; left out, no extra properties are generated, as in OpenAI's strict mode),
//   items, prefixItems, minItems, maxItems, enum, const, anyOf, oneOf (as anyOf), allOf of
//   one schema, $ref to "#", "#/$defs/..." or "#/definitions/...", minLength, maxLength,
//   pattern, format (date, time, date-time, uuid, email, ipv4), integer minimum / maximum /
//   exclusiveMinimum / exclusiveMaximum, number minimum 0, nullable.
// Annotations (title, description, default, examples, $schema, $id, $comment, ...) are
// ignored. Any other keyword is refused by name with its location, since silently ignoring
// one would generate JSON the schema rejects.
//
// Properties come in the order the schema lists them, so pass an ordered_json when the
// order matters (it does to the model: "reasoning" before "answer").
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "util/result.h"

namespace moon::grammar {

struct JsonGrammarOptions {
  // At most one space between tokens (no newlines or indents): what models write in tool
  // calls, and what keeps an unsure model from spending its tokens on padding.
  bool compact_whitespace = false;
};

Result<std::string> json_schema_to_gbnf(const nlohmann::ordered_json& schema,
                                        const JsonGrammarOptions& options = {});

// Any JSON object (OpenAI's response_format {"type": "json_object"}).
std::string json_object_gbnf();

// Exactly one of `choices` (vLLM's guided_choice).
std::string choice_gbnf(const std::vector<std::string>& choices);

}  // namespace moon::grammar
