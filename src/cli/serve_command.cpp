#include "cli/serve_command.h"

#include <sys/resource.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "chat/chat_template.h"
#include "dist/mpi_communicator.h"
#include "dist/tensor_parallel_rank.h"
#include "engine/engine_client.h"
#include "kv/memory_size.h"
#include "model/model.h"
#include "server/http_server.h"
#include "tokenizer/tokenizer.h"
#include "util/logging.h"

namespace moon {
namespace {

// Every connection is a file descriptor; the default soft limit (often 1024) would cap the
// server far below what one I/O thread can handle.
void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

std::string default_model_name(const std::string& spec) {
  if (spec.empty()) return "builtin:tiny";
  if (spec.rfind("builtin:", 0) == 0) return spec;
  return std::filesystem::path(spec).filename().string();
}

// The template text: --chat-template names a file or is the template; else the GGUF's.
Result<std::optional<std::string>> chat_template_source(const std::string& option,
                                                        const gguf::GgufFile& file) {
  if (!option.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(option, ec)) {
      // The template itself, as vLLM takes it; text with no Jinja in it is a path that is
      // not there, which used to become a template that printed the path.
      if (option.find("{{") != std::string::npos || option.find("{%") != std::string::npos) {
        return std::optional(option);
      }
      return make_error(
          "--chat-template '{}' is neither a readable file nor a template (no '{{{{' or '{{%')",
          option);
    }
    std::ifstream in(option);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in) return make_error("cannot read --chat-template file '{}'", option);
    return std::optional(ss.str());
  }
  if (file.find("tokenizer.chat_template")) {
    MOON_ASSIGN_OR_RETURN(std::string_view text, file.get_string("tokenizer.chat_template"));
    return std::optional(std::string(text));
  }
  return std::optional<std::string>();
}

}  // namespace

CLI::App* add_serve_command(CLI::App& app, ServeOptions& o) {
  CLI::App* cmd = app.add_subcommand("serve", "Serve an OpenAI-compatible HTTP API");
  cmd->add_option("--host", o.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o.port, "Port to listen on (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--api-key", o.api_key,
                  "Require 'Authorization: Bearer KEY' (default: env MOON_API_KEY, else none)");
  cmd->add_option("--served-model-name", o.served_model_name,
                  "Model name in the API (default: the model file's name)");
  cmd->add_option("--max-waiting", o.max_waiting,
                  "Most requests waiting for a batch slot before 503 (0: no limit)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--max-connections", o.max_connections,
                  "Most open connections; more get 503 and are closed (0: no limit)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--max-connections-per-ip", o.max_connections_per_ip,
                  "Most open connections from one client address; more get 503 and are closed "
                  "(0: no limit; behind a proxy every client shares its address)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--shutdown-timeout", o.shutdown_timeout,
                  "Seconds SIGTERM waits for running requests")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cmd->add_option("--idle-timeout", o.idle_timeout,
                  "Seconds a client may take to send a whole request, sit idle between "
                  "requests, or take the next 64 KiB of an answer already written, before its "
                  "connection is closed")
      ->check(CLI::Range(0.05, 86400.0))
      ->capture_default_str();
  cmd->add_option("--max-queued-output", o.max_queued_output,
                  "Answer bytes that may wait for a client that does not read (e.g. 16MiB); past "
                  "it the connection is closed and its request aborted, freeing its KV blocks")
      ->capture_default_str();
  cmd->add_option("--log-stats-interval", o.log_stats_interval,
                  "Seconds between the stats lines (throughput, running, waiting, KV use) "
                  "logged while there is work")
      ->check(CLI::Range(0.05, 86400.0))
      ->capture_default_str();
  cmd->add_flag("--disable-log-stats", o.disable_log_stats, "Log no periodic stats line");
  cmd->add_option("--chat-template", o.chat_template,
                  "Chat template (Jinja) file, or the template itself (default: the model's "
                  "tokenizer.chat_template)");
  cmd->add_option("--allowed-origins", o.allowed_origins,
                  "Origins whose pages may call the API from a browser (CORS), comma-separated, "
                  "e.g. https://app.example.com; * for any")
      ->capture_default_str();
  cmd->add_option("--tensor-parallel-size", o.tensor_parallel_size,
                  "Split every layer over N ranks started by mpirun (mpirun --enable-recovery -np "
                  "N moon serve --tensor-parallel-size N ...): rank 0 serves HTTP, every rank "
                  "holds 1/N of the weights and KV cache")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--tensor-parallel-timeout", o.tensor_parallel_timeout,
                  "Seconds a rank waits for the others before it decides one died or hangs: "
                  "rank 0 then answers its requests with errors and the job exits non-zero")
      ->check(CLI::Range(0.5, 86400.0))
      ->capture_default_str();
  add_engine_options(*cmd, o.engine);
  return cmd;
}

namespace {

int serve(const ServeOptions& o, Communicator* comm) {
  auto fail = [](const Error& e) {
    spdlog::error("{}", e.message);
    return 1;
  };
  raise_fd_limit();
  // Flag mistakes first, before minutes of loading.
  auto cors = server::CorsPolicy::parse(o.allowed_origins);
  if (!cors.ok()) return fail(cors.error());
  auto loaded = load_engine(o.engine, comm);
  if (!loaded.ok()) return fail(loaded.error());
  if (comm && comm->rank() != 0) {
    Status ran = run_tensor_parallel_rank(
        *loaded->model, loaded->config.ranks, loaded->rank_kv_layout,
        loaded->config.scheduler.max_num_batched_tokens, loaded->config.num_threads);
    if (!ran.ok()) return fail(ran.error());
    spdlog::info("tensor-parallel rank {}: rank 0 stopped; exiting", comm->rank());
    return 0;
  }

  server::ServerConfig sc;
  sc.host = o.host;
  sc.port = o.port;
  sc.api_key = o.api_key;
  if (sc.api_key.empty()) {
    if (const char* env = std::getenv("MOON_API_KEY")) sc.api_key = env;
  }
  sc.served_model_name =
      o.served_model_name.empty() ? default_model_name(o.engine.model) : o.served_model_name;
  sc.max_model_len = loaded->config.scheduler.max_model_len;
  sc.max_num_seqs = loaded->config.scheduler.max_num_seqs;
  sc.max_waiting = o.max_waiting;
  sc.max_connections = o.max_connections;
  sc.max_connections_per_ip = o.max_connections_per_ip;
  sc.shutdown_timeout_s = o.shutdown_timeout;
  sc.idle_timeout_s = o.idle_timeout;
  sc.log_stats_interval_s = o.disable_log_stats ? 0.0 : o.log_stats_interval;
  auto queued = parse_memory_size(o.max_queued_output);
  if (!queued.ok()) return fail(make_error("--max-queued-output: {}", queued.error().message));
  sc.max_queued_output_bytes = static_cast<size_t>(*queued);
  sc.cors = std::move(*cors);
  auto template_source = chat_template_source(o.chat_template, *loaded->model->file);
  if (!template_source.ok()) return fail(template_source.error());
  if (*template_source) {
    auto parsed = ChatTemplate::parse(**template_source);
    if (!parsed.ok()) {
      return fail(make_error("the chat template does not parse: {}", parsed.error().message));
    }
    sc.chat_template = std::move(*parsed);
  } else {
    spdlog::info("the model has no chat template: /v1/chat/completions needs --chat-template");
  }

  // Destroyed in reverse: the server (and its requests) before the engine thread.
  EngineClient client(std::move(loaded->engine));
  auto server = server::HttpServer::create(sc, *loaded->tokenizer, client);
  if (!server.ok()) return fail(server.error());
  return (*server)->run();
}

}  // namespace

int run_serve(const ServeOptions& o) {
  if (o.tensor_parallel_size == 1) return serve(o, nullptr);
  auto comm = create_mpi_communicator(o.tensor_parallel_timeout);
  if (!comm.ok()) {
    spdlog::error("--tensor-parallel-size {}: {}", o.tensor_parallel_size, comm.error().message);
    return 1;
  }
  if ((*comm)->size() != o.tensor_parallel_size) {
    spdlog::error(
        "--tensor-parallel-size {} needs {} ranks, but this process is one of {}: start it as "
        "mpirun --enable-recovery -np {} moon serve --tensor-parallel-size {} ...",
        o.tensor_parallel_size, o.tensor_parallel_size, (*comm)->size(), o.tensor_parallel_size,
        o.tensor_parallel_size);
    (*comm)->abort(1);
    return 1;
  }
  const int code = serve(o, comm->get());
  // A rank that failed (or a rank 0 whose engine failed) takes the job down: the others may
  // be waiting in a collective that will never finish.
  if (code != 0) {
    spdlog::error("tensor-parallel rank {}: ending the job with exit code {}", (*comm)->rank(),
                  code);
    (*comm)->abort(code);
  }
  return code;
}

}  // namespace moon
