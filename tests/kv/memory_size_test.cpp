#include "kv/memory_size.h"

#include <gtest/gtest.h>

#include <string>

#include "util/format_bytes.h"

namespace moon {
namespace {

constexpr uint64_t kKiB = 1024, kMiB = kKiB * 1024, kGiB = kMiB * 1024, kTiB = kGiB * 1024;

struct Good {
  const char* text;
  uint64_t bytes;
};

TEST(MemorySizeTest, ParsesSizes) {
  const Good cases[] = {
      {"123", 123},
      {"0", 0},
      {"123B", 123},
      {"123 b", 123},
      {"1024KiB", 1024 * kKiB},
      {"512MiB", 512 * kMiB},
      {"4GiB", 4 * kGiB},
      {"4gib", 4 * kGiB},
      {"4G", 4 * kGiB},
      {"4g", 4 * kGiB},
      {"2T", 2 * kTiB},
      {"1TiB", kTiB},
      {"1.5GiB", kGiB + kGiB / 2},
      {"0.5MiB", kMiB / 2},
      {".25KiB", 256},
      {"1.KiB", kKiB},
      {"1.3KiB", 1331},  // 1331.2 rounds down
      {"  8 MiB  ", 8 * kMiB},
      {"100MB", 100'000'000},
      {"2KB", 2000},
      {"1.5GB", 1'500'000'000},
      {"3TB", 3'000'000'000'000},
      {"2.0", 2},
      {"007MiB", 7 * kMiB},
      {"18446744073709551615", 18446744073709551615ull},
      {"15.99999999999999999999TiB", 16 * kTiB - 1},
  };
  for (const Good& c : cases) {
    const auto parsed = parse_memory_size(c.text);
    ASSERT_TRUE(parsed.ok()) << c.text << ": " << parsed.error().message;
    EXPECT_EQ(*parsed, c.bytes) << c.text;
  }
}

struct Bad {
  const char* text;
  const char* message_part;
};

TEST(MemorySizeTest, RejectsWithAClearMessage) {
  const Bad cases[] = {
      {"", "empty"},
      {"   ", "empty"},
      {"GiB", "does not start with a number"},
      {".GiB", "does not start with a number"},
      {"-1GiB", "negative"},
      {"+1GiB", "without a sign"},
      {"4 GX", "unknown unit 'GX'"},
      {"4 gigabytes", "unknown unit"},
      {"4GiB5", "unknown unit"},
      {"1.2.3GiB", "not a number"},
      {"1 2", "not a number"},
      {"1.5", "fraction of a byte"},
      {"1.5B", "fraction of a byte"},
      {"18446744073709551616", "too large"},
      {"99999999999999999999999", "too large"},
      {"16777216TiB", "too large"},
  };
  for (const Bad& c : cases) {
    const auto parsed = parse_memory_size(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text << " parsed as " << *parsed;
    EXPECT_NE(parsed.error().message.find(c.message_part), std::string::npos)
        << c.text << ": " << parsed.error().message;
  }
}

TEST(MemorySizeTest, FormatsForMessages) {
  EXPECT_EQ(format_bytes(123, 2), "123 B");
  EXPECT_EQ(format_bytes(2 * kMiB, 2), "2.00 MiB");
  EXPECT_EQ(format_bytes(kGiB + kGiB / 2, 2), "1.50 GiB");
  EXPECT_EQ(format_bytes(3 * kTiB, 2), "3.00 TiB");
}

TEST(MemorySizeTest, ReadsMemAvailable) {
  const std::string meminfo =
      "MemTotal:       65536000 kB\n"
      "MemFree:         1000000 kB\n"
      "MemAvailable:   32000000 kB\n"
      "Buffers:          100000 kB\n";
  const auto available = parse_mem_available(meminfo);
  ASSERT_TRUE(available.ok()) << available.error().message;
  EXPECT_EQ(*available, 32000000 * kKiB);
  EXPECT_FALSE(parse_mem_available("MemTotal: 1 kB\n").ok());
  EXPECT_FALSE(parse_mem_available("MemAvailable: lots\n").ok());
}

TEST(MemorySizeTest, DefaultBudgetIsFortyPercentCapped) {
  EXPECT_EQ(default_kv_budget_for(10 * kGiB), 4 * kGiB);
  EXPECT_EQ(default_kv_budget_for(1000), 400u);
  EXPECT_EQ(default_kv_budget_for(500 * kGiB), kMaxDefaultKvBudget);
  const auto budget = default_kv_budget();  // this machine: Linux has /proc/meminfo
  ASSERT_TRUE(budget.ok()) << budget.error().message;
  EXPECT_GT(*budget, 0u);
  EXPECT_LE(*budget, kMaxDefaultKvBudget);
}

}  // namespace
}  // namespace moon
