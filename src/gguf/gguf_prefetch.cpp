#include "gguf/gguf_prefetch.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

namespace moon::gguf {

uint64_t tensor_data_bytes(const GgufFile& file) {
  uint64_t total = 0;
  for (const TensorInfo& t : file.tensors()) total += t.n_bytes;
  return total;
}

uint64_t prefetch_tensor_data(const GgufFile& file,
                              const std::function<void(uint64_t, uint64_t)>& progress) {
  const uint64_t total = tensor_data_bytes(file);
  const auto page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  // Reports about every 1% (and at least every 64 MiB of a huge file).
  const uint64_t report_every = std::clamp<uint64_t>(total / 100, page, 64ull << 20);
  uint64_t done = 0, next_report = report_every;
  volatile uint8_t sink = 0;  // the reads must happen
  for (const TensorInfo& t : file.tensors()) {
    if (t.n_bytes == 0 || t.data == nullptr) continue;
    // Let the kernel read ahead in large requests while the loop faults pages in order.
    const auto start = reinterpret_cast<uintptr_t>(t.data) & ~(page - 1);
    ::madvise(reinterpret_cast<void*>(start),
              reinterpret_cast<uintptr_t>(t.data) + t.n_bytes - start, MADV_WILLNEED);
    for (uint64_t off = 0; off < t.n_bytes; off += page) {
      sink = sink ^ t.data[off];
      const uint64_t now = done + std::min(off + page, t.n_bytes);
      if (progress && now >= next_report) {
        progress(now, total);
        next_report = now + report_every;
      }
    }
    done += t.n_bytes;
  }
  if (progress) progress(total, total);
  return total;
}

}  // namespace moon::gguf
