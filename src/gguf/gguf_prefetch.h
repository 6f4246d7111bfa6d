// Reads a mapped GGUF file's tensor data into memory ahead of use. Weights are used in place
// from the mapping, so without this the first request would stall on disk reads spread over
// its forward pass; reading them at load time puts that wait where a progress line can show
// it.
#pragma once

#include <cstdint>
#include <functional>

#include "gguf/gguf_file.h"

namespace moon::gguf {

// The bytes of tensor data: the sum of the tensors' sizes.
uint64_t tensor_data_bytes(const GgufFile& file);

// Touches every page of every tensor, in file order, reporting (bytes done, bytes total)
// as it goes. Returns tensor_data_bytes(file).
uint64_t prefetch_tensor_data(const GgufFile& file,
                              const std::function<void(uint64_t done, uint64_t total)>& progress);

}  // namespace moon::gguf
