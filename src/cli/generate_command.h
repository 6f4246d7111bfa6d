// `moon generate`: load a model, tokenize a prompt, generate, print text or JSON.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace moon {

struct GenerateOptions {
  std::string model;  // GGUF path or builtin:<name>; empty for the built-in default
  std::string prompt;
  int max_tokens = 128;
  float temperature = 0.0f;
  uint64_t seed = 0;
  std::string output_format = "text";  // text | json
  int threads = 0;                     // 0: every available core
};

// Registers the subcommand and its flags on `app`; returns it so main can tell which ran.
CLI::App* add_generate_command(CLI::App& app, GenerateOptions& options);

// Runs generation; returns the process exit code (errors are printed to stderr).
int run_generate(const GenerateOptions& options);

}  // namespace moon
