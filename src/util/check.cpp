#include "util/check.h"

#include <cstdio>
#include <cstdlib>

namespace moon::detail {

void check_failed(const char* condition, const char* file, int line, const std::string& message) {
  // stderr directly: the logger may be the thing that is broken, and this must get out.
  if (condition) {
    std::fprintf(stderr, "moon: internal error at %s:%d: %s (check failed: %s)\n", file, line,
                 message.c_str(), condition);
  } else {
    std::fprintf(stderr, "moon: internal error at %s:%d: %s\n", file, line, message.c_str());
  }
  std::fflush(stderr);
  std::abort();
}

}  // namespace moon::detail
