#include "aten_kernels.h"

#ifdef ENCODEC_DIRECT_KERNELS  // aten_kernels.h
#define HAVE_AVX512_CPU_DEFINITION
#define HAVE_AVX2_CPU_DEFINITION
#include <ATen/native/cpu/SoftmaxKernel.h>
#endif

#include <ATen/Functions.h>  // at::from_blob, at::softmax

namespace encodec {

void SoftmaxLastDimInto(const float* x, float* y, int64_t rows, int64_t n) {
  const torch::Tensor in = at::from_blob(const_cast<float*>(x), {rows, n}, at::kFloat);
  torch::Tensor out = at::from_blob(y, {rows, n}, at::kFloat);
#ifdef ENCODEC_DIRECT_KERNELS
  at::native::softmax_lastdim_kernel(at::kCPU, out, in);
#else
  out.copy_(at::softmax(in, -1));
#endif
}

void SoftmaxInto(const float* x, float* y, int64_t outer, int64_t n, int64_t inner) {
  const torch::Tensor in = at::from_blob(const_cast<float*>(x), {outer, n, inner}, at::kFloat);
  torch::Tensor out = at::from_blob(y, {outer, n, inner}, at::kFloat);
#ifdef ENCODEC_DIRECT_KERNELS
  at::native::softmax_kernel(at::kCPU, out, in, 1);
#else
  out.copy_(at::softmax(in, 1));
#endif
}

}  // namespace encodec
