// torch::Tensor and torch::Device for headers that only name them. <torch/types.h> gives these names by bringing
// all of namespace at into torch, with ATen.h (every operator's declarations): most of a file's compile time, and
// a header that declares functions of tensors needs none of it. The .cc files that call operators include
// <torch/types.h> (or <torch/script.h>) themselves. Only these names: torch::zeros and the other factories must
// keep meaning torch's autograd-aware ones, which a wider `using namespace at` here would silently replace.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace torch {
using at::Tensor;
using c10::Device;
}  // namespace torch
