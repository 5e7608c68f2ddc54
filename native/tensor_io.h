// Moving data between JavaScript typed arrays and libtorch tensors, without copies where Node allows.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <string>

namespace encodec {

// Checks that `value` is a non-empty, attached Float32Array and views its memory (subarray offsets
// respected) as a 1-D float32 tensor. No copy: the caller keeps the array alive while the tensor is used.
torch::Tensor ViewFloat32Array(const Napi::Value& value, const std::string& what);

// Checks a code block `{ data: Int16Array | Int32Array, nQ, nFrames }` (data laid out [nQ, nFrames],
// row-major) and views it as an int16/int32 [nQ, nFrames] tensor without copying. `data_out` receives the
// typed array, which the caller must keep alive.
torch::Tensor ViewCodeBlock(const Napi::Value& value, const std::string& what, Napi::Object* data_out);

// Reads an integer argument in [lo, hi], or throws a TypeError/RangeError naming `what`.
int64_t ReadInteger(const Napi::Value& value, const std::string& what, int64_t lo, int64_t hi);

// Hands a CPU int16/int32/float32 tensor to JavaScript as the matching typed array. The array's
// ArrayBuffer is external memory owned by the tensor; where the runtime forbids external buffers
// (or ENCODEC_NATIVE_COPY_OUTPUTS=1), the data is copied into a plain ArrayBuffer instead.
Napi::TypedArray TensorToTypedArray(Napi::Env env, const torch::Tensor& tensor);

// Whether outputs are copied rather than wrapped (see TensorToTypedArray).
bool OutputsAreCopied();

}  // namespace encodec
