#include "half_float.h"
#include <immintrin.h>
#include <string.h>

// Portable conversions (CPUs without F16C, and the tails of the vector loops).

static uint16_t f32_to_f16_scalar(float value) {
    uint32_t x;
    memcpy(&x, &value, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t magnitude = x & 0x7FFFFFFFu;
    if (magnitude >= 0x7F800000u) {  // infinity or NaN
        return (uint16_t)(sign | 0x7C00u | (magnitude > 0x7F800000u ? 0x200u | ((magnitude >> 13) & 0x3FFu) : 0));
    }
    if (magnitude >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);  // rounds past 65504
    if (magnitude < 0x38800000u) {  // below the smallest normal half: a subnormal or zero
        if (magnitude < 0x33000000u) return (uint16_t)sign;  // under half the smallest subnormal
        uint32_t exponent = magnitude >> 23;
        uint32_t mantissa = (magnitude & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126 - exponent;  // 14..24 bits dropped
        uint32_t half = mantissa >> shift;
        uint32_t rest = mantissa & ((1u << shift) - 1);
        uint32_t midpoint = 1u << (shift - 1);
        if (rest > midpoint || (rest == midpoint && (half & 1))) half += 1;
        return (uint16_t)(sign | half);
    }
    uint32_t rebased = magnitude - 0x38000000u;  // exponent bias 127 → 15
    uint32_t half = rebased >> 13;
    uint32_t rest = rebased & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1))) half += 1;
    return (uint16_t)(sign | half);
}

static float f16_to_f32_scalar(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1Fu;
    uint32_t mantissa = h & 0x3FFu;
    uint32_t x;
    if (exponent == 0x1F) {
        x = sign | 0x7F800000u | (mantissa << 13);
    } else if (exponent == 0) {
        if (mantissa == 0) {
            x = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do { e++; mantissa <<= 1; } while ((mantissa & 0x400u) == 0);
            x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mantissa & 0x3FFu) << 13);
        }
    } else {
        x = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
    float value;
    memcpy(&value, &x, 4);
    return value;
}

static int has_f16c(void) {
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
    return known;
}

__attribute__((target("avx,f16c")))
static size_t f32_to_f16_f16c(const float *src, uint16_t *dst, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(dst + i), h);
    }
    return i;
}

__attribute__((target("avx,f16c")))
static size_t f16_to_f32_f16c(const uint16_t *src, float *dst, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    }
    return i;
}

__attribute__((target("avx,f16c")))
static size_t f16_add_f16c(const uint16_t *in, uint16_t *inout, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i)));
        __m256 b = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(inout + i)));
        _mm_storeu_si128((__m128i *)(inout + i), _mm256_cvtps_ph(_mm256_add_ps(a, b), _MM_FROUND_TO_NEAREST_INT));
    }
    return i;
}

void hf_f32_to_f16(const float *src, uint16_t *dst, size_t count) {
    size_t i = has_f16c() ? f32_to_f16_f16c(src, dst, count) : 0;
    for (; i < count; i++) dst[i] = f32_to_f16_scalar(src[i]);
}

void hf_f16_to_f32(const uint16_t *src, float *dst, size_t count) {
    size_t i = has_f16c() ? f16_to_f32_f16c(src, dst, count) : 0;
    for (; i < count; i++) dst[i] = f16_to_f32_scalar(src[i]);
}

void hf_f16_add(const uint16_t *in, uint16_t *inout, size_t count) {
    size_t i = has_f16c() ? f16_add_f16c(in, inout, count) : 0;
    for (; i < count; i++) inout[i] = f32_to_f16_scalar(f16_to_f32_scalar(in[i]) + f16_to_f32_scalar(inout[i]));
}

static uint16_t f32_to_bf16_scalar(float value) {
    uint32_t x;
    memcpy(&x, &value, 4);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40u);  // NaN stays quiet NaN
    x += 0x7FFFu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

static float bf16_to_f32_scalar(uint16_t b) {
    uint32_t x = (uint32_t)b << 16;
    float value;
    memcpy(&value, &x, 4);
    return value;
}

// Plain loops: the compiler vectorises them.
void hf_f32_to_bf16(const float *src, uint16_t *dst, size_t count) {
    for (size_t i = 0; i < count; i++) dst[i] = f32_to_bf16_scalar(src[i]);
}

void hf_bf16_to_f32(const uint16_t *src, float *dst, size_t count) {
    for (size_t i = 0; i < count; i++) dst[i] = bf16_to_f32_scalar(src[i]);
}

void hf_bf16_add(const uint16_t *in, uint16_t *inout, size_t count) {
    for (size_t i = 0; i < count; i++) inout[i] = f32_to_bf16_scalar(bf16_to_f32_scalar(in[i]) + bf16_to_f32_scalar(inout[i]));
}
