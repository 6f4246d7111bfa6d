// Which instruction-set level the optimized kernels run at. Chosen once, at first use, from
// moon::simd_level() (hardware, lowered by MOON_CPU); tests and benchmarks may switch it to
// compare paths in one process.
#pragma once

#include "util/cpu_features.h"
#include "util/simd/target.h"  // IWYU pragma: export (MOON_TARGET_*, MOON_NO_FP_CONTRACT)

namespace moon::kernels {

// The level every kernel in moon::kernels dispatches to right now.
SimdLevel active_simd_level();

// Switches the level, capped at what the hardware supports; returns the level now active.
// Only for tests and benchmarks: not safe while another thread is inside a kernel.
SimdLevel set_active_simd_level(SimdLevel level);

}  // namespace moon::kernels
