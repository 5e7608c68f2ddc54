#include "aten_kernels.h"

// ATen's gelu on CPU runs oneDNN's eltwise GELU (through ideep, which builds the primitive at every call: about
// 9 us for the LM's 800 values, more than the arithmetic). Where the build links the oneDNN libtorch uses
// (ENCODEC_WITH_DNNL, CMakeLists.txt), the same primitive is built once per size and thread and run on the caller's
// buffers, after a check that it gives ATen's bits.
#ifdef ENCODEC_WITH_DNNL
#include <dnnl.hpp>
#define ENCODEC_DNNL 1
#endif

#include <ATen/Functions.h>  // at::from_blob, at::gelu, at::gelu_out

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <vector>

namespace encodec {

namespace {

#ifdef ENCODEC_DNNL
// ideep's primitive for an ATen tensor [1, 1, n]: forward_training, gelu_erf, alpha = beta = 0, plain f32 layout.
struct GeluPrimitive {
  dnnl::eltwise_forward primitive;
  dnnl::memory src, dst;
};

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

GeluPrimitive& Primitive(int64_t n) {
  thread_local std::map<int64_t, GeluPrimitive> primitives;  // the few sizes a thread asks for
  auto found = primitives.find(n);
  if (found != primitives.end()) return found->second;
  const dnnl::memory::desc md({1, 1, n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::abc);
  const dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_training, dnnl::algorithm::eltwise_gelu_erf, md,
                                         0.0f, 0.0f);
  const dnnl::eltwise_forward::primitive_desc pd(desc, Engine());
  GeluPrimitive p{dnnl::eltwise_forward(pd), dnnl::memory(md, Engine(), DNNL_MEMORY_NONE),
                  dnnl::memory(md, Engine(), DNNL_MEMORY_NONE)};
  return primitives.emplace(n, std::move(p)).first->second;
}

void Run(const float* x, float* y, int64_t n) {
  thread_local dnnl::stream stream(Engine());
  GeluPrimitive& p = Primitive(n);
  p.src.set_data_handle(const_cast<float*>(x));
  p.dst.set_data_handle(y);
  p.primitive.execute(stream, {{DNNL_ARG_SRC, p.src}, {DNNL_ARG_DST, p.dst}});
}

// Whether the primitive gives at::gelu's bits: on values across GELU's curve and its tails, specials included, in
// the sizes and offsets the LM's halves take.
bool Exact() {
  try {
    std::vector<float> values;
    for (int i = -200000; i <= 200000; ++i) values.push_back(static_cast<float>(i) * 6e-5f);  // [-12, 12]
    for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e30f, -1e30f, std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::denorm_min(),
                    -std::numeric_limits<float>::max(), std::numeric_limits<float>::max()}) {
      values.push_back(v);
    }
    uint32_t bits = 12345;
    for (int i = 0; i < 100000; ++i) {  // random finite floats of every exponent
      bits = bits * 1664525u + 1013904223u;
      float v;
      const uint32_t b = bits & 0xff7fffffu;  // no NaN nor infinity
      std::memcpy(&v, &b, sizeof v);
      values.push_back(v);
    }
    const int64_t n = static_cast<int64_t>(values.size());
    const torch::Tensor whole = at::gelu(at::from_blob(values.data(), {1, 1, n}, at::kFloat)).contiguous();
    std::vector<float> ours(n);
    for (int64_t size : {int64_t{400}, int64_t{416}, int64_t{384}, int64_t{800}, int64_t{100}, int64_t{104}}) {
      for (int64_t i = 0; i < n; i += size) Run(values.data() + i, ours.data() + i, std::min(size, n - i));
      if (std::memcmp(ours.data(), whole.data_ptr<float>(), n * sizeof(float)) != 0) return false;
    }
    return true;
  } catch (const std::exception&) {
    return false;  // no primitive: ATen's gelu
  }
}
#endif

}  // namespace

bool GeluDirect() {
#ifdef ENCODEC_DNNL
  static const bool exact = Exact();
  return exact;
#else
  return false;
#endif
}

void GeluInto(const float* x, float* y, int64_t n) {
#ifdef ENCODEC_DNNL
  if (GeluDirect()) return Run(x, y, n);
#endif
  torch::Tensor out = at::from_blob(y, {1, 1, n}, at::kFloat);
  at::gelu_out(out, at::from_blob(const_cast<float*>(x), {1, 1, n}, at::kFloat));
}

}  // namespace encodec
