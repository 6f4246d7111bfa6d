// Settings shared by the load generator's tests.
#pragma once

#include <cstdint>

#include "loadgen/bench_config.h"

namespace moon::loadgen {

// A random-dataset config: `prompts` prompts of `input_len` tokens asking for `output_len`.
inline BenchConfig random_config(int64_t prompts, int64_t input_len, int64_t output_len,
                                 int64_t vocab_size) {
  BenchConfig c;
  c.num_prompts = prompts;
  c.random_input_len = input_len;
  c.random_output_len = output_len;
  c.vocab_size = vocab_size;
  return c;
}

}  // namespace moon::loadgen
