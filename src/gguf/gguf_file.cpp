#include "gguf/gguf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>

namespace moon::gguf {
namespace {

// Bounds-checked little-endian cursor over the file. Every read says what it was reading,
// so a truncated file reports the field where it ended.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  template <typename T>
  Result<T> read(std::string_view what) {
    if (remaining() < sizeof(T)) {
      return make_error("file is truncated: it ends at byte {} while reading {}", size_, what);
    }
    T value;
    std::memcpy(&value, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  Result<std::string_view> read_string(std::string_view what, uint64_t max_bytes) {
    MOON_ASSIGN_OR_RETURN(uint64_t length, read<uint64_t>(what));
    if (length > remaining()) {
      return make_error("{} claims a length of {} bytes, past the end of the file (byte {})",
                        what, length, size_);
    }
    if (length > max_bytes) {
      return make_error("{} has an absurd length of {} bytes (limit {})", what, length, max_bytes);
    }
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), length);
    pos_ += length;
    return s;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

// Smallest encoding of one value of `type`, used to reject counts the file cannot hold.
uint64_t min_encoded_size(ValueType type) {
  switch (type) {
    case ValueType::UInt8:
    case ValueType::Int8:
    case ValueType::Bool: return 1;
    case ValueType::UInt16:
    case ValueType::Int16: return 2;
    case ValueType::UInt32:
    case ValueType::Int32:
    case ValueType::Float32: return 4;
    case ValueType::UInt64:
    case ValueType::Int64:
    case ValueType::Float64:
    case ValueType::String: return 8;
    case ValueType::Array: return 12;
  }
  return 1;
}

bool known_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::Float64); }

Result<Value> read_value(Cursor& cur, ValueType type, const std::string& key,
                         const ReadLimits& limits, int depth);

template <typename T>
Result<Value> read_int(Cursor& cur, ValueType type, const std::string& key) {
  MOON_ASSIGN_OR_RETURN(T v, cur.read<T>("the value of key '" + key + "'"));
  return Value::make_int(type, static_cast<int64_t>(v));
}

Result<Value> read_array(Cursor& cur, const std::string& key, const ReadLimits& limits,
                         int depth) {
  if (depth >= limits.max_array_nesting) {
    return make_error("metadata key '{}' nests arrays more than {} deep", key,
                      limits.max_array_nesting);
  }
  MOON_ASSIGN_OR_RETURN(uint32_t raw_type, cur.read<uint32_t>("an array type of key '" + key + "'"));
  if (!known_value_type(raw_type)) {
    return make_error("metadata key '{}' is an array of unknown value type {}", key, raw_type);
  }
  auto element_type = static_cast<ValueType>(raw_type);
  MOON_ASSIGN_OR_RETURN(uint64_t count, cur.read<uint64_t>("the array length of key '" + key + "'"));
  if (count > limits.max_array_elements) {
    return make_error("metadata key '{}' has an absurd array length of {} (limit {})", key, count,
                      limits.max_array_elements);
  }
  if (count > cur.remaining() / min_encoded_size(element_type)) {
    return make_error("metadata key '{}' claims {} array elements, more than the {} bytes left in the file can hold",
                      key, count, cur.remaining());
  }
  Value::Array array;
  array.element_type = element_type;
  for (uint64_t i = 0; i < count; ++i) {
    MOON_ASSIGN_OR_RETURN(Value item, read_value(cur, element_type, key, limits, depth + 1));
    switch (element_type) {
      case ValueType::String: array.strings.push_back(*item.as_string()); break;
      case ValueType::Float32:
      case ValueType::Float64: array.floats.push_back(*item.as_float()); break;
      case ValueType::UInt64: array.uints.push_back(*item.as_uint()); break;
      case ValueType::Bool: array.ints.push_back(*item.as_bool() ? 1 : 0); break;
      case ValueType::Array: array.arrays.push_back(std::move(item)); break;
      default: array.ints.push_back(*item.as_int()); break;
    }
  }
  return Value::make_array(std::move(array));
}

Result<Value> read_value(Cursor& cur, ValueType type, const std::string& key,
                         const ReadLimits& limits, int depth) {
  const std::string what = "the value of key '" + key + "'";
  switch (type) {
    case ValueType::UInt8: return read_int<uint8_t>(cur, type, key);
    case ValueType::Int8: return read_int<int8_t>(cur, type, key);
    case ValueType::UInt16: return read_int<uint16_t>(cur, type, key);
    case ValueType::Int16: return read_int<int16_t>(cur, type, key);
    case ValueType::UInt32: return read_int<uint32_t>(cur, type, key);
    case ValueType::Int32: return read_int<int32_t>(cur, type, key);
    case ValueType::Int64: return read_int<int64_t>(cur, type, key);
    case ValueType::UInt64: {
      MOON_ASSIGN_OR_RETURN(uint64_t v, cur.read<uint64_t>(what));
      return Value::make_uint64(v);
    }
    case ValueType::Float32: {
      MOON_ASSIGN_OR_RETURN(float v, cur.read<float>(what));
      return Value::make_float(type, v);
    }
    case ValueType::Float64: {
      MOON_ASSIGN_OR_RETURN(double v, cur.read<double>(what));
      return Value::make_float(type, v);
    }
    case ValueType::Bool: {
      MOON_ASSIGN_OR_RETURN(uint8_t v, cur.read<uint8_t>(what));
      if (v > 1) return make_error("metadata key '{}' holds a bool of value {}", key, v);
      return Value::make_bool(v != 0);
    }
    case ValueType::String: {
      MOON_ASSIGN_OR_RETURN(std::string_view s, cur.read_string(what, limits.max_string_bytes));
      return Value::make_string(s);
    }
    case ValueType::Array: return read_array(cur, key, limits, depth);
  }
  return make_error("metadata key '{}' has unknown value type {}", key, static_cast<uint32_t>(type));
}

// Multiplies dims, failing on overflow of 2^63 (sizes must stay representable as int64).
bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
  if (p > static_cast<unsigned __int128>(INT64_MAX)) return false;
  *out = static_cast<uint64_t>(p);
  return true;
}

}  // namespace

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path,
                                                 const ReadLimits& limits) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("cannot open '{}': {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return make_error("cannot stat '{}': {}", path, std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error("'{}' is not a regular file", path);
  }
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->name_ = path;
  file->size_ = static_cast<uint64_t>(st.st_size);
  if (file->size_ > 0) {
    void* map = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return make_error("cannot map '{}': {}", path, std::strerror(err));
    }
    file->mapping_ = map;
    file->base_ = static_cast<const uint8_t*>(map);
  }
  ::close(fd);
  MOON_TRY(file->parse(limits));
  return file;
}

Result<std::unique_ptr<GgufFile>> GgufFile::from_bytes(std::vector<uint8_t> bytes,
                                                       std::string name,
                                                       const ReadLimits& limits) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->name_ = std::move(name);
  file->owned_ = std::move(bytes);
  file->base_ = file->owned_.data();
  file->size_ = file->owned_.size();
  MOON_TRY(file->parse(limits));
  return file;
}

GgufFile::~GgufFile() {
  if (mapping_) ::munmap(mapping_, size_);
}

Status GgufFile::parse(const ReadLimits& limits) {
  auto fail = [this](const Error& e) { return make_error("{}: {}", name_, e.message); };
  Cursor cur(base_, size_);

  auto magic = cur.read<uint32_t>("the magic number");
  if (!magic.ok()) return fail(make_error("not a GGUF file (shorter than its 4-byte magic)"));
  if (*magic != kMagic) {
    return fail(make_error("not a GGUF file (bad magic 0x{:08x}, expected \"GGUF\")", *magic));
  }
  auto version = cur.read<uint32_t>("the version");
  if (!version.ok()) return fail(version.error());
  if (*version != 2 && *version != 3) {
    return fail(make_error("unsupported GGUF version {} (moon reads versions 2 and 3)", *version));
  }
  version_ = *version;

  auto n_tensors = cur.read<uint64_t>("the tensor count");
  if (!n_tensors.ok()) return fail(n_tensors.error());
  auto n_kv = cur.read<uint64_t>("the metadata key/value count");
  if (!n_kv.ok()) return fail(n_kv.error());
  // A key/value pair takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at
  // least 8 + 4 + 8 + 4 + 8.
  if (*n_kv > limits.max_kv_pairs || *n_kv > cur.remaining() / 13) {
    return fail(make_error("absurd metadata key/value count {} for a file of {} bytes", *n_kv, size_));
  }
  if (*n_tensors > limits.max_tensors || *n_tensors > cur.remaining() / 32) {
    return fail(make_error("absurd tensor count {} for a file of {} bytes", *n_tensors, size_));
  }

  std::unordered_set<std::string_view> seen_keys;
  metadata_.reserve(*n_kv);
  for (uint64_t i = 0; i < *n_kv; ++i) {
    auto key = cur.read_string(fmt::format("the name of metadata key #{}", i), limits.max_string_bytes);
    if (!key.ok()) return fail(key.error());
    if (key->empty()) return fail(make_error("metadata key #{} has an empty name", i));
    if (!seen_keys.insert(*key).second) {
      return fail(make_error("duplicate metadata key '{}'", *key));
    }
    std::string key_str(*key);
    auto raw_type = cur.read<uint32_t>("the type of metadata key '" + key_str + "'");
    if (!raw_type.ok()) return fail(raw_type.error());
    if (!known_value_type(*raw_type)) {
      return fail(make_error("metadata key '{}' has unknown value type {}", key_str, *raw_type));
    }
    auto value = read_value(cur, static_cast<ValueType>(*raw_type), key_str, limits, 0);
    if (!value.ok()) return fail(value.error());
    metadata_.emplace_back(std::move(key_str), std::move(value).value());
  }
  for (size_t i = 0; i < metadata_.size(); ++i) metadata_index_.emplace(metadata_[i].first, i);

  if (const Value* align = find("general.alignment")) {
    auto a = align->as_uint();
    if (align->type() != ValueType::UInt32 || !a || *a == 0 || (*a & (*a - 1)) != 0) {
      return fail(make_error("general.alignment must be a power-of-two uint32, got {} ({})",
                             align->to_string(), value_type_name(align->type())));
    }
    alignment_ = *a;
  }

  std::unordered_set<std::string_view> seen_tensors;
  tensors_.reserve(*n_tensors);
  for (uint64_t i = 0; i < *n_tensors; ++i) {
    TensorInfo t;
    auto name = cur.read_string(fmt::format("the name of tensor #{}", i), limits.max_string_bytes);
    if (!name.ok()) return fail(name.error());
    if (!seen_tensors.insert(*name).second) return fail(make_error("duplicate tensor name '{}'", *name));
    t.name = std::string(*name);
    const std::string what = "tensor '" + t.name + "'";
    auto n_dims = cur.read<uint32_t>("the dimension count of " + what);
    if (!n_dims.ok()) return fail(n_dims.error());
    if (*n_dims == 0 || *n_dims > kMaxDims) {
      return fail(make_error("{} has {} dimensions (must be 1 to {})", what, *n_dims, kMaxDims));
    }
    t.n_dims = static_cast<int>(*n_dims);
    uint64_t n_elements = 1;
    for (int d = 0; d < t.n_dims; ++d) {
      auto dim = cur.read<uint64_t>(fmt::format("dimension {} of {}", d, what));
      if (!dim.ok()) return fail(dim.error());
      if (*dim == 0) return fail(make_error("{} has a zero-sized dimension {}", what, d));
      if (!checked_mul(n_elements, *dim, &n_elements)) {
        return fail(make_error("{} has an element count that overflows", what));
      }
      t.ne[d] = *dim;
    }
    t.n_elements = n_elements;
    auto raw_type = cur.read<uint32_t>("the type of " + what);
    if (!raw_type.ok()) return fail(raw_type.error());
    const DTypeTraits* traits = dtype_traits(*raw_type);
    if (!traits) return fail(make_error("{} has unknown type id {}", what, *raw_type));
    t.type = static_cast<DType>(*raw_type);
    if (t.ne[0] % traits->block_size != 0) {
      return fail(make_error("{} of type {} has a row of {} elements, not a multiple of its block size {}",
                             what, traits->name, t.ne[0], traits->block_size));
    }
    if (!checked_mul(n_elements / traits->block_size, traits->block_bytes, &t.n_bytes)) {
      return fail(make_error("{} has a byte size that overflows", what));
    }
    auto offset = cur.read<uint64_t>("the data offset of " + what);
    if (!offset.ok()) return fail(offset.error());
    t.offset = *offset;
    if (t.offset % alignment_ != 0) {
      return fail(make_error("{} has offset {}, not a multiple of the alignment {}", what, t.offset,
                             alignment_));
    }
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next aligned position after the header.
  uint64_t data_start = (cur.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (!tensors_.empty() && data_start > size_) {
    return fail(make_error("file is truncated: it ends at byte {} before its data section", size_));
  }
  const uint64_t data_size = size_ > data_start ? size_ - data_start : 0;
  std::vector<const TensorInfo*> by_offset;
  for (TensorInfo& t : tensors_) {
    if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
      return fail(make_error(
          "tensor '{}' ({} bytes at data offset {}) runs past the end of the file: "
          "the data section holds {} bytes (the file may be truncated)",
          t.name, t.n_bytes, t.offset, data_size));
    }
    t.data = base_ + data_start + t.offset;
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo* prev = by_offset[i - 1];
    if (prev->offset + prev->n_bytes > by_offset[i]->offset) {
      return fail(make_error("tensors '{}' and '{}' overlap in the data section", prev->name,
                             by_offset[i]->name));
    }
  }
  for (size_t i = 0; i < tensors_.size(); ++i) tensor_index_.emplace(tensors_[i].name, i);
  return Status::success();
}

const Value* GgufFile::find(std::string_view key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

template <typename T>
Result<T> typed(const GgufFile& f, std::string_view key, const char* expected,
                std::optional<T> (Value::*getter)() const) {
  const Value* v = f.find(key);
  if (!v) return make_error("{}: missing required metadata key '{}'", f.name(), key);
  std::optional<T> out = (v->*getter)();
  if (!out) {
    return make_error("{}: metadata key '{}' should be {} but is {} {}", f.name(), key, expected,
                      value_type_name(v->type()), v->to_string());
  }
  return *out;
}

template <typename T>
Result<T> typed_or(const GgufFile& f, std::string_view key, const char* expected,
                   std::optional<T> (Value::*getter)() const, T fallback) {
  if (!f.find(key)) return fallback;
  return typed<T>(f, key, expected, getter);
}

}  // namespace

Result<uint64_t> GgufFile::get_uint(std::string_view key) const {
  return typed<uint64_t>(*this, key, "a non-negative integer", &Value::as_uint);
}
Result<int64_t> GgufFile::get_int(std::string_view key) const {
  return typed<int64_t>(*this, key, "an integer", &Value::as_int);
}
Result<double> GgufFile::get_float(std::string_view key) const {
  return typed<double>(*this, key, "a number", &Value::as_float);
}
Result<bool> GgufFile::get_bool(std::string_view key) const {
  return typed<bool>(*this, key, "a bool", &Value::as_bool);
}
Result<std::string_view> GgufFile::get_string(std::string_view key) const {
  return typed<std::string_view>(*this, key, "a string", &Value::as_string);
}
Result<uint64_t> GgufFile::get_uint_or(std::string_view key, uint64_t fallback) const {
  return typed_or<uint64_t>(*this, key, "a non-negative integer", &Value::as_uint, fallback);
}
Result<double> GgufFile::get_float_or(std::string_view key, double fallback) const {
  return typed_or<double>(*this, key, "a number", &Value::as_float, fallback);
}
Result<bool> GgufFile::get_bool_or(std::string_view key, bool fallback) const {
  return typed_or<bool>(*this, key, "a bool", &Value::as_bool, fallback);
}

}  // namespace moon::gguf
