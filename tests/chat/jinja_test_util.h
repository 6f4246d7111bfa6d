// Shared helpers for the Jinja interpreter tests.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "chat/chat_template.h"

namespace moon::test {

// Parses and renders `source` with `vars` (an object) and no messages; the text or the error
// message prefixed with "ERROR: ".
inline std::string render(const std::string& source,
                          const nlohmann::ordered_json& vars = nlohmann::ordered_json::object()) {
  auto parsed = ChatTemplate::parse(source);
  if (!parsed.ok()) return "ERROR: " + parsed.error().message;
  nlohmann::ordered_json messages =
      vars.contains("messages") ? vars["messages"] : nlohmann::ordered_json::array();
  auto rendered = parsed->render_ordered(messages, false, vars);
  if (!rendered.ok()) return "ERROR: " + rendered.error().message;
  return rendered.value();
}

}  // namespace moon::test
