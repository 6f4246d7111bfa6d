// Memory sizes as users write them ("4GiB", "512MiB", "1.5GiB", "123"), and the default KV
// cache budget when the user gives none.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/result.h"

namespace moon {

// Bytes in `text`: a non-negative decimal number, optionally with a fraction, then an
// optional unit, case-insensitive, spaces allowed around it:
//   (none) or B              bytes (must then be a whole number)
//   K, KiB, M, MiB, G, GiB, T, TiB    powers of 1024
//   KB, MB, GB, TB           powers of 1000 (what the SI prefixes mean)
// A fractional result is rounded down to whole bytes. Errors name the text and the fix.
Result<uint64_t> parse_memory_size(std::string_view text);

// MemAvailable from the text of /proc/meminfo, in bytes.
Result<uint64_t> parse_mem_available(std::string_view meminfo);
// This machine's MemAvailable.
Result<uint64_t> mem_available();

// The default KV budget: 40% of the memory available (MemAvailable counts free memory plus
// page cache the kernel can reclaim, which includes the clean pages of an mmapped model), capped
// at kMaxDefaultKvBudget. 40% leaves the rest to the weights, activations and the rest of the
// machine; past the cap a CPU engine cannot use the extra context at useful speed anyway.
inline constexpr uint64_t kMaxDefaultKvBudget = uint64_t{32} << 30;
uint64_t default_kv_budget_for(uint64_t mem_available);
// default_kv_budget_for(MemAvailable of this machine), read from /proc/meminfo.
Result<uint64_t> default_kv_budget();

}  // namespace moon
