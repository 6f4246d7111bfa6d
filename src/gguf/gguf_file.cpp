#include "gguf/gguf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <type_traits>
#include <unordered_set>

#include "gguf/gguf_reader.h"

namespace moon::gguf {

using namespace detail;  // NOLINT: the reading machinery of this file

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path,
                                                 const ReadLimits& limits) {
  // O_NONBLOCK: opening a FIFO (or a device) for reading would otherwise wait for a writer
  // forever; the check below refuses anything but a regular file, for which it changes
  // nothing.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
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
    file->mapping_bytes_ = file->size_;
    file->base_ = static_cast<const uint8_t*>(map);
  }
  ::close(fd);
  MOON_TRY(file->parse(limits));
  return file;
}

Result<std::unique_ptr<GgufFile>> GgufFile::from_bytes(std::vector<uint8_t> bytes, std::string name,
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
  // Only what is still mapped: the kernel may have reused the range load_tensor_data unmapped.
  if (mapping_) ::munmap(mapping_, mapping_bytes_);
  if (copy_) ::munmap(copy_, copy_bytes_);
}

void GgufFile::drop_pages(const void* data, size_t bytes) const {
  if (mapping_ == nullptr || copy_ != nullptr) return;
  constexpr uintptr_t kPage = 4096;
  const auto map_begin = reinterpret_cast<uintptr_t>(mapping_);
  const auto begin = reinterpret_cast<uintptr_t>(data);
  if (begin < map_begin || begin + bytes > map_begin + mapping_bytes_) return;
  // Whole pages only: the partial ones at either end may hold a neighbour still in use.
  const uintptr_t first = (begin + kPage - 1) / kPage * kPage;
  const uintptr_t last = (begin + bytes) / kPage * kPage;
  // The mapping is private and never written, so dropped pages read back from the file.
  if (first < last) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

Status GgufFile::load_tensor_data(
    const std::function<void(uint64_t done, uint64_t total)>& progress) {
  if (mapping_ == nullptr || copy_ != nullptr || tensors_.empty()) return Status::success();
  const uint8_t* begin = tensors_.front().data;
  const uint8_t* end = begin;
  for (const TensorInfo& t : tensors_) {
    begin = std::min(begin, t.data);
    end = std::max(end, t.data + t.n_bytes);
  }
  constexpr size_t kPage = 4096, kHugePage = size_t{2} << 20;
  const size_t bytes = static_cast<size_t>(end - begin);
  // Room to start at a huge-page boundary plus begin's offset within its 4 KiB page.
  const size_t reserve = bytes + 2 * kHugePage;
  void* raw = ::mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    return make_error("{}: cannot allocate {} bytes to hold the weights in memory: {}", name_,
                      reserve, std::strerror(errno));
  }
  const uintptr_t aligned =
      (reinterpret_cast<uintptr_t>(raw) + kHugePage - 1) / kHugePage * kHugePage;
  auto* dst = reinterpret_cast<uint8_t*>(aligned + reinterpret_cast<uintptr_t>(begin) % kPage);
  ::madvise(reinterpret_cast<void*>(aligned),
            reserve - (aligned - reinterpret_cast<uintptr_t>(raw)),
            MADV_HUGEPAGE);  // advice only: without THP the copy still works
  constexpr size_t kChunk = size_t{64} << 20;
  for (size_t done = 0; done < bytes;) {
    const size_t n = std::min(kChunk, bytes - done);
    std::memcpy(dst + done, begin + done, n);
    done += n;
    if (progress) progress(done, bytes);
  }
  ::mprotect(raw, reserve, PROT_READ);  // the weights are read-only, as the mapping was
  for (TensorInfo& t : tensors_) t.data = dst + (t.data - begin);
  // The metadata (whose strings point into the mapping) stays; the data pages go.
  const auto first_page = (reinterpret_cast<uintptr_t>(begin) + kPage - 1) / kPage * kPage;
  const auto map_end = (reinterpret_cast<uintptr_t>(mapping_) + size_ + kPage - 1) / kPage * kPage;
  if (first_page < map_end) {
    ::munmap(reinterpret_cast<void*>(first_page), map_end - first_page);
    mapping_bytes_ = first_page - reinterpret_cast<uintptr_t>(mapping_);
  }
  copy_ = raw;
  copy_bytes_ = reserve;
  return Status::success();
}

Status GgufFile::parse(const ReadLimits& limits) {
  auto fail = [this](const Error& e) { return make_error("{}: {}", name_, e.message); };
  if (size_ == 0) return fail(make_error("not a GGUF file: the file is empty (0 bytes)"));
  Cursor cur(base_, size_);

  auto magic = cur.read<uint32_t>("the magic number");
  if (!magic.ok()) {
    return fail(make_error("not a GGUF file: {} bytes, shorter than its 4-byte magic", size_));
  }
  if (*magic != kMagic) {
    return fail(make_error("not a GGUF file (bad magic 0x{:08x}, expected \"GGUF\")", *magic));
  }
  auto version = cur.read<uint32_t>("the version");
  if (!version.ok()) return fail(version.error());
  if (*version != 2 && *version != 3) {
    if (byte_swap(*version) == 2 || byte_swap(*version) == 3) {
      return fail(
          make_error("unsupported GGUF version 0x{:08x}: a big-endian GGUF file "
                     "(moon reads little-endian versions 2 and 3)",
                     *version));
    }
    return fail(make_error("unsupported GGUF version {} (moon reads versions 2 and 3)", *version));
  }
  version_ = *version;

  auto n_tensors = cur.read<uint64_t>("the tensor count");
  if (!n_tensors.ok()) return fail(n_tensors.error());
  auto n_kv = cur.read<uint64_t>("the metadata key/value count");
  if (!n_kv.ok()) return fail(n_kv.error());
  // Counts are only checked against the limits: entries are read one by one (each at least
  // 14 bytes) into vectors that grow as they go, so a count larger than the file can hold
  // ends in a "truncated" error at the exact entry where the file runs out.
  if (*n_kv > limits.max_kv_pairs) {
    return fail(
        make_error("absurd metadata key/value count {} (limit {})", *n_kv, limits.max_kv_pairs));
  }
  if (*n_tensors > limits.max_tensors) {
    return fail(make_error("absurd tensor count {} (limit {})", *n_tensors, limits.max_tensors));
  }

  constexpr uint64_t kMaxReserve = 4096;
  MetadataReader reader(cur, limits);
  std::unordered_set<std::string_view> seen_keys;
  metadata_.reserve(std::min(*n_kv, kMaxReserve));
  for (uint64_t i = 0; i < *n_kv; ++i) {
    auto key = cur.read_string([i] { return fmt::format("the name of metadata key #{}", i); },
                               limits.max_string_bytes);
    if (!key.ok()) return fail(key.error());
    if (key->empty()) return fail(make_error("metadata key #{} has an empty name", i));
    if (!seen_keys.insert(*key).second) {
      return fail(make_error("duplicate metadata key '{}'", printable(*key)));
    }
    auto charged = reader.charge(*key, sizeof(metadata_[0]) + key->size());
    if (!charged.ok()) return fail(charged.error());
    auto raw_type = cur.read<uint32_t>(
        [&] { return fmt::format("the value type of metadata key '{}'", printable(*key)); });
    if (!raw_type.ok()) return fail(raw_type.error());
    if (!known_value_type(*raw_type)) {
      return fail(
          make_error("metadata key '{}' has unknown value type {}", printable(*key), *raw_type));
    }
    auto value = reader.read(*key, static_cast<ValueType>(*raw_type));
    if (!value.ok()) return fail(value.error());
    metadata_.emplace_back(std::string(*key), std::move(value).value());
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
  tensors_.reserve(std::min(*n_tensors, kMaxReserve));
  for (uint64_t i = 0; i < *n_tensors; ++i) {
    TensorInfo t;
    auto name = cur.read_string([i] { return fmt::format("the name of tensor #{}", i); },
                                limits.max_string_bytes);
    if (!name.ok()) return fail(name.error());
    if (name->empty()) return fail(make_error("tensor #{} has an empty name", i));
    if (!seen_tensors.insert(*name).second) {
      return fail(make_error("duplicate tensor name '{}'", printable(*name)));
    }
    t.name = std::string(*name);
    const std::string what = "tensor '" + printable(t.name) + "'";
    auto n_dims = cur.read<uint32_t>("the dimension count of " + what);
    if (!n_dims.ok()) return fail(n_dims.error());
    if (*n_dims == 0 || *n_dims > kMaxDims) {
      return fail(make_error("{} has {} dimensions (must be 1 to {})", what, *n_dims, kMaxDims));
    }
    t.n_dims = static_cast<int>(*n_dims);
    uint64_t n_elements = 1;
    for (int d = 0; d < t.n_dims; ++d) {
      auto dim = cur.read<uint64_t>([&] { return fmt::format("dimension {} of {}", d, what); });
      if (!dim.ok()) return fail(dim.error());
      if (*dim == 0) return fail(make_error("{} has a zero-sized dimension {}", what, d));
      if (!checked_mul(n_elements, *dim, &n_elements)) {
        return fail(make_error("{} has an element count that overflows (dimension {} is {})", what,
                               d, *dim));
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
      return fail(
          make_error("{} of type {} has a row of {} elements, not a multiple of its block size {}",
                     what, traits->name, t.ne[0], traits->block_size));
    }
    if (!checked_mul(n_elements / traits->block_size, traits->block_bytes, &t.n_bytes)) {
      return fail(make_error("{} of type {} has a byte size that overflows ({} elements)", what,
                             traits->name, n_elements));
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
  by_offset.reserve(tensors_.size());
  for (TensorInfo& t : tensors_) {
    if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
      return fail(
          make_error("tensor '{}' ({} bytes at data offset {}) runs past the end of the file: "
                     "the data section holds {} bytes (the file is truncated or corrupt)",
                     printable(t.name), t.n_bytes, t.offset, data_size));
    }
    t.data = base_ + data_start + t.offset;
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo* prev = by_offset[i - 1];
    if (prev->offset + prev->n_bytes > by_offset[i]->offset) {
      return fail(make_error(
          "tensors '{}' ({} bytes at data offset {}) and '{}' (at data offset {}) overlap in the "
          "data section",
          printable(prev->name), prev->n_bytes, prev->offset, printable(by_offset[i]->name),
          by_offset[i]->offset));
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
