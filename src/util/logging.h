// Logging goes through spdlog to stderr, so that stdout stays clean for program output
// (`moon generate --output-format json` prints only its JSON there).
#pragma once

#include <spdlog/spdlog.h>

namespace moon {

// Sets up the stderr logger at the given level ("trace" ... "off"); safe to call again.
void init_logging(const std::string& level);

}  // namespace moon
