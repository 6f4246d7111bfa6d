// A GGUF file (versions 2 and 3), opened read-only: metadata, tensor directory and the
// tensor data used in place (memory-mapped, never copied).
//
// Every field is validated before use: a truncated, malformed or hostile file yields one
// Error naming what is wrong, never a crash or a read past the end. Model-level checks
// (required tensors, shapes against hyperparameters) live in src/model, since a GGUF
// file may legitimately hold only a vocabulary.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gguf/gguf_value.h"
#include "tensor/dtype.h"
#include "util/result.h"

namespace moon::gguf {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr int kMaxDims = 4;

struct TensorInfo {
  std::string name;
  int n_dims = 0;
  // ne[0] is the innermost (contiguous) dimension, as GGUF stores it; unused dims are 1.
  std::array<uint64_t, kMaxDims> ne = {1, 1, 1, 1};
  DType type = DType::F32;
  uint64_t offset = 0;      // from the start of the data section
  uint64_t n_elements = 0;  // product of ne
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapped file; valid while the GgufFile lives

  uint64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
};

struct ReadLimits {
  uint64_t max_string_bytes = 64ull << 20;    // one metadata string
  uint64_t max_array_elements = 64ull << 20;  // one metadata array
  uint64_t max_tensors = 1ull << 20;
  uint64_t max_kv_pairs = 1ull << 20;
  int max_array_nesting = 4;
  // What all metadata takes once decoded (array elements widen, e.g. uint8 to int64), so a
  // crafted file cannot make the reader allocate many times its own size. Real files,
  // vocabularies of 256K tokens included, need a few tens of MiB.
  uint64_t max_metadata_bytes = 512ull << 20;
};

class GgufFile {
 public:
  // Maps `path` and parses it.
  static Result<std::unique_ptr<GgufFile>> open(const std::string& path,
                                                const ReadLimits& limits = {});
  // Parses bytes already in memory; the GgufFile takes ownership. `name` appears in errors.
  static Result<std::unique_ptr<GgufFile>> from_bytes(std::vector<uint8_t> bytes, std::string name,
                                                      const ReadLimits& limits = {});
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t file_size() const { return size_; }

  // Metadata, in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return metadata_; }
  const Value* find(std::string_view key) const;

  // Typed metadata access with errors that name the key and what was expected.
  Result<uint64_t> get_uint(std::string_view key) const;
  Result<int64_t> get_int(std::string_view key) const;
  Result<double> get_float(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string_view> get_string(std::string_view key) const;
  // With a fallback when the key is absent (a present key of the wrong type is still an error).
  Result<uint64_t> get_uint_or(std::string_view key, uint64_t fallback) const;
  Result<double> get_float_or(std::string_view key, double fallback) const;
  Result<bool> get_bool_or(std::string_view key, bool fallback) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

  // Copies the tensor data of a mapped file into anonymous memory backed by transparent huge
  // pages where the kernel has them, repoints every TensorInfo::data there and unmaps the
  // file's data pages. Streaming weights from 4 KiB file pages leaves the hardware
  // prefetchers stopping at every page (measured: 5% of a memory-bound decode step).
  // Offsets within a page are kept, so every tensor stays as aligned as it was. Reports
  // (bytes done, bytes total) as it copies. Call it before taking views of the data; a file
  // from from_bytes is already in memory and stays as it is. Fails (the file stays mapped
  // and usable) when the memory cannot be had.
  Status load_tensor_data(const std::function<void(uint64_t done, uint64_t total)>& progress);
  bool tensor_data_copied() const { return copy_ != nullptr; }
  // Gives back the memory of the mapped file's whole pages inside [data, data + bytes)
  // (they are read again from the file if touched later): for tensors whose contents were
  // copied elsewhere. Does nothing for data that is not mapped from the file.
  void drop_pages(const void* data, size_t bytes) const;

 private:
  GgufFile() = default;
  Status parse(const ReadLimits& limits);

  std::string name_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  void* mapping_ = nullptr;   // from mmap, or null
  size_t mapping_bytes_ = 0;  // what is still mapped from mapping_ on
  void* copy_ = nullptr;      // load_tensor_data's anonymous memory, or null
  size_t copy_bytes_ = 0;
  std::vector<uint8_t> owned_;  // from from_bytes
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::unordered_map<std::string_view, size_t> metadata_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace moon::gguf
