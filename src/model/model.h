// A loaded Llama model: the GGUF file (kept mapped: the weights point into it), its
// hyperparameters and its checked weight views.
#pragma once

#include <memory>
#include <string>

#include "gguf/gguf_file.h"
#include "model/hparams.h"
#include "model/weights.h"
#include "util/result.h"

namespace moon {

struct Model {
  std::unique_ptr<gguf::GgufFile> file;
  ModelHparams hparams;
  ModelWeights weights;
};

// `spec` is a GGUF path or "builtin:<name>" (see builtin_model.h); an empty spec means the
// built-in default.
Result<std::unique_ptr<Model>> load_model(const std::string& spec);

// Builds the model from an already parsed file.
Result<std::unique_ptr<Model>> make_model(std::unique_ptr<gguf::GgufFile> file);

}  // namespace moon
