#include "grammar/json_primitives.h"

namespace moon::grammar {

// The JSON building blocks, each defined once when first used. Whitespace is bounded (a
// newline and up to 20 spaces or tabs of indent) so a model cannot pad forever; numbers stop
// at 16 digits and exponents at 2, so every number is finite as a double (validators such as
// ajv reject Infinity); \u escapes exclude surrogates, so every string decodes to valid
// Unicode.
const std::map<std::string, std::string>& json_primitives() {
  static const std::map<std::string, std::string> p = {
      {"ws", R"(| " " | "\n" [ \t]{0,20})"},
      {"json-hex", R"([0-9a-fA-F])"},
      {"json-u4", R"([0-9a-cA-CefEF] json-hex json-hex json-hex | [dD] [0-7] json-hex json-hex)"},
      {"json-char", R"([^"\\\x00-\x1F] | "\\" (["\\/bfnrt] | "u" json-u4))"},
      {"json-string", R"("\"" json-char* "\"")"},
      {"json-int", R"("-"? json-uint)"},
      {"json-uint", R"("0" | [1-9] [0-9]{0,15})"},
      {"json-frac-exp", R"(("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})?)"},
      {"json-number", R"(json-int json-frac-exp)"},
      {"json-boolean", R"("true" | "false")"},
      {"json-null", R"("null")"},
      {"json-value",
       R"(json-object | json-array | json-string | json-number | json-boolean | json-null)"},
      {"json-member", R"(json-string ws ":" ws json-value ws)"},
      {"json-object", R"("{" ws (json-member ("," ws json-member)*)? "}")"},
      {"json-array", R"("[" ws (json-value ws ("," ws json-value ws)*)? "]")"},
      {"fmt-date", R"("\"" fmt-date-body "\"")"},
      // Real calendar days (RFC 3339, as validators check): 31, 30 or 28 days by month, and
      // February 29 in leap years (divisible by 4, and by 400 when by 100).
      {"fmt-date-body",
       R"([0-9]{4} "-" (("0" [13578] | "1" [02]) "-" fmt-day-31 | ("0" [469] | "11") "-" fmt-day-30 | "02-" fmt-day-28) | fmt-leap-year "-02-29")"},
      {"fmt-day-31", R"("0" [1-9] | [12] [0-9] | "3" [01])"},
      {"fmt-day-30", R"("0" [1-9] | [12] [0-9] | "30")"},
      {"fmt-day-28", R"("0" [1-9] | "1" [0-9] | "2" [0-8])"},
      {"fmt-leap-year",
       R"([0-9] [0-9] ("0" [48] | [2468] [048] | [13579] [26]) | ("0" [048] | [2468] [048] | [13579] [26]) "00")"},
      {"fmt-time", R"("\"" fmt-time-body "\"")"},
      {"fmt-time-body",
       R"(([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? ("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9]))"},
      {"fmt-date-time", R"("\"" fmt-date-body "T" fmt-time-body "\"")"},
      {"fmt-uuid",
       R"("\"" json-hex{8} "-" json-hex{4} "-" json-hex{4} "-" json-hex{4} "-" json-hex{12} "\"")"},
      // Kept to what every email validator takes (zod's pattern too): no dot first, last or
      // twice in the local part, and a top-level domain of letters.
      {"fmt-email-label", R"([a-zA-Z0-9] ([a-zA-Z0-9-]{0,30} [a-zA-Z0-9])?)"},
      {"fmt-email",
       R"("\"" [a-zA-Z0-9_+-]{1,32} ("." [a-zA-Z0-9_+-]{1,32}){0,2} "@" (fmt-email-label "."){1,3} [a-zA-Z]{2,12} "\"")"},
      {"fmt-ipv4-octet", R"("25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9] [0-9] | [0-9])"},
      {"fmt-ipv4",
       R"("\"" fmt-ipv4-octet "." fmt-ipv4-octet "." fmt-ipv4-octet "." fmt-ipv4-octet "\"")"},
  };
  return p;
}

}  // namespace moon::grammar
