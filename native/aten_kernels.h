// ATen's CPU kernels for layer norm, softmax and GELU, called on the caller's buffers: the kernels at::layer_norm,
// at::softmax and at::gelu run (so the same bits), without the operator's dispatch, shape checks and output allocations, which
// cost more than the arithmetic on the LM's rows of 200 values. The callers pass shapes the kernels take as they
// are (contiguous float32). Pure libtorch: no Node-API here.
//
// A .cc file each: ATen's layer_norm.h and SoftmaxKernel.h both declare at::native::forward_fn, and GELU is
// oneDNN's.
#pragma once

#include <torch/version.h>

#include "torch_names.h"

#include <cstdint>

// The layer norm and softmax kernels' dispatch stubs are called directly only where the stubs' declarations, as the
// .cc files compile them (with the AVX2 and AVX-512 kernels declared), match the library's: libtorch 1.13 on x86-64,
// as Debian and PyTorch build it. Elsewhere the operators.
#if TORCH_VERSION_MAJOR == 1 && TORCH_VERSION_MINOR == 13 && defined(__x86_64__)
#define ENCODEC_DIRECT_KERNELS 1
#endif

namespace encodec {

// y = at::layer_norm(x, {N}, gamma, beta, eps) for M rows of N floats (at::native::LayerNormKernel).
void LayerNormInto(const float* x, float* y, int64_t M, int64_t N, const torch::Tensor& gamma,
                   const torch::Tensor& beta, double eps);

// y = at::softmax(x, -1) for `rows` rows of n floats (at::native::softmax_lastdim_kernel).
void SoftmaxLastDimInto(const float* x, float* y, int64_t rows, int64_t n);

// y = at::softmax(x, 1) for x contiguous [outer, n, inner] (at::native::softmax_kernel: not the last dimension,
// even where inner is 1, as at::softmax over dim 1 of a [1, n, K, 1] tensor).
void SoftmaxInto(const float* x, float* y, int64_t outer, int64_t n, int64_t inner);

// y = at::gelu(x) for n floats (x [1, 1, n]): oneDNN's primitive run directly where GeluDirect(), else the operator.
void GeluInto(const float* x, float* y, int64_t n);
// Whether GeluInto runs oneDNN's primitive itself (built with oneDNN's headers, and checked once against at::gelu).
bool GeluDirect();

}  // namespace encodec
