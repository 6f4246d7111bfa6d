// Everything the engine calls from the optimized kernels: one include for model code.
#pragma once

#include "kernels/cpu/matmul.h"   // IWYU pragma: export
#include "kernels/cpu/ops.h"      // IWYU pragma: export
#include "kernels/rope_params.h"  // IWYU pragma: export
#include "util/cpu_features.h"
#include "util/simd/target.h"  // IWYU pragma: export
