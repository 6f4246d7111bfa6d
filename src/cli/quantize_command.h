// `moon quantize`: rewrite a Llama GGUF with its weight matrices in another dtype (F32, F16,
// BF16, Q8_0, Q4_0), metadata and everything else copied unchanged.
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
  std::string type;    // target dtype name: F32, F16, BF16, Q8_0 or Q4_0
};

// Registers the subcommand and its flags on `app`; returns it so main can tell which ran.
CLI::App* add_quantize_command(CLI::App& app, QuantizeOptions& options);

// Runs the conversion; returns the process exit code (errors are printed to stderr).
int run_quantize(const QuantizeOptions& options);

// The dtype `moon quantize --type target` stores tensor `t` in. Only 2-D matrices change:
// to `target` when their rows are whole blocks of it, otherwise an F32 matrix becomes F16 (what
// llama.cpp's llama-quantize does, e.g. for stories260K's 172-wide ffn_down) and any other
// stays as it is. Vectors (norms, rope_freqs) always keep their type.
DType quantized_tensor_type(const gguf::TensorInfo& t, DType target);

// llama.cpp's general.file_type number for a file whose matrices are mostly `type`.
uint32_t llama_file_type(DType type);

// Re-emits one metadata value under `key` with its exact GGUF type, so that the written bytes
// equal the ones read. Fails, naming the key, for value types GgufWriter has no adder for
// (8/16-bit and 64-bit signed integers, float64, and arrays other than of string, float32 or
// int32).
Status add_metadata_value(gguf::GgufWriter& writer, const std::string& key,
                          const gguf::Value& value);

}  // namespace moon
