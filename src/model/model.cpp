#include "model/model.h"

#include "kv/memory_size.h"
#include "model/builtin_model.h"
#include "util/format_bytes.h"
#include "util/logging.h"

namespace moon {

Result<std::unique_ptr<Model>> make_model(std::unique_ptr<gguf::GgufFile> file) {
  auto model = std::make_unique<Model>();
  MOON_ASSIGN_OR_RETURN(model->hparams, read_hparams(*file));
  MOON_ASSIGN_OR_RETURN(model->weights, read_weights(*file, model->hparams));
  model->file = std::move(file);  // the views above point into its mapping, which does not move
  return model;
}

namespace {

Status place_weights(gguf::GgufFile& file, const LoadOptions& options) {
  bool copy = options.weights == WeightMemory::kCopied;
  if (options.weights == WeightMemory::kAuto) {
    uint64_t bytes = 0;
    for (const gguf::TensorInfo& t : file.tensors()) bytes += t.n_bytes;
    auto available = mem_available();
    copy = available.ok() && bytes <= *available / 2;
    if (!copy) {
      spdlog::info("using the weights from the file mapping ({} of weights; {} available)",
                   format_bytes(bytes), available.ok() ? format_bytes(*available) : "unknown");
    }
  }
  return copy ? file.load_tensor_data(options.progress) : Status::success();
}

}  // namespace

Result<std::unique_ptr<Model>> load_model(const std::string& spec, const LoadOptions& options) {
  const std::string resolved = spec.empty() ? std::string(kDefaultBuiltinModel) : spec;
  std::unique_ptr<gguf::GgufFile> file;
  if (resolved.rfind(kBuiltinPrefix, 0) == 0) {
    MOON_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes,
                          builtin_model_gguf(resolved.substr(kBuiltinPrefix.size())));
    MOON_ASSIGN_OR_RETURN(file, gguf::GgufFile::from_bytes(std::move(bytes), resolved));
  } else {
    MOON_ASSIGN_OR_RETURN(file, gguf::GgufFile::open(resolved));
    MOON_TRY(place_weights(*file, options));
  }
  return make_model(std::move(file));
}

}  // namespace moon
