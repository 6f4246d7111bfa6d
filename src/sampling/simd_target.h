// Function-level target attributes for the sampler's SIMD kernels, so that they compile into
// a binary built for plain x86-64 and only the run-time dispatcher decides whether they run.
// (The same idea as src/kernels/dispatch.h; kept here so moon_sampling needs only moon_util.)
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#define MOON_SAMPLING_HAVE_X86 1
#define MOON_SAMPLING_AVX2 __attribute__((target("avx2,fma,f16c")))
#define MOON_SAMPLING_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#else
#define MOON_SAMPLING_HAVE_X86 0
#endif
