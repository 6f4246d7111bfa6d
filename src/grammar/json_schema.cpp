#include "grammar/json_schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "grammar/gbnf.h"
#include "grammar/integer_range.h"
#include "grammar/json_primitives.h"
#include "grammar/regex.h"

namespace moon::grammar {
namespace {

using ojson = nlohmann::ordered_json;

// Keywords that describe and never constrain.
const std::set<std::string, std::less<>> kAnnotations = {
    "title",    "description", "default",          "examples",       "$schema", "$id",
    "$comment", "deprecated",  "readOnly",         "writeOnly",      "$defs",   "definitions",
    "strict",   "$anchor",     "contentMediaType", "contentEncoding"};

const std::set<std::string, std::less<>> kSupported = {"type",
                                                       "properties",
                                                       "required",
                                                       "additionalProperties",
                                                       "items",
                                                       "prefixItems",
                                                       "minItems",
                                                       "maxItems",
                                                       "enum",
                                                       "const",
                                                       "anyOf",
                                                       "oneOf",
                                                       "allOf",
                                                       "$ref",
                                                       "minLength",
                                                       "maxLength",
                                                       "pattern",
                                                       "format",
                                                       "minimum",
                                                       "maximum",
                                                       "exclusiveMinimum",
                                                       "exclusiveMaximum",
                                                       "nullable",
                                                       "propertyNames"};

class Converter {
 public:
  Converter(const ojson& root, const JsonGrammarOptions& options)
      : root_(root), options_(options) {}

  Result<std::string> run() {
    auto root = visit(root_, "#");
    if (!root) return root;
    std::string out = "root ::= " + *root + "\n";
    for (const auto& [name, body] : rules_) out += name + " ::= " + body + "\n";
    return out;
  }

 private:
  std::string use(const std::string& primitive) {
    if (!rules_.contains(primitive)) {
      const std::string& body = primitive == "ws" && options_.compact_whitespace
                                    ? kCompactWhitespace
                                    : json_primitives().at(primitive);
      rules_.emplace(primitive, body);
      // Pull in what the body mentions.
      for (const auto& [name, _] : json_primitives()) {
        if (name != primitive && body.find(name) != std::string::npos) use(name);
      }
    }
    return primitive;
  }

  std::string new_rule(const std::string& hint, std::string body) {
    std::string name;
    for (char c : hint) {
      name += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
      if (name.size() > 40) break;
    }
    name = fmt::format("s{}-{}", counter_++, name);
    rules_.emplace(name, std::move(body));
    return name;
  }

  static Error fail(const std::string& path, std::string_view what) {
    return make_error("JSON schema at '{}': {}", path, what);
  }

  Result<std::string> alternatives(const ojson& list, const std::string& path, const char* key) {
    if (!list.is_array() || list.empty())
      return fail(path, fmt::format("'{}' must be a non-empty array", key));
    std::vector<std::string> alts;
    for (size_t i = 0; i < list.size(); ++i) {
      auto a = visit(list[i], fmt::format("{}/{}/{}", path, key, i));
      if (!a) return a;
      alts.push_back(*a);
    }
    return group(alts);
  }

  Result<std::string> ref(const std::string& target, const std::string& path) {
    if (auto it = refs_.find(target); it != refs_.end()) return it->second;
    if (target.empty() || target[0] != '#') {
      return fail(path, fmt::format("only local $ref ('#...') is supported, got '{}'", target));
    }
    const ojson* node = &root_;
    if (target.size() > 1) {
      try {
        node = &root_.at(ojson::json_pointer(target.substr(1)));
      } catch (const std::exception&) {
        return fail(path, fmt::format("$ref '{}' points at nothing", target));
      }
    }
    // Named before it is visited, so recursive schemas refer to themselves.
    std::string name = fmt::format("ref{}", counter_++);
    refs_.emplace(target, name);
    auto body = visit(*node, target);
    if (!body) return body;
    rules_.emplace(name, *body);
    return name;
  }

  Result<std::string> visit(const ojson& s, const std::string& path) {
    if (++depth_ > 64) return fail(path, "nested too deeply");
    auto r = visit_inner(s, path);
    --depth_;
    return r;
  }

  Result<std::string> visit_inner(const ojson& s, const std::string& path) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) return fail(path, "the schema 'false' matches nothing");
      return use("json-value");
    }
    if (!s.is_object()) return fail(path, "a schema must be an object or a boolean");
    for (const auto& [key, _] : s.items()) {
      if (!kSupported.contains(key) && !kAnnotations.contains(key)) {
        return fail(path, fmt::format("unsupported JSON Schema keyword '{}'", key));
      }
    }
    if (s.contains("nullable") && s["nullable"] == true) {
      ojson copy = s;
      copy.erase("nullable");
      auto inner = visit(copy, path);
      if (!inner) return inner;
      return "(" + *inner + " | " + use("json-null") + ")";
    }
    if (s.contains("$ref")) {
      if (!s["$ref"].is_string()) return fail(path, "'$ref' must be a string");
      return ref(s["$ref"].get<std::string>(), path);
    }
    if (s.contains("const")) return gbnf_literal(s["const"].dump());
    if (s.contains("enum")) {
      const ojson& e = s["enum"];
      if (!e.is_array() || e.empty()) return fail(path, "'enum' must be a non-empty array");
      std::vector<std::string> alts;
      for (const ojson& v : e) alts.push_back(gbnf_literal(v.dump()));
      return group(alts);
    }
    if (s.contains("anyOf")) return alternatives(s["anyOf"], path, "anyOf");
    if (s.contains("oneOf")) return alternatives(s["oneOf"], path, "oneOf");
    if (s.contains("allOf")) {
      const ojson& a = s["allOf"];
      if (!a.is_array() || a.size() != 1) {
        return fail(path, "'allOf' is supported with exactly one schema");
      }
      return visit(a[0], path + "/allOf/0");
    }
    if (s.contains("type")) {
      const ojson& t = s["type"];
      if (t.is_array()) {
        if (t.empty()) return fail(path, "'type' must not be an empty list");
        std::vector<std::string> alts;
        for (const ojson& one : t) {
          if (!one.is_string()) return fail(path, "'type' must be a string or a list of strings");
          auto a = typed(s, one.get<std::string>(), path);
          if (!a) return a;
          alts.push_back(*a);
        }
        return group(alts);
      }
      if (!t.is_string()) return fail(path, "'type' must be a string or a list of strings");
      return typed(s, t.get<std::string>(), path);
    }
    for (const char* k : {"properties", "additionalProperties", "required"}) {
      if (s.contains(k)) return typed(s, "object", path);
    }
    for (const char* k : {"items", "prefixItems", "minItems", "maxItems"}) {
      if (s.contains(k)) return typed(s, "array", path);
    }
    for (const char* k : {"minLength", "maxLength", "pattern", "format"}) {
      if (s.contains(k)) return typed(s, "string", path);
    }
    for (const char* k : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
      if (s.contains(k)) return typed(s, "number", path);
    }
    return use("json-value");
  }

  Result<int64_t> count(const ojson& s, const char* key, const std::string& path, int64_t dflt) {
    if (!s.contains(key)) return dflt;
    const ojson& v = s[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 10000) {
      return fail(path, fmt::format("'{}' must be an integer in [0, 10000]", key));
    }
    return v.get<int64_t>();
  }

  Result<std::string> typed(const ojson& s, const std::string& type, const std::string& path) {
    if (type == "string") return string_schema(s, path);
    if (type == "integer") return integer_schema(s, path);
    if (type == "number") return number_schema(s, path);
    if (type == "boolean") return use("json-boolean");
    if (type == "null") return use("json-null");
    if (type == "object") return object_schema(s, path);
    if (type == "array") return array_schema(s, path);
    return fail(path, fmt::format("unknown type '{}'", type));
  }

  Result<std::string> string_schema(const ojson& s, const std::string& path) {
    const bool lengths = s.contains("minLength") || s.contains("maxLength");
    if (s.contains("format")) {
      if (!s["format"].is_string()) return fail(path, "'format' must be a string");
      const std::string f = s["format"].get<std::string>();
      const bool known = f == "date" || f == "time" || f == "date-time" || f == "uuid" ||
                         f == "email" || f == "ipv4";
      if (!known) return fail(path, fmt::format("unsupported string format '{}'", f));
      if (lengths) return fail(path, "'format' together with minLength/maxLength is not supported");
      // Schema writers such as zod send a pattern with the format that spells it out: the
      // pattern when it converts (it is the narrower), else the format, whose grammar keeps
      // to what such patterns accept.
      if (s.contains("pattern") && s["pattern"].is_string()) {
        auto body = regex_to_gbnf(s["pattern"].get<std::string>(), RegexContext::kJsonString);
        if (body) return new_rule(path, "\"\\\"\" " + *body + " \"\\\"\"");
      }
      return use("fmt-" + f);
    }
    if (s.contains("pattern")) {
      if (!s["pattern"].is_string()) return fail(path, "'pattern' must be a string");
      if (lengths)
        return fail(path, "'pattern' together with minLength/maxLength is not supported");
      auto body = regex_to_gbnf(s["pattern"].get<std::string>(), RegexContext::kJsonString);
      if (!body) return fail(path, "'pattern': " + body.error().message);
      return new_rule(path, "\"\\\"\" " + *body + " \"\\\"\"");
    }
    if (lengths) {
      auto lo = count(s, "minLength", path, 0);
      if (!lo) return lo.error();
      auto hi = count(s, "maxLength", path, -1);
      if (!hi) return hi.error();
      if (*hi >= 0 && *hi < *lo) return fail(path, "'maxLength' is below 'minLength'");
      use("json-char");
      const std::string rep = *hi < 0 ? fmt::format("json-char{{{},}}", *lo)
                                      : fmt::format("json-char{{{},{}}}", *lo, *hi);
      return new_rule(path, "\"\\\"\" " + (*hi == 0 ? std::string("\"\"") : rep) + " \"\\\"\"");
    }
    return use("json-string");
  }

  // A bound as an integer: inclusive, rounded inward.
  Result<std::optional<int64_t>> bound(const ojson& s, const char* key, bool lower, bool exclusive,
                                       const std::string& path) {
    if (!s.contains(key)) return std::optional<int64_t>();
    const ojson& v = s[key];
    if (v.is_boolean()) {
      return fail(path, fmt::format("a boolean '{}' (draft 4) is not supported", key));
    }
    if (!v.is_number()) return fail(path, fmt::format("'{}' must be a number", key));
    double d = v.get<double>();
    if (!std::isfinite(d)) return fail(path, fmt::format("'{}' is out of range", key));
    // Integers stop at 16 digits anyway; zod's safe-integer bounds (2^53 - 1) are within.
    d = std::clamp(d, -static_cast<double>(kMaxUint), static_cast<double>(kMaxUint));
    d = lower ? std::ceil(exclusive && d == std::floor(d) ? d + 1 : d)
              : std::floor(exclusive && d == std::floor(d) ? d - 1 : d);
    return std::optional<int64_t>(static_cast<int64_t>(d));
  }

  Result<std::string> integer_schema(const ojson& s, const std::string& path) {
    std::optional<int64_t> lo, hi;
    for (auto [key, lower, exclusive] :
         {std::tuple{"minimum", true, false}, std::tuple{"exclusiveMinimum", true, true},
          std::tuple{"maximum", false, false}, std::tuple{"exclusiveMaximum", false, true}}) {
      auto b = bound(s, key, lower, exclusive, path);
      if (!b) return b.error();
      if (!*b) continue;
      if (lower)
        lo = lo ? std::max(*lo, **b) : **b;
      else
        hi = hi ? std::min(*hi, **b) : **b;
    }
    if (!lo && !hi) return use("json-int");
    if (lo && hi && *lo > *hi) return fail(path, "the integer bounds leave no value");
    std::vector<std::string> alts;
    // Negative values: "-" and a magnitude in [max(1, -hi), -lo].
    if (!lo || *lo < 0) {
      const uint64_t mag_lo = hi && *hi < 0 ? static_cast<uint64_t>(-*hi) : 1;
      const uint64_t mag_hi = lo ? static_cast<uint64_t>(-*lo) : kMaxUint;
      if (mag_lo <= mag_hi) alts.push_back("\"-\" " + uint_range(mag_lo, mag_hi));
    }
    if (!hi || *hi >= 0) {
      const uint64_t a = lo && *lo > 0 ? static_cast<uint64_t>(*lo) : 0;
      const uint64_t b = hi ? static_cast<uint64_t>(*hi) : kMaxUint;
      if (a <= b) alts.push_back(uint_range(a, b));
    }
    return new_rule(path, fmt::format("{}", fmt::join(alts, " | ")));
  }

  Result<std::string> number_schema(const ojson& s, const std::string& path) {
    const bool any = s.contains("minimum") || s.contains("maximum") ||
                     s.contains("exclusiveMinimum") || s.contains("exclusiveMaximum");
    if (!any) return use("json-number");
    const auto zero = [&](const char* key) {
      return s[key].is_number() && s[key].get<double>() == 0.0;
    };
    const bool non_negative = s.contains("minimum") && zero("minimum");
    const bool positive = s.contains("exclusiveMinimum") && zero("exclusiveMinimum");
    if (s.contains("maximum") || s.contains("exclusiveMaximum") ||
        (s.contains("minimum") && !non_negative) || (s.contains("exclusiveMinimum") && !positive)) {
      return fail(path,
                  "bounds on a 'number' are supported only as minimum 0 or exclusiveMinimum 0 "
                  "(use 'integer' for ranges)");
    }
    use("json-uint");
    use("json-frac-exp");
    if (!positive) return std::string("(json-uint json-frac-exp)");
    // Above zero: a non-zero integer part, or "0." and a fraction that is not all zeros.
    return new_rule(
        path + "-positive",
        R"([1-9] [0-9]{0,15} json-frac-exp | "0." [0-9]{0,15} [1-9] ([eE] [-+]? [0-9]{1,2})?)");
  }

  Result<std::string> object_schema(const ojson& s, const std::string& path) {
    use("ws");
    struct Item {
      std::string expr;
      bool required;
    };
    std::vector<Item> items;
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) return fail(path, "'required' must be an array of strings");
      for (const ojson& r : s["required"]) {
        if (!r.is_string()) return fail(path, "'required' must be an array of strings");
        required.insert(r.get<std::string>());
      }
    }
    std::set<std::string> declared;
    if (s.contains("properties")) {
      if (!s["properties"].is_object()) return fail(path, "'properties' must be an object");
      for (const auto& [name, sub] : s["properties"].items()) {
        auto v = visit(sub, path + "/properties/" + name);
        if (!v) return v;
        items.push_back({gbnf_literal(ojson(name).dump()) + " ws \":\" ws " + *v + " ws",
                         required.contains(name)});
        declared.insert(name);
      }
    }
    // Required but not described: any value (JSON Schema's reading), unless nothing
    // undeclared is allowed at all.
    const bool closed = s.contains("additionalProperties") && s["additionalProperties"] == false;
    for (const std::string& r : required) {
      if (declared.contains(r)) continue;
      if (closed) {
        return fail(path, fmt::format("required property '{}' is not in 'properties', and "
                                      "'additionalProperties' is false",
                                      r));
      }
      items.push_back(
          {gbnf_literal(ojson(r).dump()) + " ws \":\" ws " + use("json-value") + " ws", true});
      declared.insert(r);
    }
    if (s.contains("propertyNames")) {
      // Keys are strings anyway; anything narrower is not supported.
      const ojson& pn = s["propertyNames"];
      bool trivial = pn.is_boolean() ? pn.get<bool>() : pn.is_object();
      if (pn.is_object()) {
        for (const auto& [k, v] : pn.items()) {
          if (!(k == "type" && v == "string") && !kAnnotations.contains(k)) trivial = false;
        }
      }
      if (!trivial)
        return fail(path, "'propertyNames' is supported only as {\"type\": \"string\"}");
    }
    // Extra properties: only when the schema says what they look like (or says true).
    std::optional<std::string> extra_value;
    if (s.contains("additionalProperties")) {
      const ojson& a = s["additionalProperties"];
      if (a.is_object() || (a.is_boolean() && a.get<bool>())) {
        auto v = visit(a, path + "/additionalProperties");
        if (!v) return v;
        extra_value = *v;
      } else if (!a.is_boolean()) {
        return fail(path, "'additionalProperties' must be a boolean or a schema");
      }
    } else if (!s.contains("properties")) {
      extra_value = use("json-value");  // {"type": "object"}: any object
    }
    if (extra_value) {
      use("json-string");
      const std::string kv =
          new_rule(path + "-kv", "json-string ws \":\" ws " + *extra_value + " ws");
      items.push_back({kv + " (\",\" ws " + kv + ")*", false});
    }
    if (items.empty()) return std::string("\"{\" ws \"}\"");
    // C_i: items i.. each after a comma; R_i: items i.., the first without one.
    std::string c_next, r_next;  // "" is the empty sequence
    for (size_t i = items.size(); i-- > 0;) {
      const Item& it = items[i];
      const std::string tail = c_next.empty() ? "" : " " + c_next;
      std::string c_body =
          it.required ? "\",\" ws " + it.expr + tail : "(\",\" ws " + it.expr + ")?" + tail;
      std::string r_body = it.expr + tail;
      if (!it.required) r_body += " | " + (r_next.empty() ? std::string("\"\"") : r_next);
      const std::string c = new_rule(path + "-c", c_body);
      const std::string r = new_rule(path + "-r", r_body);
      c_next = c;
      r_next = r;
    }
    return "\"{\" ws " + r_next + " \"}\"";
  }

  Result<std::string> array_schema(const ojson& s, const std::string& path) {
    use("ws");
    auto lo = count(s, "minItems", path, 0);
    if (!lo) return lo.error();
    auto hi = count(s, "maxItems", path, -1);
    if (!hi) return hi.error();
    if (*hi >= 0 && *hi < *lo) return fail(path, "'maxItems' is below 'minItems'");
    std::vector<std::string> prefix;
    if (s.contains("prefixItems")) {
      const ojson& p = s["prefixItems"];
      if (!p.is_array()) return fail(path, "'prefixItems' must be an array");
      for (size_t i = 0; i < p.size(); ++i) {
        auto v = visit(p[i], fmt::format("{}/prefixItems/{}", path, i));
        if (!v) return v;
        prefix.push_back(*v + " ws");
      }
    }
    std::optional<std::string> item;
    if (s.contains("items")) {
      const ojson& it = s["items"];
      if (!(it.is_boolean() && !it.get<bool>())) {
        auto v = visit(it, path + "/items");
        if (!v) return v;
        item = *v + " ws";
      }
    } else if (prefix.empty()) {
      item = use("json-value") + " ws";
    }
    if (!prefix.empty()) {
      // The tuple, then (with a schema for the rest) more items up to maxItems.
      const auto n = static_cast<int64_t>(prefix.size());
      if (*hi >= 0 && *hi < n) return fail(path, "'maxItems' is below the number of 'prefixItems'");
      std::string body = prefix[0];
      for (size_t i = 1; i < prefix.size(); ++i) body += " \",\" ws " + prefix[i];
      if (item) {
        const int64_t more_lo = std::max<int64_t>(0, *lo - n);
        body += *hi < 0 ? fmt::format(" (\",\" ws {}){{{},}}", *item, more_lo)
                        : fmt::format(" (\",\" ws {}){{{},{}}}", *item, more_lo, *hi - n);
      } else if (*lo > n) {
        return fail(path, "'minItems' exceeds the tuple that 'items': false allows");
      }
      return new_rule(path, "\"[\" ws " + body + " \"]\"");
    }
    if (!item || *hi == 0) return std::string("\"[\" ws \"]\"");
    const int64_t rest_lo = std::max<int64_t>(0, *lo - 1);
    const std::string rest = *hi < 0
                                 ? fmt::format("(\",\" ws {}){{{},}}", *item, rest_lo)
                                 : fmt::format("(\",\" ws {}){{{},{}}}", *item, rest_lo, *hi - 1);
    const std::string body = *item + " " + rest;
    return new_rule(path,
                    *lo == 0 ? "\"[\" ws (" + body + ")? \"]\"" : "\"[\" ws " + body + " \"]\"");
  }

  const ojson& root_;
  JsonGrammarOptions options_;
  std::map<std::string, std::string> rules_;
  std::map<std::string, std::string> refs_;
  int counter_ = 0;
  int depth_ = 0;
};

}  // namespace

Result<std::string> json_schema_to_gbnf(const nlohmann::ordered_json& schema,
                                        const JsonGrammarOptions& options) {
  return Converter(schema, options).run();
}

std::string json_object_gbnf() {
  std::string out = "root ::= json-object\n";
  for (const auto& [name, body] : json_primitives()) {
    if (name.rfind("fmt-", 0) != 0) out += name + " ::= " + body + "\n";
  }
  return out;
}

std::string choice_gbnf(const std::vector<std::string>& choices) {
  std::string out = "root ::= ";
  for (size_t i = 0; i < choices.size(); ++i) out += (i ? " | " : "") + gbnf_literal(choices[i]);
  return out + "\n";
}

}  // namespace moon::grammar
