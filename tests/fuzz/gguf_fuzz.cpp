// libFuzzer target for the GGUF reader: any bytes must either parse into a file whose
// tensors all lie inside the buffer, or fail with one non-empty message.
//
// Built by scripts/fuzz.sh (CMake option MOON_FUZZ, clang).
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "gguf/gguf_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using moon::gguf::GgufFile;
  // Half the inputs under tight limits, chosen by the first byte, to reach the limit checks.
  moon::gguf::ReadLimits limits;
  if (size > 0 && (data[0] & 1)) {
    limits.max_string_bytes = 64;
    limits.max_array_elements = 16;
    limits.max_tensors = 8;
    limits.max_kv_pairs = 16;
    limits.max_array_nesting = 3;
    limits.max_metadata_bytes = 1 << 16;
  }
  auto file = GgufFile::from_bytes(std::vector<uint8_t>(data, data + size), "fuzz", limits);
  if (!file.ok()) {
    if (file.error().message.size() <= 6) std::abort();  // "fuzz: " and nothing else
    return 0;
  }
  uint64_t sum = 0;
  for (const auto& [key, value] : (*file)->metadata()) sum += value.to_string().size();
  for (const auto& t : (*file)->tensors()) {
    if (t.n_bytes > size) std::abort();
    for (uint64_t i = 0; i < t.n_bytes; ++i) sum += t.data[i];  // ASan checks the bounds
  }
  volatile uint64_t sink = sum;
  (void)sink;
  return 0;
}
