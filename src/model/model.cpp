#include "model/model.h"

#include "model/builtin_model.h"

namespace moon {

Result<std::unique_ptr<Model>> make_model(std::unique_ptr<gguf::GgufFile> file) {
  auto model = std::make_unique<Model>();
  MOON_ASSIGN_OR_RETURN(model->hparams, read_hparams(*file));
  MOON_ASSIGN_OR_RETURN(model->weights, read_weights(*file, model->hparams));
  model->file = std::move(file);  // the views above point into its mapping, which does not move
  return model;
}

Result<std::unique_ptr<Model>> load_model(const std::string& spec) {
  const std::string resolved = spec.empty() ? std::string(kDefaultBuiltinModel) : spec;
  std::unique_ptr<gguf::GgufFile> file;
  if (resolved.rfind(kBuiltinPrefix, 0) == 0) {
    MOON_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes,
                          builtin_model_gguf(resolved.substr(kBuiltinPrefix.size())));
    MOON_ASSIGN_OR_RETURN(file, gguf::GgufFile::from_bytes(std::move(bytes), resolved));
  } else {
    MOON_ASSIGN_OR_RETURN(file, gguf::GgufFile::open(resolved));
  }
  return make_model(std::move(file));
}

}  // namespace moon
