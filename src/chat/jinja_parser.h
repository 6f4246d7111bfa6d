// Recursive-descent parser from tokens to the syntax tree, following Jinja's operator
// precedence (filters and tests bind tighter than arithmetic, `not` looser than comparisons).
#pragma once

#include <memory>
#include <string_view>

#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"

namespace moon::jinja {

// Throws TemplateError ("template syntax error at line L, column C: ...") on bad input.
std::shared_ptr<const Program> parse_template(std::string_view source,
                                              const LexerOptions& options = {});

}  // namespace moon::jinja
