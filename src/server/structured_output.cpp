#include "server/structured_output.h"

#include <fmt/format.h>

#include "grammar/gbnf.h"
#include "grammar/json_schema.h"
#include "grammar/regex.h"
#include "grammar/tokenizer_vocab.h"

namespace moon::server {
namespace {

using ojson = nlohmann::ordered_json;

constexpr size_t kMaxChoices = 4096;

std::optional<ApiError> from_schema(const ojson& schema, const std::string& field,
                                    std::optional<GrammarSpec>& spec) {
  const ojson* s = &schema;
  ojson parsed;
  if (schema.is_string()) {  // vLLM takes the schema as JSON text too
    try {
      parsed = ojson::parse(schema.get<std::string>());
    } catch (const std::exception&) {
      return invalid_request(fmt::format("'{}' is a string but not a JSON schema", field), field);
    }
    s = &parsed;
  }
  if (!s->is_object() && !s->is_boolean()) {
    return invalid_request(fmt::format("'{}' must be a JSON schema (an object)", field), field);
  }
  auto gbnf = grammar::json_schema_to_gbnf(*s);
  if (!gbnf) return invalid_request(fmt::format("'{}': {}", field, gbnf.error().message), field);
  spec = GrammarSpec{std::move(*gbnf), field};
  return std::nullopt;
}

std::optional<ApiError> from_regex(const ojson& v, const std::string& field,
                                   std::optional<GrammarSpec>& spec) {
  if (!v.is_string()) return invalid_request(fmt::format("'{}' must be a string", field), field);
  auto body = grammar::regex_to_gbnf(v.get<std::string>());
  if (!body) return invalid_request(fmt::format("'{}': {}", field, body.error().message), field);
  spec = GrammarSpec{"root ::= " + *body + "\n", field};
  return std::nullopt;
}

std::optional<ApiError> from_choice(const ojson& v, const std::string& field,
                                    std::optional<GrammarSpec>& spec) {
  if (!v.is_array() || v.empty() || v.size() > kMaxChoices) {
    return invalid_request(
        fmt::format("'{}' must be a non-empty list of at most {} strings", field, kMaxChoices),
        field);
  }
  std::vector<std::string> choices;
  for (const ojson& c : v) {
    if (!c.is_string() || c.get_ref<const std::string&>().empty()) {
      return invalid_request(fmt::format("'{}' must be a list of non-empty strings", field), field);
    }
    choices.push_back(c.get<std::string>());
  }
  spec = GrammarSpec{grammar::choice_gbnf(choices), field};
  return std::nullopt;
}

std::optional<ApiError> from_gbnf(const ojson& v, const std::string& field,
                                  std::optional<GrammarSpec>& spec) {
  if (!v.is_string()) {
    return invalid_request(fmt::format("'{}' must be a string (a GBNF grammar)", field), field);
  }
  spec = GrammarSpec{v.get<std::string>(), field};
  return std::nullopt;
}

std::optional<ApiError> from_response_format(const ojson& rf, std::optional<GrammarSpec>& spec) {
  if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string()) {
    return invalid_request("'response_format' must be an object with a string 'type'",
                           "response_format");
  }
  const std::string type = rf["type"].get<std::string>();
  if (type == "text") return std::nullopt;
  if (type == "json_object") {
    spec = GrammarSpec{grammar::json_object_gbnf(), "response_format"};
    return std::nullopt;
  }
  if (type == "json_schema") {
    auto js = rf.find("json_schema");
    if (js == rf.end() || !js->is_object()) {
      return invalid_request("'response_format' of type 'json_schema' needs a 'json_schema' object",
                             "response_format");
    }
    auto schema = js->find("schema");
    if (schema == js->end() || schema->is_null()) {
      return invalid_request("'response_format.json_schema' needs a 'schema'", "response_format");
    }
    return from_schema(*schema, "response_format", spec);
  }
  return invalid_request(
      fmt::format("'response_format' type '{}' is not supported (text, json_object, json_schema)",
                  type),
      "response_format");
}

std::optional<ApiError> from_structured_outputs(const ojson& so, std::optional<GrammarSpec>& spec) {
  const std::string field = "structured_outputs";
  if (!so.is_object()) return invalid_request("'structured_outputs' must be an object", field);
  int named = 0;
  std::optional<ApiError> err;
  for (const auto& [key, v] : so.items()) {
    if (v.is_null()) continue;
    const std::string sub = field + "." + key;
    if (key == "json") {
      err = from_schema(v, sub, spec);
    } else if (key == "regex") {
      err = from_regex(v, sub, spec);
    } else if (key == "choice") {
      err = from_choice(v, sub, spec);
    } else if (key == "grammar") {
      err = from_gbnf(v, sub, spec);
    } else if (key == "json_object") {
      if (!v.is_boolean()) return invalid_request(fmt::format("'{}' must be a boolean", sub), sub);
      if (!v.get<bool>()) continue;
      spec = GrammarSpec{grammar::json_object_gbnf(), sub};
    } else if (key == "structural_tag") {
      return invalid_request("'structured_outputs.structural_tag' is not supported", sub);
    } else {
      continue;  // backend and whitespace options: this engine has one backend
    }
    if (err) return err;
    ++named;
  }
  if (named > 1) {
    return invalid_request(
        "'structured_outputs' may name only one of json, regex, choice, grammar, json_object",
        field);
  }
  return std::nullopt;
}

}  // namespace

bool mentions_structured_output(const nlohmann::json& body) {
  if (!body.is_object()) return false;
  for (const char* key : {"response_format", "guided_json", "guided_regex", "guided_choice",
                          "guided_grammar", "structured_outputs", "grammar", "json_schema"}) {
    auto it = body.find(key);
    if (it != body.end() && !it->is_null()) return true;
  }
  if (auto p = body.find("parameters"); p != body.end() && p->is_object()) {  // TGI
    auto g = p->find("grammar");
    return g != p->end() && !g->is_null();
  }
  return false;
}

std::optional<ApiError> structured_output_gbnf(const ojson& body,
                                               std::optional<GrammarSpec>& spec) {
  spec.reset();
  if (!body.is_object()) return std::nullopt;
  using Parse =
      std::optional<ApiError> (*)(const ojson&, const std::string&, std::optional<GrammarSpec>&);
  struct Field {
    const char* name;
    Parse parse;
  };
  static const Field kFields[] = {
      {"guided_json", from_schema},   {"json_schema", from_schema},  {"guided_regex", from_regex},
      {"guided_choice", from_choice}, {"guided_grammar", from_gbnf}, {"grammar", from_gbnf},
  };
  std::vector<std::string> named;
  for (const auto& [key, v] : body.items()) {
    if (v.is_null()) continue;
    std::optional<GrammarSpec> one;
    std::optional<ApiError> err;
    if (key == "response_format") {
      err = from_response_format(v, one);
    } else if (key == "structured_outputs") {
      err = from_structured_outputs(v, one);
    } else {
      for (const Field& f : kFields) {
        if (key == f.name) err = f.parse(v, key, one);
      }
    }
    if (err) return err;
    if (one) {
      named.push_back(key);
      spec = std::move(one);
    }
  }
  if (named.size() > 1) {
    spec.reset();
    return invalid_request(
        fmt::format("a request may ask for one kind of structured output; this one names {}",
                    fmt::join(named, ", ")),
        named[1]);
  }
  return std::nullopt;
}

std::optional<ApiError> tgi_grammar_gbnf(const ojson& parameters,
                                         std::optional<GrammarSpec>& spec) {
  spec.reset();
  auto g = parameters.find("grammar");
  if (g == parameters.end() || g->is_null()) return std::nullopt;
  const std::string field = "grammar";
  if (!g->is_object() || !g->contains("type") || !(*g)["type"].is_string() ||
      !g->contains("value")) {
    return invalid_request("'grammar' must be an object with a string 'type' and a 'value'", field);
  }
  const std::string type = (*g)["type"].get<std::string>();
  if (type == "json" || type == "json_object") return from_schema((*g)["value"], field, spec);
  if (type == "regex") return from_regex((*g)["value"], field, spec);
  return invalid_request(fmt::format("'grammar' type '{}' is not supported (json, regex)", type),
                         field);
}

GrammarCache::GrammarCache(const Tokenizer& tokenizer, size_t capacity)
    : tokenizer_(tokenizer), capacity_(std::max<size_t>(1, capacity)) {}

std::variant<std::shared_ptr<grammar::GrammarAutomaton>, ApiError> GrammarCache::get(
    const GrammarSpec& spec) {
  if (auto it = index_.find(spec.gbnf); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
  }
  auto g = grammar::parse_gbnf(spec.gbnf);
  if (!g) {
    return invalid_request(
        fmt::format("'{}': the grammar is invalid: {}", spec.field, g.error().message), spec.field);
  }
  if (!vocab_) vocab_ = grammar::token_trie_for(tokenizer_);
  auto automaton = std::make_shared<grammar::GrammarAutomaton>(std::move(*g), vocab_);
  if (automaton->start() == grammar::GrammarAutomaton::kDead) {
    return invalid_request(fmt::format("'{}': the grammar matches nothing", spec.field),
                           spec.field);
  }
  lru_.emplace_front(spec.gbnf, automaton);
  index_.emplace(lru_.front().first, lru_.begin());
  if (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return automaton;
}

}  // namespace moon::server
