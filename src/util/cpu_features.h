// What the CPU this process runs on can do, detected once at run time, so that one binary
// built for plain x86-64 picks the widest kernels the machine supports.
//
// The environment variable MOON_CPU=scalar|avx2|avx512 lowers the level the kernels use
// (never raises it past what the hardware has), so tests and benchmarks can exercise and
// compare every path on one machine.
#pragma once

#include <optional>
#include <string_view>

namespace moon {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512_bf16 = false;
  bool avx512_vnni = false;
  bool amx_tile = false;  // AMX tiles and their int8 multiply (Sapphire Rapids and later)
  bool amx_int8 = false;
};

// Kernel instruction-set levels, ordered: each includes everything below it.
enum class SimdLevel : int {
  kScalar = 0,  // baseline x86-64 (or any other CPU)
  kAvx2 = 1,    // AVX2 + FMA + F16C
  kAvx512 = 2,  // AVX-512 F + BW + VL + DQ (Skylake-X, Zen 4 and later)
};

// The hardware's features; detected on first call, then cached. Thread-safe.
const CpuFeatures& cpu_features();

// The highest level the hardware supports, ignoring MOON_CPU.
SimdLevel hardware_simd_level();

// The one level every kernel runs at (matmul, attention, the other ops, sampling): the
// hardware level, lowered by MOON_CPU when set (an unknown value is ignored with a warning
// on stderr).
SimdLevel simd_level();
// Switches it, capped at the hardware; returns the level now in force. For tests and
// benchmarks that compare paths in one process: not safe while a kernel runs.
SimdLevel set_simd_level(SimdLevel level);

// The level MOON_CPU=`request` gives on hardware supporting `hardware`: the request when it
// is not above the hardware, else the hardware's; null or unknown requests give `hardware`
// (unknown ones with a warning on stderr). simd_level() is this applied to the environment.
SimdLevel apply_simd_request(SimdLevel hardware, const char* request);

// Whether the int8 matmul may use AMX tiles: the CPU has AMX-INT8, Linux granted this
// process the tile state (arch_prctl(ARCH_REQ_XCOMP_PERM), asked once here), the SIMD level in
// force is avx512, and neither MOON_AMX=off nor set_amx_enabled(false) turned it off. AMX
// changes no result bit (kernels/cpu/matmul.h), only speed.
bool amx_int8_enabled();
// Turns AMX on or off for tests and benchmarks (never on where the hardware or OS lacks it);
// returns whether it is usable now. Not safe while a kernel runs.
bool set_amx_enabled(bool enabled);

// "scalar", "avx2" or "avx512".
std::string_view simd_level_name(SimdLevel level);
// The inverse of simd_level_name; nullopt for anything else.
std::optional<SimdLevel> parse_simd_level(std::string_view name);

}  // namespace moon
