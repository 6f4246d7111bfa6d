#include "util/progress.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace moon {
namespace {

// Everything written to a temporary FILE*.
class Captured {
 public:
  Captured() : f_(std::tmpfile()) {}
  ~Captured() { std::fclose(f_); }
  std::FILE* file() { return f_; }
  std::string text() {
    std::fflush(f_);
    std::rewind(f_);
    std::string out;
    for (int c; (c = std::fgetc(f_)) != EOF;) out.push_back(static_cast<char>(c));
    return out;
  }

 private:
  std::FILE* f_;
};

TEST(FormatBytes, PicksTheLargestUnitAboveOne) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1024), "1.0 KiB");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(512ull << 20), "512.0 MiB");
  EXPECT_EQ(format_bytes(7400000000ull), "6.9 GiB");
}

TEST(ProgressLine, OnATerminalRedrawsOnlyWhenThePercentageChanges) {
  Captured out;
  ProgressLine line("loading weights", 1000, out.file(), /*interactive=*/true);
  for (uint64_t done = 0; done <= 1000; done += 5) line.update(done);
  line.update(400);  // never goes back
  line.finish();
  const std::string text = out.text();
  // 0%..100% once each, then the final line.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\r'), 101 + 1);
  EXPECT_NE(text.find("\rloading weights  42% (420 B / 1000 B)"), std::string::npos) << text;
  EXPECT_NE(text.find("\rloading weights 100% (1000 B) in "), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
}

TEST(ProgressLine, ElsewhereItStaysQuiet) {
  Captured out;
  ProgressLine line("loading weights", 1000, out.file(), /*interactive=*/false);
  line.update(500);
  EXPECT_GE(line.finish(), 0.0);
  EXPECT_EQ(out.text(), "");
}

}  // namespace
}  // namespace moon
