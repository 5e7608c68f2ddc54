#include "lm_block.h"

#include <torch/script.h>  // the operators

#include <algorithm>
#include <cstring>
#include <exception>

#include "quantized_cdf.h"

namespace encodec {

namespace {

// Whether the row-wise ATen ops of a layer (the residual sums, the layer norms, GELU), called on R rows at once,
// give each row what the step's call on that row alone ([1, 1, n]) gives, for every R a lane can take.
bool RowsMatch(const LmFastModel& m) {
  const int64_t D = m.dim, R = LmBlockStep::kBlock;
  const auto rows = [](int64_t n, int64_t width, uint32_t seed) { return TestRows(n, width, seed).view({n, 1, width}); };
  const auto same = [](const torch::Tensor& a, const torch::Tensor& b) {
    return a.sizes() == b.sizes() && std::memcmp(a.contiguous().data_ptr<float>(), b.contiguous().data_ptr<float>(),
                                                 a.numel() * sizeof(float)) == 0;
  };
  const torch::Tensor x = rows(R, D, 1), o = rows(R, D, 2);
  for (const LmFastModel::Layer& l : m.layers) {
    const int64_t F = l.linear1.outputs();
    const torch::Tensor h = rows(R, F, 3);
    std::vector<torch::Tensor> one;  // per row: norm1, gelu, norm2
    for (int64_t r = 0; r < R; ++r) {
      const torch::Tensor y = at::layer_norm(x.narrow(0, r, 1) + o.narrow(0, r, 1), {D}, l.n1w, l.n1b, l.eps1);
      one.push_back(y);
      one.push_back(at::gelu(h.narrow(0, r, 1)));
      one.push_back(at::layer_norm(y + x.narrow(0, r, 1), {D}, l.n2w, l.n2b, l.eps2));
    }
    for (int64_t n = 1; n <= R; ++n) {
      const torch::Tensor y = at::layer_norm(x.narrow(0, 0, n) + o.narrow(0, 0, n), {D}, l.n1w, l.n1b, l.eps1);
      const torch::Tensor g = at::gelu(h.narrow(0, 0, n));
      const torch::Tensor z = at::layer_norm(y + x.narrow(0, 0, n), {D}, l.n2w, l.n2b, l.eps2);
      for (int64_t r = 0; r < n; ++r) {
        if (!same(y.narrow(0, r, 1), one[3 * r]) || !same(g.narrow(0, r, 1), one[3 * r + 1]) ||
            !same(z.narrow(0, r, 1), one[3 * r + 2])) {
          return false;
        }
      }
    }
  }
  return true;
}

}  // namespace

bool LmBlockStep::Supported(LmFastModel& m) {
  if (!m.heads_exact || m.single_variant < 0) return false;
  for (const LmFastModel::Layer& l : m.layers) {
    if (!l.q.exact() || !l.kv.exact() || !l.out.exact() || !l.linear1.exact() || !l.linear2.exact()) return false;
  }
  std::call_once(m.rows_once, [&m] {
    try {
      m.rows_exact = RowsMatch(m);
    } catch (const std::exception&) {
      m.rows_exact = false;  // the ops row by row, as the frame-by-frame step calls them
    }
  });
  return true;
}

LmBlockStep::LmBlockStep(std::shared_ptr<LmFastModel> model, int64_t K, int64_t T, const int64_t* codes, int lanes)
    // a block's windows reach past_context rows before its first frame: with the block's rows, cap_ keeps them all
    : model_(std::move(model)), K_(K), T_(T), dim_(model_->dim), cap_(model_->past_context + kBlock + 2),
      codes_(codes), variants_(model_->plan->variants()), lanes_(lanes) {
  const int64_t D = dim_, L = static_cast<int64_t>(model_->layers.size());
  const int64_t rows = model_->past_context + 1;  // the widest window
  rings_.resize(L);
  for (Ring& r : rings_) {
    r.x.reset(new float[cap_ * D]);
    r.kv.reset(new float[cap_ * variants_ * 2 * D]);
    r.have.assign(cap_, 0);
    std::fill(r.x.get(), r.x.get() + D, 0.0f);  // row 0: Meta's zero past (states=None)
  }
  windows_.resize(lanes_.lanes());
  for (auto& per_layer : windows_) {
    for (int64_t i = 0; i < L; ++i) per_layer.emplace_back(rows, D, cap_, model_->num_heads);
  }
  int64_t hidden = 0;
  for (const LmFastModel::Layer& l : model_->layers) hidden = std::max(hidden, l.linear1.outputs());
  cur_.resize(kBlock * D);
  q_.resize(kBlock * D);
  att_.resize(kBlock * D);
  kv_.resize(kBlock * 2 * D);
  proj_.resize(kBlock * D);
  hidden_.resize(kBlock * hidden);
  logits_.resize(kBlock * K_ * model_->card);
  pending_.assign(lanes_.lanes(), std::vector<std::vector<KvPlan::Pending>>(variants_));
}

// Frame t's input (the previous frame's codes are column t - 1 of the segment's codes).
void LmBlockStep::Input(int64_t t, float* out) {
  model_->Input(t, K_, t > 0 ? codes_ + t - 1 : nullptr, T_, out);
}

// Rows a..b of the block (cur_) enter layer `layer`: kept in its ring with their one-row key/value variant, and
// their queries computed.
void LmBlockStep::EnterRows(size_t layer, int64_t t0, int64_t a, int64_t b) {
  const LmFastModel::Layer& l = model_->layers[layer];
  const int64_t D = dim_, n = b - a;
  if (n <= 0) return;
  Ring& ring = rings_[layer];
  const bool sums = model_->plan->sums();  // every variant of each row now (as LmFastStep::Layer)
  if (!sums) l.kv.RunRows(cur_.data() + a * D, D, n, kv_.data() + a * 2 * D, 2 * D);
  l.q.RunRows(cur_.data() + a * D, D, n, q_.data() + a * D, D);
  for (int64_t i = a; i < b; ++i) {
    const int64_t row = t0 + i + 1;
    std::memcpy(X(ring, row), cur_.data() + i * D, D * sizeof(float));
    uint32_t& have = ring.have[row % cap_];
    if (sums) {
      have = model_->plan->StoreAll(cur_.data() + i * D, l.kv_weights, [&](int v) { return Kv(ring, row, v); });
    } else {
      StoreKv(kv_.data() + i * 2 * D, D, model_->num_heads, Kv(ring, row, model_->single_variant));
      have = 1u << model_->single_variant;
    }
    for (auto& per_layer : windows_) per_layer[layer].Forget(row % cap_);
  }
}

// The key/value variants the block's windows need that no row has yet, queued for the lanes (round robin).
void LmBlockStep::Collect(size_t layer, int64_t t0, int64_t n) {
  const LmFastModel& m = *model_;
  Ring& ring = rings_[layer];
  size_t next = 0;
  const size_t lanes = pending_.size();
  for (int64_t t = t0; t < t0 + n; ++t) {
    const int64_t H = std::min(t + 1, m.past_context), S = H + 1, first = t + 1 - H;
    const uint8_t* cls = m.plan->Classes(S);
    for (int64_t j = 0; j < S; ++j) {
      const int64_t r = first + j;
      const int v = cls[j];
      uint32_t& have = ring.have[r % cap_];
      if (have >> v & 1u) continue;
      have |= 1u << v;
      pending_[next++ % lanes][v].push_back({r, X(ring, r)});
    }
  }
}

// LmFastStep::Layer's attention for frame t, from its query row q (before scaling), into out (D floats).
void LmBlockStep::Attend(size_t layer, int lane, int64_t t, const float* q, float* out) {
  const LmFastModel& m = *model_;
  Ring& ring = rings_[layer];
  KvWindow& window = windows_[lane][layer];
  const int64_t H = std::min(t + 1, m.past_context), S = H + 1, first = t + 1 - H;
  window.Place(first, S, m.plan->Classes(S), ring.kv.get(), variants_, m.plan->AttentionExact(S));
  window.Attend(q, first, S, out);
}

// The rest of LmFastStep::Layer for rows a..b: output projection, residual and norm, feed-forward, residual and
// norm; the layer's outputs replace its inputs in cur_.
void LmBlockStep::Feed(size_t layer, int64_t a, int64_t b) {
  const LmFastModel::Layer& l = model_->layers[layer];
  const int64_t D = dim_, F = l.linear1.outputs(), n = b - a;
  if (n <= 0) return;
  float* x = cur_.data() + a * D;
  float* o = proj_.data() + a * D;
  float* h = hidden_.data() + a * F;
  l.out.RunRows(att_.data() + a * D, D, n, o, D);
  // the row-wise ATen ops run on the rows at once where LmFastModel found that to give each row's bits
  const int64_t step = model_->rows_exact ? n : 1;
  for (int64_t r = 0; r < n; r += step) {
    const torch::Tensor xr = at::from_blob(x + r * D, {step, 1, D}, at::kFloat);
    const torch::Tensor orow = at::from_blob(o + r * D, {step, 1, D}, at::kFloat);
    const torch::Tensor y = at::layer_norm(xr + orow, {D}, l.n1w, l.n1b, l.eps1).contiguous();
    l.linear1.RunRows(y.data_ptr<float>(), D, step, h + r * F, F);
    const torch::Tensor g = at::gelu(at::from_blob(h + r * F, {step, 1, F}, at::kFloat)).contiguous();
    l.linear2.RunRows(g.data_ptr<float>(), F, step, o + r * D, D);
    const torch::Tensor z = at::layer_norm(y + at::from_blob(o + r * D, {step, 1, D}, at::kFloat), {D}, l.n2w,
                                           l.n2b, l.eps2).contiguous();
    std::memcpy(x + r * D, z.data_ptr<float>(), step * D * sizeof(float));
  }
}

// LmFastStep::Step's output heads, softmax and Meta's quantized CDFs for rows a..b.
void LmBlockStep::Heads(int64_t a, int64_t b, int64_t* cdfs) {
  const LmFastModel& m = *model_;
  const int64_t D = dim_, C = K_ * m.card;
  if (b <= a) return;
  m.heads.RunRows(cur_.data() + a * D, D, b - a, logits_.data() + a * C, C, C);
  for (int64_t i = a; i < b; ++i) {
    const torch::Tensor logits = at::from_blob(logits_.data() + i * C, {1, K_, 1, m.card}, at::kFloat);
    const torch::Tensor q = FrameCdfs(LmFastModel::Probabilities(logits));
    std::memcpy(cdfs + i * C, q.data_ptr<int64_t>(), C * sizeof(int64_t));
  }
}

int64_t LmBlockStep::Next(int64_t* cdfs) {
  const int64_t n = std::min(kBlock, T_ - t_), t0 = t_, D = dim_;
  if (n <= 0) return 0;
  const int lanes = lanes_.lanes();
  const size_t L = model_->layers.size();
  lanes_.Run([&](int lane) {
    int64_t a, b;
    Lanes::Split(n, lane, lanes, &a, &b);
    for (int64_t i = a; i < b; ++i) Input(t0 + i, cur_.data() + i * D);
    EnterRows(0, t0, a, b);
  });
  for (size_t layer = 0; layer < L; ++layer) {
    Collect(layer, t0, n);
    const LmFastModel::Layer& l = model_->layers[layer];
    Ring& ring = rings_[layer];
    lanes_.Run([&](int lane) {
      model_->plan->Project(pending_[lane], l.kv_weights, [&](int64_t r, int v, const float* kv) {
        StoreKv(kv, dim_, model_->num_heads, Kv(ring, r, v));
      });
    });
    lanes_.Run([&](int lane) {
      int64_t a, b;
      Lanes::Split(n, lane, lanes, &a, &b);
      for (int64_t i = a; i < b; ++i) Attend(layer, lane, t0 + i, q_.data() + i * D, att_.data() + i * D);
      Feed(layer, a, b);
      if (layer + 1 < L) {
        EnterRows(layer + 1, t0, a, b);
      } else {
        Heads(a, b, cdfs);
      }
    });
  }
  t_ += n;
  return n;
}

}  // namespace encodec
