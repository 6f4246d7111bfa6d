#include "util/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

namespace moon {

ProgressLine::ProgressLine(std::string label, uint64_t total, std::FILE* out)
    : ProgressLine(std::move(label), total, out, out != nullptr && ::isatty(::fileno(out)) == 1) {}

ProgressLine::ProgressLine(std::string label, uint64_t total, std::FILE* out, bool interactive)
    : label_(std::move(label)),
      total_(total),
      out_(out),
      interactive_(interactive && out != nullptr),
      start_(std::chrono::steady_clock::now()) {}

void ProgressLine::draw(int percent) {
  shown_percent_ = percent;
  fmt::print(out_, "\r{} {:3d}% ({} / {})", label_, percent, format_bytes(done_),
             format_bytes(total_));
  std::fflush(out_);
}

void ProgressLine::update(uint64_t done) {
  done_ = std::min(std::max(done_, done), total_);
  if (!interactive_) return;
  const int percent = total_ == 0 ? 100 : static_cast<int>(done_ * 100 / total_);
  if (percent != shown_percent_) draw(percent);
}

double ProgressLine::finish() {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (interactive_) {
    done_ = total_;
    fmt::print(out_, "\r{} 100% ({}) in {:.1f} s\n", label_, format_bytes(total_), seconds);
    std::fflush(out_);
  }
  return seconds;
}

}  // namespace moon
