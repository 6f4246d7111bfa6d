// IEEE binary16 (fp16) and bfloat16 <-> fp32 conversions, exact and portable.
//
// fp32 -> 16-bit rounds to nearest, ties to even, as F16C's vcvtps2ph (imm 0) and
// llama.cpp's converters do, so files moon writes hold the bits llama.cpp would write.
// Subnormals are kept (never flushed), overflow becomes infinity, NaN stays NaN (quiet,
// sign and top payload bits kept). 16-bit -> fp32 is exact for every bit pattern.
#pragma once

#include <bit>
#include <cstdint>

namespace moon {

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  uint32_t bits;
  if (exponent == 0x1F) {  // infinity or NaN: the payload moves up unchanged
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {
    // Subnormal m * 2^-24 is normal in fp32: shift the leading one up to the implicit bit.
    int shift = 0;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      ++shift;
    }
    bits = sign | (static_cast<uint32_t>(113 - shift) << 23) | ((mantissa & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

inline uint16_t fp32_to_fp16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) {  // NaN: keep the top payload bits, force quiet
    return static_cast<uint16_t>(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));
  }
  if (abs >= 0x477FF000u) {  // >= 65520 (halfway past the largest half, 65504): overflow
    return static_cast<uint16_t>(sign | 0x7C00u);
  }
  const int32_t exponent = static_cast<int32_t>(abs >> 23) - 127;
  uint32_t mantissa;  // the significand with its implicit bit, to be shifted right
  int shift;          // how many low bits of that significand the half cannot hold
  uint32_t half_exponent;
  if (exponent >= -14) {  // a normal half
    mantissa = abs & 0x7FFFFFu;
    shift = 13;
    half_exponent = static_cast<uint32_t>(exponent + 15);
  } else {                            // a subnormal half (or zero): value = m * 2^-24
    if (exponent < -25) return sign;  // below half the smallest subnormal, even after rounding
    mantissa = (abs & 0x7FFFFFu) | 0x800000u;
    shift = 13 + (-14 - exponent);
    half_exponent = 0;
  }
  const uint32_t kept = mantissa >> shift;
  const uint32_t rest = mantissa & ((1u << shift) - 1);
  const uint32_t halfway = 1u << (shift - 1);
  uint32_t result = (half_exponent << 10) + kept;
  // A carry out of the mantissa correctly bumps the exponent (and 65504 + ulp is caught above).
  if (rest > halfway || (rest == halfway && (kept & 1u))) ++result;
  return static_cast<uint16_t>(sign | result);
}

inline float bf16_to_fp32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

inline uint16_t fp32_to_bf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {  // NaN: truncating could make it infinity
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  }
  // Adding 0x7FFF plus the lowest kept bit rounds to nearest, ties to even, and carries
  // into the exponent (up to infinity) exactly when it should.
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

}  // namespace moon
