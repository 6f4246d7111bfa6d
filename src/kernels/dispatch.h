// Which instruction-set level the optimized kernels run at. Chosen once, at first use, from
// moon::simd_level() (hardware, lowered by MOON_CPU); tests and benchmarks may switch it to
// compare paths in one process.
#pragma once

#include "util/cpu_features.h"

// Function-level target attributes, so the SIMD paths compile into a binary that still runs
// on plain x86-64 (only the dispatcher decides whether they are ever called).
//
// They also turn off floating-point contraction: GCC would otherwise fuse an intrinsic
// multiply and a following add into one FMA wherever its optimizer sees fit, which changes
// rounding (rope could no longer match its reference bit for bit) and is not under the
// source's control. Every FMA in the kernels is written as one. MOON_NO_FP_CONTRACT does the
// same for portable code that a -march flag could otherwise fuse. (clang only fuses within
// one expression, which these kernels never rely on.)
#if defined(__clang__)
#define MOON_NO_FP_CONTRACT
#define MOON_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define MOON_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#else
#define MOON_NO_FP_CONTRACT __attribute__((optimize("fp-contract=off")))
#define MOON_TARGET_AVX2 __attribute__((target("avx2,fma,f16c"), optimize("fp-contract=off")))
#define MOON_TARGET_AVX512                                                   \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"), \
                 optimize("fp-contract=off")))
#endif

namespace moon::kernels {

// The level every kernel in moon::kernels dispatches to right now.
SimdLevel active_simd_level();

// Switches the level, capped at what the hardware supports; returns the level now active.
// Only for tests and benchmarks: not safe while another thread is inside a kernel.
SimdLevel set_active_simd_level(SimdLevel level);

}  // namespace moon::kernels
