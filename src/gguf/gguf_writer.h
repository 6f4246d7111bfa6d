// Serializes a GGUF (version 3) file: metadata, tensor directory, aligned data section.
// Used to build the built-in model in memory and by `moon` tools that write models; tests
// use it to produce well-formed files they then break on purpose.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/gguf_value.h"
#include "tensor/dtype.h"
#include "util/result.h"

namespace moon::gguf {

class GgufWriter {
 public:
  void set_alignment(uint32_t alignment);  // also written as general.alignment when not 32

  void add_uint32(const std::string& key, uint32_t v);
  void add_int32(const std::string& key, int32_t v);
  void add_uint64(const std::string& key, uint64_t v);
  void add_float32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_string(const std::string& key, const std::string& v);
  void add_string_array(const std::string& key, const std::vector<std::string>& v);
  void add_float32_array(const std::string& key, const std::vector<float>& v);
  void add_int32_array(const std::string& key, const std::vector<int32_t>& v);

  // `ne` innermost first, as GGUF stores it; `data` must be exactly the tensor's byte size.
  Status add_tensor(const std::string& name, const std::vector<uint64_t>& ne, DType type,
                    std::vector<uint8_t> data);

  std::vector<uint8_t> serialize() const;
  Status write_file(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;
    DType type;
    std::vector<uint8_t> data;
  };
  void add_raw(const std::string& key, ValueType type, std::vector<uint8_t> payload);

  uint32_t alignment_ = 32;
  std::vector<std::pair<std::string, std::pair<ValueType, std::vector<uint8_t>>>> metadata_;
  std::vector<Tensor> tensors_;
};

}  // namespace moon::gguf
