// Moving data between JavaScript typed arrays and libtorch tensors, without copies where Node allows.
#pragma once

#include <napi.h>
#include "torch_names.h"  // not torch/torch.h nor torch/types.h: see there

#include <string>
#include <vector>

namespace encodec {

// Checks that `value` is a non-empty, attached Float32Array and returns its samples (subarray offsets
// respected) as a 1-D float32 tensor that owns a COPY of them. Used where the data is small (filterbanks) or
// must outlive the call; see BorrowFloat32Array for audio.
torch::Tensor CopyFloat32Array(const Napi::Value& value, const std::string& what);

// Checks `value` like CopyFloat32Array and returns a tensor over its memory WITHOUT copying, after pinning its
// ArrayBuffer (Node's markAsUntransferable, set up by lib/addon/native.ts) and adding the array to `keep_alive`, which
// must outlive the tensor. Pinning matters: JavaScript could otherwise detach the buffer (structuredClone or
// postMessage with transfer) while the work runs off the event loop, and V8 would free the memory under the
// view (found by `npm run fuzz`: a segfault). A pinned buffer is copied, not moved, by a later transfer. Where no
// pinner was set (the addon used without lib/addon/native.ts), returns a copy instead.
torch::Tensor BorrowFloat32Array(const Napi::Value& value, const std::string& what,
                                 std::vector<Napi::ObjectReference>* keep_alive);

// Checks a code block `{ data: Int16Array | Int32Array, nQ, nFrames }` (data laid out [nQ, nFrames],
// row-major) and returns it as an int16/int32 [nQ, nFrames] tensor owning a copy (codes are small: 1.2 kB
// per second at 6 kbps, so a copy costs nothing worth pinning the caller's buffer for).
torch::Tensor ViewCodeBlock(const Napi::Value& value, const std::string& what);

// Reads the `scale` of a segment's code block (codes of a segmented model, encodec_48khz): a finite number, as a
// float32 (the scale is a float32 in the model and in .ecdc files).
float ReadScale(const Napi::Value& block, const std::string& what);

// Reads an integer argument in [lo, hi], or throws a TypeError/RangeError naming `what`.
int64_t ReadInteger(const Napi::Value& value, const std::string& what, int64_t lo, int64_t hi);

// Reads a non-empty string path argument, or throws a TypeError "<what> must be a string" / "<what> is empty".
std::string ReadPath(const Napi::Value& value, const std::string& what);

// Reads an optional options argument: an object, or an empty one for undefined; else throws a TypeError
// "<what> must be an object".
Napi::Object ReadOptions(const Napi::Value& value, const std::string& what);

// Reads the items of a non-empty JS array of at most `max_length` inputs, or throws a TypeError/RangeError naming
// `what`. Length and items are read once: a Proxy or getter cannot change them between check and use.
std::vector<Napi::Value> ReadInputArray(const Napi::Value& value, const std::string& what, uint32_t max_length);

// Hands a CPU int16/int32/float32 tensor to JavaScript as the matching typed array. The array's
// ArrayBuffer is external memory owned by the tensor; where the runtime forbids external buffers
// (or ENCODEC_NATIVE_COPY_OUTPUTS=1), the data is copied into a plain ArrayBuffer instead.
Napi::TypedArray TensorToTypedArray(Napi::Env env, const torch::Tensor& tensor);

// A [rows, nFrames] block as { data (TensorToTypedArray, flattened), <rows_key>: rows, nFrames }.
Napi::Object BlockToJs(Napi::Env env, const torch::Tensor& block, const char* rows_key);

// Whether outputs are copied rather than wrapped (see TensorToTypedArray).
bool OutputsAreCopied();

}  // namespace encodec
