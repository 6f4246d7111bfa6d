// A progress line for long work (loading a model's weights): on a terminal it redraws one
// line in place ("loading weights  42% (2.9 / 6.9 GiB)"); elsewhere (a log file, CI) it stays
// quiet until the end, so logs get one line instead of a hundred.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "util/format_bytes.h"  // IWYU pragma: export

namespace moon {

class ProgressLine {
 public:
  // `total` in bytes; `out` is usually stderr. `interactive` defaults to whether `out` is a
  // terminal.
  ProgressLine(std::string label, uint64_t total, std::FILE* out = stderr);
  ProgressLine(std::string label, uint64_t total, std::FILE* out, bool interactive);

  // Records progress (monotonic, at most total); redraws when the percentage changes.
  void update(uint64_t done);
  // Ends the line: "<label> 100% (X GiB) in Y s" on a terminal; nothing elsewhere (the
  // caller's log line says it). Returns the seconds since construction.
  double finish();

 private:
  void draw(int percent);

  std::string label_;
  uint64_t total_;
  std::FILE* out_;
  bool interactive_;
  uint64_t done_ = 0;
  int shown_percent_ = -1;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace moon
