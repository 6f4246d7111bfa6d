#include "cli/quantize_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "cli/quantize_recipe.h"
#include "model/model.h"
#include "tensor/convert.h"
#include "util/thread_pool.h"

namespace moon {
namespace {

Result<const FileType*> parse_target(const std::string& name) {
  if (const FileType* ft = find_file_type(name)) return ft;
  std::string names;
  for (const FileType& ft : file_types())
    names += (names.empty() ? "" : ", ") + std::string(ft.name);
  return make_error("unknown --type '{}' (supported: {})", name, names);
}

std::string shape_string(const gguf::TensorInfo& t) {
  std::string s;
  for (int d = 0; d < t.n_dims; ++d) s += (d ? " x " : "") + std::to_string(t.ne[d]);
  return s;
}

double mib(uint64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

// Rows are split across the pool: the K-quant searches cost about a microsecond per value.
Result<std::vector<uint8_t>> convert_tensor(const gguf::TensorInfo& t, DType type,
                                            ThreadPool& pool) {
  const auto cols = static_cast<int64_t>(t.ne[0]);
  const auto rows = static_cast<int64_t>(t.n_rows());
  const size_t src_row_bytes = dtype_row_bytes(t.type, static_cast<size_t>(cols));
  const size_t dst_row_bytes = dtype_row_bytes(type, static_cast<size_t>(cols));
  std::vector<uint8_t> out(static_cast<size_t>(rows) * dst_row_bytes);
  std::atomic<int64_t> bad_row{-1};  // the first row found beyond F16's range, if any
  pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = r0; r < r1; ++r) {
      dequantize_row(t.type, t.data + r * src_row_bytes, row.data(), cols);
      // F16 would turn these into infinities, silently wrecking the model.
      if (type == DType::F16 &&
          std::any_of(row.begin(), row.end(), [](float v) { return std::fabs(v) > 65504.0f; })) {
        int64_t none = -1;
        bad_row.compare_exchange_strong(none, r);
        return;
      }
      quantize_row(type, row.data(), out.data() + r * dst_row_bytes, cols);
    }
  });
  if (const int64_t r = bad_row.load(); r >= 0) {
    return make_error(
        "tensor '{}' holds a value beyond F16's range of +-65504 (row {}): use BF16 "
        "or F32",
        t.name, r);
  }
  return out;
}

// general.file_type keeps the integer type the input stored it as.
gguf::Value file_type_value(const gguf::Value& original, const FileType& target) {
  const uint32_t ftype = target.llama_ftype;
  if (original.type() == gguf::ValueType::UInt64) return gguf::Value::make_uint64(ftype);
  return gguf::Value::make_int(original.type(), ftype);
}

bool is_integer_scalar(const gguf::Value& v) {
  return !v.is_array() && v.type() != gguf::ValueType::Bool && v.as_uint().has_value();
}

// Everything that can fail because of the input is checked before the output is touched; the
// output is probed for writability before the (for a large model, long) conversion starts.
Status quantize_file(const QuantizeOptions& o, const FileType& target) {
  MOON_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, load_model(o.model));
  const gguf::GgufFile& in = *model->file;
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::equivalent(o.model, o.output, ec)) {
    return make_error("the output '{}' is the input file: write to another path", o.output);
  }

  gguf::GgufWriter writer;
  for (const auto& [key, value] : in.metadata()) {
    if (key == "general.alignment") {
      // The reader has checked it is a power-of-two uint32. set_alignment writes the key only
      // when it differs from the default; an explicit default is kept too.
      const auto alignment = static_cast<uint32_t>(in.alignment());
      writer.set_alignment(alignment);
      if (alignment == gguf::kDefaultAlignment) writer.add_uint32(key, alignment);
      continue;
    }
    if (key == "general.file_type" && is_integer_scalar(value)) {
      MOON_TRY(add_metadata_value(writer, key, file_type_value(value, target)));
      continue;
    }
    MOON_TRY(add_metadata_value(writer, key, value));
  }

  const std::vector<gguf::TensorInfo>& tensors = in.tensors();
  const ModelHparams& hp = model->hparams;
  const RecipeContext context{hp.n_layer, hp.n_head / std::max<int64_t>(1, hp.n_head_kv),
                              !model->weights.output_tied};
  std::vector<DType> types;
  for (const gguf::TensorInfo& t : tensors) {
    const DType type = recipe_tensor_type(target, t, context);
    if (type != t.type && !is_row_convertible(t.type)) {
      return make_error(
          "{}: tensor '{}' has type {}, which moon quantize cannot convert from (it reads F32, "
          "F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K to Q6_K and IQ4_XS)",
          in.name(), t.name, dtype_name(t.type));
    }
    types.push_back(type);
  }

  const bool existed = fs::exists(o.output, ec);
  {
    std::ofstream probe(o.output, std::ios::binary | std::ios::app);  // app: no truncation yet
    if (!probe) return make_error("cannot create '{}': {}", o.output, std::strerror(errno));
  }
  ThreadPool pool(o.threads > 0 ? o.threads : ThreadPool::default_num_threads());
  auto convert_and_write = [&]() -> Status {
    size_t converted = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const gguf::TensorInfo& t = tensors[i];
      std::vector<uint8_t> data;
      if (types[i] == t.type) {
        data.assign(t.data, t.data + t.n_bytes);
      } else {
        MOON_ASSIGN_OR_RETURN(data, convert_tensor(t, types[i], pool));
        ++converted;
      }
      spdlog::info("tensor {}/{}: {} [{}] {} -> {}", i + 1, tensors.size(), t.name, shape_string(t),
                   dtype_name(t.type), dtype_name(types[i]));
      MOON_TRY(writer.add_tensor(t.name,
                                 std::vector<uint64_t>(t.ne.begin(), t.ne.begin() + t.n_dims),
                                 types[i], std::move(data)));
    }
    MOON_TRY(writer.write_file(o.output));
    // A file this command cannot load back would be a bug here, not a problem with the input.
    auto reopened = gguf::GgufFile::open(o.output);
    auto reloaded = reopened.ok() ? make_model(std::move(reopened).value())
                                  : Result<std::unique_ptr<Model>>(reopened.error());
    if (!reloaded.ok()) {
      return make_error("the written file does not load: {}", reloaded.error().message);
    }
    spdlog::info("wrote '{}' ({}): {} of {} tensors converted, {:.3f} MiB -> {:.3f} MiB", o.output,
                 target.name, converted, tensors.size(), mib(in.file_size()),
                 mib((*reloaded)->file->file_size()));
    return Status::success();
  };
  Status status = convert_and_write();
  if (!status.ok() && !existed) fs::remove(o.output, ec);  // leave no half-written file behind
  return status;
}

}  // namespace

Status add_metadata_value(gguf::GgufWriter& writer, const std::string& key,
                          const gguf::Value& value) {
  using gguf::ValueType;
  switch (value.type()) {
    case ValueType::UInt32:
      writer.add_uint32(key, static_cast<uint32_t>(*value.as_uint()));
      return Status::success();
    case ValueType::Int32:
      writer.add_int32(key, static_cast<int32_t>(*value.as_int()));
      return Status::success();
    case ValueType::UInt64:
      writer.add_uint64(key, *value.as_uint());
      return Status::success();
    case ValueType::Float32:
      // Read as float, widened to double: narrowing back is exact.
      writer.add_float32(key, static_cast<float>(*value.as_float()));
      return Status::success();
    case ValueType::Bool:
      writer.add_bool(key, *value.as_bool());
      return Status::success();
    case ValueType::String:
      writer.add_string(key, std::string(*value.as_string()));
      return Status::success();
    case ValueType::Array: {
      const gguf::Value::Array& a = *value.array();
      switch (a.element_type) {
        case ValueType::String:
          writer.add_string_array(key,
                                  std::vector<std::string>(a.strings.begin(), a.strings.end()));
          return Status::success();
        case ValueType::Float32:
          writer.add_float32_array(key, std::vector<float>(a.floats.begin(), a.floats.end()));
          return Status::success();
        case ValueType::Int32:
          writer.add_int32_array(key, std::vector<int32_t>(a.ints.begin(), a.ints.end()));
          return Status::success();
        default:
          return make_error(
              "metadata key '{}' is an array of {}, which moon quantize cannot write yet "
              "(GgufWriter has no adder for it)",
              key, gguf::value_type_name(a.element_type));
      }
    }
    default:
      return make_error(
          "metadata key '{}' has type {}, which moon quantize cannot write yet (GgufWriter has "
          "no adder for it)",
          key, gguf::value_type_name(value.type()));
  }
}

CLI::App* add_quantize_command(CLI::App& app, QuantizeOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "quantize", "Rewrite a Llama GGUF with its weight matrices in another dtype");
  cmd->add_option("-m,--model", o.model, "Input GGUF model file")->required();
  cmd->add_option("-o,--output", o.output, "Output GGUF file")->required();
  std::vector<std::string> names;
  for (const FileType& ft : file_types()) names.emplace_back(ft.name);
  cmd->add_option("--type", o.type,
                  "File type, as llama-quantize names it (Q4_K_M, q5_k_s, Q8_0, F16, ...): the "
                  "K-quant mixtures give some tensors more bits, as llama.cpp's do")
      ->required()
      ->transform(CLI::IsMember(names, CLI::ignore_case));
  cmd->add_option("-t,--threads", o.threads, "Threads quantizing (default: all cores)")
      ->check(CLI::PositiveNumber);
  return cmd;
}

int run_quantize(const QuantizeOptions& o) {
  auto target = parse_target(o.type);
  if (!target.ok()) {
    spdlog::error("{}", target.error().message);
    return 1;
  }
  if (Status s = quantize_file(o, **target); !s.ok()) {
    spdlog::error("{}", s.error().message);
    return 1;
  }
  return 0;
}

}  // namespace moon
