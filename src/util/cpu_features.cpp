#include "util/cpu_features.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace moon {
namespace {

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  {
    // CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports has no "f16c").
    unsigned a = 0, b = 0, c = 0, d = 0;
    f.f16c = __get_cpuid(1, &a, &b, &c, &d) && ((c >> 29) & 1);
  }
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512_bf16 = __builtin_cpu_supports("avx512bf16");
  f.avx512_vnni = __builtin_cpu_supports("avx512vnni");
#endif
#if defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
    f.amx_tile = (edx >> 24) & 1;
    f.amx_int8 = (edx >> 25) & 1;
  }
#endif
  return f;
}

SimdLevel level_from_features(const CpuFeatures& f) {
  if (!(f.avx2 && f.fma && f.f16c)) return SimdLevel::kScalar;
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq) return SimdLevel::kAvx512;
  return SimdLevel::kAvx2;
}

}  // namespace

SimdLevel apply_simd_request(SimdLevel hardware, const char* request) {
  if (request == nullptr || *request == '\0') return hardware;
  const std::optional<SimdLevel> wanted = parse_simd_level(request);
  if (!wanted) {
    std::fprintf(stderr, "moon: ignoring MOON_CPU=%s (expected scalar, avx2 or avx512)\n", request);
    return hardware;
  }
  // A request above the hardware would crash on an illegal instruction, so it is capped.
  return static_cast<int>(*wanted) < static_cast<int>(hardware) ? *wanted : hardware;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

SimdLevel hardware_simd_level() {
  return level_from_features(cpu_features());
}

namespace {

std::atomic<int>& level_storage() {
  static std::atomic<int> level{
      static_cast<int>(apply_simd_request(hardware_simd_level(), std::getenv("MOON_CPU")))};
  return level;
}

// Linux keeps AMX's 8 KiB of tile state off until a process asks for it; without the grant
// the first tile instruction faults.
bool os_grants_amx() {
#if defined(__x86_64__)
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

bool amx_hardware() {
  static const bool usable = cpu_features().amx_tile && cpu_features().amx_int8 && os_grants_amx();
  return usable;
}

std::atomic<bool>& amx_wanted() {
  static std::atomic<bool> wanted{[] {
    const char* env = std::getenv("MOON_AMX");
    return env == nullptr || (std::strcmp(env, "off") != 0 && std::strcmp(env, "0") != 0);
  }()};
  return wanted;
}

}  // namespace

bool amx_int8_enabled() {
  return amx_wanted().load(std::memory_order_relaxed) && simd_level() == SimdLevel::kAvx512 &&
         amx_hardware();
}

bool set_amx_enabled(bool enabled) {
  amx_wanted().store(enabled, std::memory_order_relaxed);
  return amx_int8_enabled();
}

SimdLevel simd_level() {
  return static_cast<SimdLevel>(level_storage().load(std::memory_order_relaxed));
}

SimdLevel set_simd_level(SimdLevel level) {
  level = std::min(level, hardware_simd_level());
  level_storage().store(static_cast<int>(level), std::memory_order_relaxed);
  return level;
}

std::string_view simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar:
      return "scalar";
    case SimdLevel::kAvx2:
      return "avx2";
    case SimdLevel::kAvx512:
      return "avx512";
  }
  return "unknown";
}

std::optional<SimdLevel> parse_simd_level(std::string_view name) {
  for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (name == simd_level_name(level)) return level;
  }
  return std::nullopt;
}

}  // namespace moon
