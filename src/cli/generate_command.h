// `moon generate`: load a model, run one or many prompts through the engine together,
// print text or JSON.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/engine_options.h"
#include "cli/sampling_options.h"

namespace moon {

struct GenerateOptions {
  std::vector<std::string> prompts;
  std::string prompts_file;  // one JSON string per line
  SamplingOptions sampling;
  std::string output_format = "text";  // text | json
  EngineOptions engine;
};

// Registers the subcommand and its flags on `app`; returns it so main can tell which ran.
CLI::App* add_generate_command(CLI::App& app, GenerateOptions& options);

// Runs generation; returns the process exit code (errors are printed to stderr).
int run_generate(const GenerateOptions& options);

}  // namespace moon
