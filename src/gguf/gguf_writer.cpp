#include "gguf/gguf_writer.h"

#include <cstring>
#include <fstream>

#include "gguf/gguf_file.h"

namespace moon::gguf {
namespace {

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}

void put_string(std::vector<uint8_t>& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

template <typename T>
std::vector<uint8_t> array_payload(ValueType element_type, const std::vector<T>& values) {
  std::vector<uint8_t> out;
  put<uint32_t>(out, static_cast<uint32_t>(element_type));
  put<uint64_t>(out, values.size());
  for (const T& v : values) {
    if constexpr (std::is_same_v<T, std::string>) {
      put_string(out, v);
    } else {
      put<T>(out, v);
    }
  }
  return out;
}

template <typename T>
std::vector<uint8_t> scalar_payload(T v) {
  std::vector<uint8_t> out;
  put<T>(out, v);
  return out;
}

}  // namespace

void GgufWriter::set_alignment(uint32_t alignment) {
  alignment_ = alignment;
  if (alignment != kDefaultAlignment) add_uint32("general.alignment", alignment);
}

void GgufWriter::add_raw(const std::string& key, ValueType type, std::vector<uint8_t> payload) {
  metadata_.push_back({key, {type, std::move(payload)}});
}

void GgufWriter::add_uint32(const std::string& key, uint32_t v) {
  add_raw(key, ValueType::UInt32, scalar_payload(v));
}
void GgufWriter::add_int32(const std::string& key, int32_t v) {
  add_raw(key, ValueType::Int32, scalar_payload(v));
}
void GgufWriter::add_uint64(const std::string& key, uint64_t v) {
  add_raw(key, ValueType::UInt64, scalar_payload(v));
}
void GgufWriter::add_float32(const std::string& key, float v) {
  add_raw(key, ValueType::Float32, scalar_payload(v));
}
void GgufWriter::add_bool(const std::string& key, bool v) {
  add_raw(key, ValueType::Bool, scalar_payload<uint8_t>(v ? 1 : 0));
}
void GgufWriter::add_string(const std::string& key, const std::string& v) {
  std::vector<uint8_t> payload;
  put_string(payload, v);
  add_raw(key, ValueType::String, std::move(payload));
}
void GgufWriter::add_string_array(const std::string& key, const std::vector<std::string>& v) {
  add_raw(key, ValueType::Array, array_payload(ValueType::String, v));
}
void GgufWriter::add_float32_array(const std::string& key, const std::vector<float>& v) {
  add_raw(key, ValueType::Array, array_payload(ValueType::Float32, v));
}
void GgufWriter::add_int32_array(const std::string& key, const std::vector<int32_t>& v) {
  add_raw(key, ValueType::Array, array_payload(ValueType::Int32, v));
}

Status GgufWriter::add_tensor(const std::string& name, const std::vector<uint64_t>& ne, DType type,
                              std::vector<uint8_t> data) {
  if (ne.empty() || ne.size() > kMaxDims) {
    return make_error("tensor '{}': {} dimensions", name, ne.size());
  }
  const DTypeTraits& traits = dtype_traits(type);
  uint64_t n = 1;
  for (uint64_t d : ne) n *= d;
  if (ne[0] % traits.block_size != 0) {
    return make_error("tensor '{}': row of {} is not a multiple of the {} block size {}", name,
                      ne[0], traits.name, traits.block_size);
  }
  const uint64_t expected = n / traits.block_size * traits.block_bytes;
  if (data.size() != expected) {
    return make_error("tensor '{}': {} bytes of data, expected {}", name, data.size(), expected);
  }
  tensors_.push_back({name, ne, type, std::move(data)});
  return Status::success();
}

std::vector<uint8_t> GgufWriter::serialize() const {
  std::vector<uint8_t> out;
  put<uint32_t>(out, kMagic);
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, metadata_.size());
  for (const auto& [key, typed] : metadata_) {
    put_string(out, key);
    put<uint32_t>(out, static_cast<uint32_t>(typed.first));
    out.insert(out.end(), typed.second.begin(), typed.second.end());
  }
  auto align_up = [this](uint64_t x) { return (x + alignment_ - 1) / alignment_ * alignment_; };
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const Tensor& t : tensors_) {
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) put<uint64_t>(out, d);
    put<uint32_t>(out, static_cast<uint32_t>(t.type));
    put<uint64_t>(out, offset);
    offsets.push_back(offset);
    offset = align_up(offset + t.data.size());
  }
  out.resize(align_up(out.size()), 0);
  const size_t data_start = out.size();
  for (size_t i = 0; i < tensors_.size(); ++i) {
    out.resize(data_start + offsets[i], 0);
    out.insert(out.end(), tensors_[i].data.begin(), tensors_[i].data.end());
  }
  return out;
}

Status GgufWriter::write_file(const std::string& path) const {
  std::vector<uint8_t> bytes = serialize();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return make_error("cannot create '{}': {}", path, std::strerror(errno));
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) return make_error("cannot write '{}': {}", path, std::strerror(errno));
  return Status::success();
}

}  // namespace moon::gguf
