// A loaded Llama model: the GGUF file (kept mapped: the weights point into it), its
// hyperparameters and its checked weight views.
#pragma once

#include <memory>
#include <string>

#include "gguf/gguf_file.h"
#include "model/llama_hparams.h"
#include "model/llama_weights.h"
#include "util/result.h"

namespace moon {

struct LlamaModel {
  std::unique_ptr<gguf::GgufFile> file;
  LlamaHparams hparams;
  LlamaWeights weights;
};

// `spec` is a GGUF path or "builtin:<name>" (see builtin_model.h); an empty spec means the
// built-in default.
Result<std::unique_ptr<LlamaModel>> load_llama_model(const std::string& spec);

// Builds the model from an already parsed file.
Result<std::unique_ptr<LlamaModel>> make_llama_model(std::unique_ptr<gguf::GgufFile> file);

}  // namespace moon
