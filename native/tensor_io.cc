#include "tensor_io.h"

#include <torch/types.h>  // torch::from_blob (tensor_io.h has only torch::Tensor)

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "addon.h"
#include "errors.h"

namespace encodec {

namespace {

const char* TypedArrayName(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "typed array";
  }
}

std::string Describe(const Napi::Value& value) {
  if (value.IsTypedArray()) return TypedArrayName(value.As<Napi::TypedArray>().TypedArrayType());
  if (value.IsArrayBuffer()) return "ArrayBuffer";
  if (value.IsBuffer()) return "Buffer";
  if (value.IsArray()) return "Array";
  if (value.IsNull()) return "null";
  if (value.IsUndefined()) return "undefined";
  if (value.IsNumber()) return "number";
  if (value.IsString()) return "string";
  if (value.IsBoolean()) return "boolean";
  if (value.IsFunction()) return "function";
  return "object";
}

void CheckAttached(const Napi::TypedArray& array, const std::string& what) {
  if (array.ArrayBuffer().IsDetached()) {
    throw NativeError(ErrorKind::Type, what + "'s ArrayBuffer is detached (transferred or freed); pass a live array");
  }
}

struct ExternalTensor {
  torch::Tensor tensor;
  int64_t bytes;
};

void FinalizeExternalTensor(napi_env env, void* /*data*/, void* hint) {
  auto* holder = static_cast<ExternalTensor*>(hint);
  int64_t ignored = 0;
  napi_adjust_external_memory(env, -holder->bytes, &ignored);
  delete holder;
}

}  // namespace

bool OutputsAreCopied() {
  static const bool copied = [] {
    const char* flag = std::getenv("ENCODEC_NATIVE_COPY_OUTPUTS");
    return flag != nullptr && flag[0] != '\0' && std::strcmp(flag, "0") != 0;
  }();
  return copied;
}

int64_t ReadInteger(const Napi::Value& value, const std::string& what, int64_t lo, int64_t hi) {
  if (!value.IsNumber()) {
    throw NativeError(ErrorKind::Type, what + " must be a number, got " + Describe(value));
  }
  const double v = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || v != std::floor(v) || v < static_cast<double>(lo) || v > static_cast<double>(hi)) {
    throw NativeError(ErrorKind::Range, what + " must be an integer in [" + std::to_string(lo) + ", " +
                                           std::to_string(hi) + "], got " + Napi::Value(value).ToString().Utf8Value());
  }
  return static_cast<int64_t>(v);
}

float ReadScale(const Napi::Value& value, const std::string& what) {
  Napi::Value scale = value.As<Napi::Object>().Get("scale");
  if (!scale.IsNumber()) {
    throw NativeError(ErrorKind::Type, what + ".scale must be a number (codes of a segmented model such as "
                                             "encodec_48khz carry the scale of their segment), got " + Describe(scale));
  }
  const double v = scale.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || std::fabs(v) > 3.0e38) {
    throw NativeError(ErrorKind::Range, what + ".scale must be a finite float32, got " + scale.ToString().Utf8Value());
  }
  return static_cast<float>(v);
}

namespace {

Napi::Float32Array CheckFloat32Array(const Napi::Value& value, const std::string& what) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw NativeError(ErrorKind::Type, what + " must be a Float32Array of samples, got " +
                                          Describe(value) + "; convert it with Float32Array.from(...)");
  }
  auto array = value.As<Napi::Float32Array>();
  CheckAttached(array, what);
  if (array.ElementLength() == 0) {
    throw NativeError(ErrorKind::Range, what + " is empty; pass at least one sample");
  }
  return array;
}

// Data() already includes the view's byteOffset, so subarray() views work.
torch::Tensor TensorOver(Napi::Float32Array array) {
  return torch::from_blob(array.Data(), {static_cast<int64_t>(array.ElementLength())},
                          torch::TensorOptions().dtype(torch::kFloat32));
}

}  // namespace

torch::Tensor CopyFloat32Array(const Napi::Value& value, const std::string& what) {
  return TensorOver(CheckFloat32Array(value, what)).clone();
}

torch::Tensor BorrowFloat32Array(const Napi::Value& value, const std::string& what,
                                 std::vector<Napi::ObjectReference>* keep_alive) {
  Napi::Float32Array array = CheckFloat32Array(value, what);
  // The backing store itself (napi_get_typedarray_info), not the `buffer` property a caller could redefine.
  if (!PinArrayBuffer(value.Env(), array.ArrayBuffer())) return TensorOver(array).clone();
  CheckAttached(array, what);  // the pinner is JavaScript: check again after it ran
  keep_alive->push_back(Napi::Persistent(array.As<Napi::Object>()));
  return TensorOver(array);
}

torch::Tensor ViewCodeBlock(const Napi::Value& value, const std::string& what) {
  if (!value.IsObject() || value.IsTypedArray() || value.IsArray()) {
    throw NativeError(ErrorKind::Type, what + " must be a codes object { data, nQ, nFrames } as returned by "
                                              "encode(), got " + Describe(value));
  }
  auto block = value.As<Napi::Object>();
  const int64_t n_q = ReadInteger(block.Get("nQ"), what + ".nQ", 1, 32);
  const int64_t n_frames = ReadInteger(block.Get("nFrames"), what + ".nFrames", 1, int64_t{1} << 40);
  Napi::Value data = block.Get("data");
  if (!data.IsTypedArray()) {
    throw NativeError(ErrorKind::Type, what + ".data must be an Int16Array or Int32Array, got " + Describe(data));
  }
  auto array = data.As<Napi::TypedArray>();
  const napi_typedarray_type type = array.TypedArrayType();
  if (type != napi_int16_array && type != napi_int32_array) {
    throw NativeError(ErrorKind::Type,
                     what + ".data must be an Int16Array or Int32Array, got " + std::string(TypedArrayName(type)));
  }
  CheckAttached(array, what + ".data");
  if (static_cast<int64_t>(array.ElementLength()) != n_q * n_frames) {
    throw NativeError(ErrorKind::Range, what + ".data has " + std::to_string(array.ElementLength()) +
                                           " values but nQ x nFrames = " + std::to_string(n_q) + " x " +
                                           std::to_string(n_frames) + " = " + std::to_string(n_q * n_frames) +
                                           "; the layout is [nQ, nFrames] row-major");
  }
  auto* base = static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  const auto dtype = type == napi_int16_array ? torch::kInt16 : torch::kInt32;
  // Copied at once: a getter on a later block, or code after the call, may detach this ArrayBuffer.
  return torch::from_blob(base, {n_q, n_frames}, torch::TensorOptions().dtype(dtype)).clone();
}

Napi::TypedArray TensorToTypedArray(Napi::Env env, const torch::Tensor& input) {
  torch::Tensor tensor = input.contiguous();
  napi_typedarray_type type;
  switch (tensor.scalar_type()) {
    case torch::kInt16: type = napi_int16_array; break;
    case torch::kInt32: type = napi_int32_array; break;
    case torch::kFloat32: type = napi_float32_array; break;
    default: throw NativeError(ErrorKind::Generic, "internal error: unexpected output dtype", ErrorCode::Internal);
  }
  const size_t count = static_cast<size_t>(tensor.numel());
  const size_t bytes = static_cast<size_t>(tensor.nbytes());

  napi_value buffer = nullptr;
  if (bytes > 0 && !OutputsAreCopied()) {
    auto* holder = new ExternalTensor{tensor, static_cast<int64_t>(bytes)};
    napi_status status = napi_create_external_arraybuffer(env, tensor.data_ptr(), bytes, FinalizeExternalTensor,
                                                          holder, &buffer);
    if (status == napi_ok) {
      int64_t ignored = 0;
      // Tell the GC how much memory these small JS objects hold, so it collects them in time.
      napi_adjust_external_memory(env, static_cast<int64_t>(bytes), &ignored);
    } else {
      delete holder;  // e.g. napi_no_external_buffers_allowed (Electron's sandbox): copy instead
      buffer = nullptr;
      bool pending = false;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
        napi_value ignored_exception;
        napi_get_and_clear_last_exception(env, &ignored_exception);
      }
    }
  }
  if (buffer == nullptr) {
    Napi::ArrayBuffer copy = Napi::ArrayBuffer::New(env, bytes);
    if (bytes > 0) std::memcpy(copy.Data(), tensor.data_ptr(), bytes);
    buffer = copy;
  }
  napi_value typed = nullptr;
  if (napi_create_typedarray(env, type, count, buffer, 0, &typed) != napi_ok) {
    throw NativeError(ErrorKind::Generic, "could not create the output typed array", ErrorCode::Internal);
  }
  return Napi::TypedArray(env, typed);
}

std::string ReadPath(const Napi::Value& value, const std::string& what) {
  if (!value.IsString()) throw NativeError(ErrorKind::Type, what + " must be a string");
  std::string path = value.As<Napi::String>().Utf8Value();
  if (path.empty()) throw NativeError(ErrorKind::Type, what + " is empty");
  return path;
}

Napi::Object ReadOptions(const Napi::Value& value, const std::string& what) {
  if (value.IsUndefined()) return Napi::Object::New(value.Env());
  if (!value.IsObject()) throw NativeError(ErrorKind::Type, what + " must be an object");
  return value.As<Napi::Object>();
}

std::vector<Napi::Value> ReadInputArray(const Napi::Value& value, const std::string& what, uint32_t max_length) {
  if (!value.IsArray()) throw NativeError(ErrorKind::Type, what + " must be an array");
  auto array = value.As<Napi::Array>();
  const uint32_t length = array.Length();
  if (length == 0) throw NativeError(ErrorKind::Range, what + " is empty; pass at least one item");
  if (length > max_length) {
    throw NativeError(ErrorKind::Range, what + " has " + std::to_string(length) + " items; at most " +
                                           std::to_string(max_length) + " per call");
  }
  std::vector<Napi::Value> items;
  items.reserve(length);
  for (uint32_t i = 0; i < length; ++i) items.push_back(array.Get(i));
  return items;
}

Napi::Object BlockToJs(Napi::Env env, const torch::Tensor& block, const char* rows_key) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", TensorToTypedArray(env, block));
  out.Set(rows_key, Napi::Number::New(env, static_cast<double>(block.size(0))));
  out.Set("nFrames", Napi::Number::New(env, static_cast<double>(block.size(1))));
  return out;
}

}  // namespace encodec
