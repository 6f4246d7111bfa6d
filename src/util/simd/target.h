// Function-level target attributes for SIMD code, so that it compiles into a binary built for
// plain x86-64 and only a run-time dispatcher (moon::simd_level()) decides whether it runs.
// Shared by every library with SIMD paths (kernels, sampling); header-only, so using it adds
// no link dependency beyond moon_util.
//
// They also turn off floating-point contraction: GCC would otherwise fuse an intrinsic
// multiply and a following add into one FMA wherever its optimizer sees fit, which changes
// rounding (rope could no longer match its reference bit for bit) and is not under the
// source's control. Every FMA in the SIMD code is written as one. MOON_NO_FP_CONTRACT does
// the same for portable code that a -march flag could otherwise fuse. (clang only fuses
// within one expression, which this code never relies on.)
//
// GCC inlines a function carrying an optimize attribute only into callers with the same
// options, so whatever calls the vector wrappers (vec_avx2.h, vec_avx512.h) must carry one of
// these attributes too. Code written once over an ISA (a template over the wrapper struct)
// cannot take the attribute from its parameter; it is tagged MOON_SIMD_TARGET instead, which
// the including .cpp defines to its level's attribute first (kernels/cpu/simd.h says more).
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#define MOON_HAVE_X86 1
#else
#define MOON_HAVE_X86 0
#endif

#if defined(__clang__)
#define MOON_NO_FP_CONTRACT
#define MOON_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define MOON_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define MOON_TARGET_AVX512_VNNI \
  __attribute__((target("avx512vnni,avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define MOON_TARGET_AMX                                                              \
  __attribute__((                                                                    \
      target("amx-tile,amx-int8,avx512vnni,avx512f,avx512bw,avx512vl,avx512dq,avx2," \
             "fma,f16c")))
#else
#define MOON_NO_FP_CONTRACT __attribute__((optimize("fp-contract=off")))
#define MOON_TARGET_AVX2 __attribute__((target("avx2,fma,f16c"), optimize("fp-contract=off")))
#define MOON_TARGET_AVX512                                                   \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"), \
                 optimize("fp-contract=off")))
// AVX-512 plus VNNI's vpdpbusd, for the int8 dot products (Cascade Lake, Zen 4 and later).
#define MOON_TARGET_AVX512_VNNI                                                         \
  __attribute__((target("avx512vnni,avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"), \
                 optimize("fp-contract=off")))
// AVX-512 plus AMX's int8 tiles (Sapphire Rapids and later), for the int8 matmul's batches.
#define MOON_TARGET_AMX                                                                         \
  __attribute__((target("amx-tile,amx-int8,avx512vnni,avx512f,avx512bw,avx512vl,avx512dq,avx2," \
                        "fma,f16c"),                                                            \
                 optimize("fp-contract=off")))
#endif
