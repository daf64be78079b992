// Gradient compression for the all-reduce (`--grad-compression`): float32 ↔ IEEE half
// (fp16) and bfloat16, and the element-wise sums an MPI reduction applies to them. The
// fp16 paths use the F16C conversion instructions when the CPU has them (every AVX2 CPU
// does); the rest is portable C.
#ifndef SWIFT_DP_TRAIN_HALF_FLOAT_H
#define SWIFT_DP_TRAIN_HALF_FLOAT_H
#include <stddef.h>
#include <stdint.h>

/// Round to nearest even, overflow to ±infinity, NaN stays NaN (as a cast in PyTorch).
void hf_f32_to_f16(const float *src, uint16_t *dst, size_t count);
void hf_f16_to_f32(const uint16_t *src, float *dst, size_t count);
/// inout[i] = f16(f32(in[i]) + f32(inout[i])): the sum is taken in float32, rounded once.
void hf_f16_add(const uint16_t *in, uint16_t *inout, size_t count);

/// bfloat16: the top 16 bits of a float32, rounded to nearest even.
void hf_f32_to_bf16(const float *src, uint16_t *dst, size_t count);
void hf_bf16_to_f32(const uint16_t *src, float *dst, size_t count);
void hf_bf16_add(const uint16_t *in, uint16_t *inout, size_t count);

#endif
