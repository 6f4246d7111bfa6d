// A loaded Llama model: the GGUF file (kept mapped: the weights point into it), its
// hyperparameters and its checked weight views.
#pragma once

#include <functional>
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

// Where a file's weights are read from (GgufFile::load_tensor_data says why it matters).
enum class WeightMemory {
  kMapped,  // used in place from the file mapping
  kCopied,  // copied into anonymous (huge-page) memory
  kAuto,    // copied when they take at most half the available memory, else mapped
};

struct LoadOptions {
  WeightMemory weights = WeightMemory::kMapped;
  // (bytes done, bytes total) while weights are copied.
  std::function<void(uint64_t, uint64_t)> progress;
};

// `spec` is a GGUF path or "builtin:<name>" (see builtin_model.h); an empty spec means the
// built-in default.
Result<std::unique_ptr<Model>> load_model(const std::string& spec, const LoadOptions& options = {});

// Builds the model from an already parsed file.
Result<std::unique_ptr<Model>> make_model(std::unique_ptr<gguf::GgufFile> file);

}  // namespace moon
