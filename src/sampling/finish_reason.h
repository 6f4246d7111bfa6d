// Why a sequence stopped, shared by the stop checker (which decides stop and length) and
// the engine (which also aborts).
#pragma once

#include <string_view>

namespace moon {

enum class FinishReason { kNone, kStop, kLength, kAbort };

// "stop", "length", "abort" (or "" while running), as in OpenAI's finish_reason.
std::string_view finish_reason_name(FinishReason reason);

}  // namespace moon
