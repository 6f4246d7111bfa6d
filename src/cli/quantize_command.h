// `moon quantize`: rewrite a Llama GGUF with its weight matrices in another file type
// (cli/quantize_recipe.h: F32, F16, BF16, the 32-element block types, the K-quant mixtures,
// IQ4_XS), metadata and everything else copied unchanged but general.file_type.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "gguf/gguf_file.h"
#include "gguf/gguf_value.h"
#include "gguf/gguf_writer.h"
#include "tensor/dtype.h"
#include "util/result.h"

namespace moon {

struct QuantizeOptions {
  std::string model;   // input GGUF path (or builtin:<name>)
  std::string output;  // output GGUF path
  std::string type;    // file type name, any case (cli/quantize_recipe.h lists them)
  int threads = 0;     // 0: all cores
};

// Registers the subcommand and its flags on `app`; returns it so main can tell which ran.
CLI::App* add_quantize_command(CLI::App& app, QuantizeOptions& options);

// Runs the conversion; returns the process exit code (errors are printed to stderr).
int run_quantize(const QuantizeOptions& options);

// Re-emits one metadata value under `key` with its exact GGUF type, so that the written bytes
// equal the ones read. Fails, naming the key, for value types GgufWriter has no adder for
// (8/16-bit and 64-bit signed integers, float64, and arrays other than of string, float32 or
// int32).
Status add_metadata_value(gguf::GgufWriter& writer, const std::string& key,
                          const gguf::Value& value);

}  // namespace moon
