// `moon serve`: load a model and serve OpenAI-compatible HTTP endpoints (vLLM's flag names).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "cli/engine_options.h"

namespace moon {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;
  std::string served_model_name;      // default: the model file's name
  std::string chat_template;          // a file, or the template itself; default: the GGUF's
  std::string allowed_origins = "*";  // CORS: comma-separated origins, "*" for any
  int64_t max_waiting = 0;            // 0: unbounded
  int64_t max_connections = 1024;     // 0: unbounded
  int64_t max_connections_per_ip = 256;
  double shutdown_timeout = 30.0;
  double idle_timeout = 60.0;
  double log_stats_interval = 10.0;
  std::string max_queued_output = "16MiB";
  bool disable_log_stats = false;
  int tensor_parallel_size = 1;  // > 1: one rank of `mpirun -np N`
  double tensor_parallel_timeout = 60.0;
  EngineOptions engine;
};

CLI::App* add_serve_command(CLI::App& app, ServeOptions& options);

// Serves until SIGINT/SIGTERM; returns the process exit code.
int run_serve(const ServeOptions& options);

}  // namespace moon
