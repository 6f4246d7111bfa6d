// The `moon` command: one binary, one subcommand per job.
#include <CLI/CLI.hpp>

#include "cli/bench_command.h"
#include "cli/generate_command.h"
#include "cli/quantize_command.h"
#include "cli/serve_command.h"
#include "util/logging.h"
#include "util/version.h"

int main(int argc, char** argv) {
  CLI::App app{"moon: a Llama-family inference engine"};
  app.set_version_flag("--version", std::string("moon ") + moon::kVersion);
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  moon::GenerateOptions generate;
  CLI::App* generate_cmd = moon::add_generate_command(app, generate);
  moon::QuantizeOptions quantize;
  CLI::App* quantize_cmd = moon::add_quantize_command(app, quantize);
  moon::ServeOptions serve;
  CLI::App* serve_cmd = moon::add_serve_command(app, serve);
  moon::BenchOptions bench;
  CLI::App* bench_cmd = moon::add_bench_command(app, bench);

  CLI11_PARSE(app, argc, argv);
  moon::init_logging(log_level);
  if (generate_cmd->parsed()) return moon::run_generate(generate);
  if (quantize_cmd->parsed()) return moon::run_quantize(quantize);
  if (serve_cmd->parsed()) return moon::run_serve(serve);
  if (bench_cmd->parsed()) return moon::run_bench(bench);
  return 2;
}
