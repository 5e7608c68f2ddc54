#include "lm_step.h"

#include "aten_kernels.h"

#include <torch/script.h>  // the operators and the module's attributes

#include <algorithm>
#include <cstring>
#include <map>
#include <string>

namespace encodec {

namespace {
// Frames ahead whose missing key/value variants are projected together, so the products are wider than one row.
constexpr int64_t kLookahead = 12;
}  // namespace

// ---- LmFastModel ----

std::shared_ptr<LmFastModel> LmFastModel::Create(torch::jit::Module& module, int64_t n_q, int64_t card) {
  try {
    auto m = std::make_shared<LmFastModel>();
    std::map<std::string, torch::Tensor> p;
    for (const auto& item : module.named_parameters(/*recurse=*/true)) p[item.name] = item.value.detach();
    const torch::jit::Module transformer = module.attr("transformer").toModule();
    const torch::jit::Module layers = transformer.attr("layers").toModule();
    const int64_t num_layers = transformer.attr("num_layers").toInt();
    m->past_context = transformer.attr("past_context").toInt();
    const int64_t max_period = transformer.attr("max_period").toInt();
    m->norm_w = p.at("transformer.norm_in.weight");
    m->norm_b = p.at("transformer.norm_in.bias");
    m->eps_in = transformer.attr("norm_in").toModule().attr("eps").toDouble();
    m->dim = m->norm_w.size(0);
    m->n_q = n_q;
    m->card = card;
    const int64_t D = m->dim;
    if (D % 2 != 0 || D < 4 || m->past_context < 1 || num_layers < 1) return nullptr;
    for (int64_t i = 0; i < num_layers; ++i) {
      const std::string pre = "transformer.layers." + std::to_string(i) + ".";
      const torch::jit::Module layer = layers.attr(std::to_string(i)).toModule();
      Layer l;
      const torch::Tensor w = p.at(pre + "self_attn.in_proj_weight"), b = p.at(pre + "self_attn.in_proj_bias");
      if (w.dim() != 2 || w.size(0) != 3 * D || w.size(1) != D || b.size(0) != 3 * D) return nullptr;
      // Meta: w_q, w_kv = w.split([E, E * 2]) (MultiheadAttention's packed key/value path)
      auto ws = w.split_with_sizes({D, 2 * D});
      auto bs = b.split_with_sizes({D, 2 * D});
      l.q = MatVec(ws[0], bs[0]);
      l.kv = MatVec(ws[1], bs[1]);
      l.kv_weights = KvWeights(ws[1].t(), bs[1]);
      l.out = MatVec(p.at(pre + "self_attn.out_proj.weight"), p.at(pre + "self_attn.out_proj.bias"));
      l.linear1 = MatVec(p.at(pre + "linear1.weight"), p.at(pre + "linear1.bias"));
      l.linear2 = MatVec(p.at(pre + "linear2.weight"), p.at(pre + "linear2.bias"));
      l.n1w = p.at(pre + "norm1.weight");
      l.n1b = p.at(pre + "norm1.bias");
      l.n2w = p.at(pre + "norm2.weight");
      l.n2b = p.at(pre + "norm2.bias");
      l.eps1 = layer.attr("norm1").toModule().attr("eps").toDouble();
      l.eps2 = layer.attr("norm2").toModule().attr("eps").toDouble();
      const int64_t heads = layer.attr("self_attn").toModule().attr("num_heads").toInt();
      if (i == 0) m->num_heads = heads;
      if (heads != m->num_heads || heads < 1 || D % heads != 0) return nullptr;
      m->layers.push_back(std::move(l));
    }
    for (int64_t k = 0; k < n_q; ++k) {
      const torch::Tensor e = p.at("emb." + std::to_string(k) + ".weight").contiguous();
      if (e.dim() != 2 || e.size(0) != card + 1 || e.size(1) != D || e.scalar_type() != at::kFloat) return nullptr;
      m->emb.push_back(e);
      m->head_w.push_back(p.at("linears." + std::to_string(k) + ".weight"));
      m->head_b.push_back(p.at("linears." + std::to_string(k) + ".bias"));
    }
    // create_sin_embedding: max_period ** (adim / (half_dim - 1)), the base a float32 tensor (Tensor.__rpow__)
    const int64_t half = D / 2;
    m->divisor = at::pow(at::scalar_tensor(static_cast<double>(max_period), at::kFloat),
                         at::arange(half, at::kLong).view({1, 1, -1}) / (half - 1));
    // All heads as one product where that gives each head's bits.
    m->heads = MatVec(at::cat(m->head_w, 0), at::cat(m->head_b, 0));
    m->heads_exact = m->heads.exact();
    if (m->heads_exact) {
      const torch::Tensor x = TestRows(1, D).view({1, 1, D});
      std::vector<float> y(n_q * card);
      m->heads.Run(x.data_ptr<float>(), y.data(), n_q * card);
      for (int64_t k = 0; k < n_q && m->heads_exact; ++k) {
        const torch::Tensor h = at::linear(x, m->head_w[k], m->head_b[k]).contiguous();
        m->heads_exact = std::memcmp(h.data_ptr<float>(), y.data() + k * card, card * sizeof(float)) == 0;
      }
    }
    // GELU in halves where each half's bits are the whole layer's (elementwise, but oneDNN's kernel might treat a
    // vector's tail differently): on test values spanning its curve, for each layer's split
    m->gelu_parts = true;
    for (const Layer& l : m->layers) {
      const int64_t F = l.linear1.outputs(), split = l.linear1.Split();
      const torch::Tensor h = (TestRows(1, F, 777) * 3.0).view({1, 1, F});
      const torch::Tensor whole = at::gelu(h).contiguous();
      torch::Tensor halves = at::empty({1, 1, F}, at::kFloat);
      for (const auto& [b, e] : {std::pair<int64_t, int64_t>{0, split}, {split, F}}) {
        if (e > b) GeluInto(h.data_ptr<float>() + b, halves.data_ptr<float>() + b, e - b);
      }
      m->gelu_parts = m->gelu_parts && std::memcmp(whole.data_ptr<float>(), halves.data_ptr<float>(),
                                                   F * sizeof(float)) == 0;
    }
    m->plan = std::make_unique<KvPlan>(m->layers[0].kv_weights, m->past_context + 1, m->num_heads);
    if (m->layers[0].kv.exact() && m->plan->variants() > 0) {
      // which variant a one-row product is, so that the step computes it without BLAS
      m->single_variant = m->plan->SingleVariant();
    }
    return m;
  } catch (const std::exception&) {
    return nullptr;  // not laid out as exporter/lm_ts.py lays it out: the TorchScript step is used
  }
}

// ---- LmFastStep ----

LmFastStep::LmFastStep(std::shared_ptr<LmFastModel> model, int64_t K, int64_t rows, LmPair* pair)
    // a window holds at most `rows` rows, so rows + 1 slots keep every row a window or the lookahead reads
    : model_(std::move(model)), K_(K), limit_(rows), cap_(rows + 1), variants_(model_->plan->variants()),
      pair_(pair) {
  const int64_t D = model_->dim;
  caches_.resize(model_->layers.size());
  for (Cache& c : caches_) {
    c.x.reset(new float[cap_ * D]);
    c.kv.reset(new float[cap_ * variants_ * 2 * D]);
    c.have.assign(cap_, 0);
    std::fill(c.x.get(), c.x.get() + D, 0.0f);  // row 0: Meta's zero past (states=None)
    windows_.emplace_back(rows, D, cap_, model_->num_heads);
  }
  pending_.resize(variants_);
  row_kv_.resize(2 * D);
  for (const LmFastModel::Layer& l : model_->layers) hidden_ = std::max(hidden_, l.linear1.outputs());
  buffer_.resize(4 * D + 2 * hidden_);
  rows_.resize(2 * D);
  logits_.resize(K_ * model_->card);
  transposed_.resize(K_ * model_->card);
  probas_ = at::empty({1, model_->card, K_, 1}, at::kFloat);
}

void LmFastStep::Layer(size_t i, const float* xp, float* out) {
  const LmFastModel& m = *model_;
  const LmFastModel::Layer& l = m.layers[i];
  const int64_t D = m.dim, P = m.past_context;
  Cache& c = caches_[i];
  KvWindow& window = windows_[i];
  const int64_t row = t_ + 1;
  std::memcpy(X(c, row), xp, D * sizeof(float));
  uint32_t& fresh = c.have[row % cap_];
  fresh = 0;
  window.Forget(row % cap_);
  float *q = buffer_.data(), *att = q + D, *o = att + D, *yp = o + D, *hidden = yp + D, *gelu = hidden + hidden_;
  bool split_query = false;
  if (m.plan->sums()) {
    // every variant the row will take, now: two sums; its keys and values in two parts, its query in two
    split_query = true;
    const auto at = [&](int v) { return Kv(c, row, v); };
    Parts(4, [&](int part) {
      if (part < 2) {
        const uint32_t stored = m.plan->StoreAll(xp, l.kv_weights, at, part, 2);
        if (part == 0) fresh = stored;
      } else {
        l.q.IntoPart(xp, q, part - 2, 2);
      }
    });
  } else if (m.single_variant >= 0 && l.kv.exact()) {
    l.kv.Run(xp, row_kv_.data());
    StoreKv(row_kv_.data(), D, m.num_heads, Kv(c, row, m.single_variant));
    fresh = 1u << m.single_variant;
  }

  const int64_t H = std::min(t_ + 1, P), S = H + 1, first = t_ + 1 - H;
  const uint8_t* cls = m.plan->Classes(S);
  bool missing = false;
  for (int64_t j = 0; j < S && !missing; ++j) missing = !(c.have[(first + j) % cap_] >> cls[j] & 1u);
  if (missing) {
    // what this frame and the next kLookahead frames need of the rows there are, in as few products as possible
    for (int64_t d = 0; d <= kLookahead; ++d) {
      const int64_t td = t_ + d;
      const int64_t Hd = std::min(td + 1, P), Sd = Hd + 1, firstd = td + 1 - Hd;
      if (Sd > limit_) break;
      const uint8_t* clsd = m.plan->Classes(Sd);
      for (int64_t r = firstd; r <= row; ++r) {
        const int v = clsd[r - firstd];
        uint32_t& have = c.have[r % cap_];
        if (have >> v & 1u) continue;
        have |= 1u << v;
        pending_[v].push_back({r, X(c, r)});
      }
    }
    m.plan->Project(pending_, l.kv_weights,
                    [&](int64_t r, int v, const float* kv) { StoreKv(kv, D, m.num_heads, Kv(c, r, v)); });
  }
  window.Place(first, S, cls, c.kv.get(), variants_, m.plan->AttentionExact(S));
  // Meta's layer on one row; the residual sums are ATen's add (a + 1 * b, one rounding) written out
  if (!split_query) Parts(2, [&](int part) { l.q.IntoPart(xp, q, part, 2); });
  window.Attend(q, first, S, att, pair_);
  Parts(2, [&](int part) { l.out.IntoPart(att, o, part, 2); });
  for (int64_t d = 0; d < D; ++d) o[d] = xp[d] + o[d];
  LayerNormInto(o, yp, 1, D, l.n1w, l.n1b, l.eps1);
  const int64_t F = l.linear1.outputs();
  if (m.gelu_parts && l.linear1.exact()) {
    // each half of the hidden layer and its GELU on one thread (LmFastModel::gelu_parts)
    const int64_t split = l.linear1.Split();
    Parts(2, [&](int part) {
      l.linear1.IntoPart(yp, hidden, part, 2);
      const int64_t begin = part ? split : 0, end = part ? F : split;
      GeluInto(hidden + begin, gelu + begin, end - begin);
    });
  } else {
    l.linear1.Into(yp, hidden);
    GeluInto(hidden, gelu, F);
  }
  Parts(2, [&](int part) { l.linear2.IntoPart(gelu, o, part, 2); });
  for (int64_t d = 0; d < D; ++d) o[d] = yp[d] + o[d];
  LayerNormInto(o, out, 1, D, l.n2w, l.n2b, l.eps2);
}

void LmFastModel::Input(int64_t t, int64_t K, const int64_t* previous, int64_t stride, float* out) const {
  const int64_t D = dim, half = D / 2;
  // Meta: sum(self.emb[k](indices[:, k]) for k in range(K)), indices 1 + the previous codes (0 at the start)
  thread_local std::vector<float> x;
  x.assign(D, 0.0f);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t index = previous ? previous[k * stride] + 1 : 0;
    const float* e = emb[k].data_ptr<float>() + index * D;
    for (int64_t d = 0; d < D; ++d) x[d] = x[d] + e[d];
  }
  // Meta's create_sin_embedding: phase = t / divisor (ATen's true division of the position, cast to float, by each
  // divisor: one IEEE division), then cat(cos(phase), sin(phase)) with ATen's cos and sin on the same shape
  thread_local torch::Tensor phase, cos, sin;
  if (!phase.defined() || phase.size(2) != half) {
    phase = at::empty({1, 1, half}, at::kFloat);
    cos = at::empty({1, 1, half}, at::kFloat);
    sin = at::empty({1, 1, half}, at::kFloat);
  }
  const float position = static_cast<float>(t);
  const float* dp = divisor.data_ptr<float>();
  float* pp = phase.data_ptr<float>();
  for (int64_t i = 0; i < half; ++i) pp[i] = position / dp[i];
  at::cos_out(cos, phase);
  at::sin_out(sin, phase);
  // layer_norm(x) + pos: ATen's add, one rounding per element
  LayerNormInto(x.data(), out, 1, D, norm_w, norm_b, eps_in);
  const float *cp = cos.data_ptr<float>(), *sp = sin.data_ptr<float>();
  for (int64_t i = 0; i < half; ++i) out[i] = out[i] + cp[i];
  for (int64_t i = 0; i < half; ++i) out[half + i] = out[half + i] + sp[i];
}

torch::Tensor LmFastModel::Probabilities(const torch::Tensor& logits) {
  return at::softmax(logits.permute({0, 3, 1, 2}), 1);
}

torch::Tensor LmFastStep::Step(const int64_t* previous) {
  const LmFastModel& m = *model_;
  const int64_t D = m.dim, card = m.card;
  // the input and each layer's output in turns in the rows of rows_
  m.Input(t_, K_, previous, 1, rows_.data());
  const float* x = rows_.data();
  for (size_t i = 0; i < m.layers.size(); ++i) {
    float* out = rows_.data() + ((i + 1) % 2) * D;
    Layer(i, x, out);
    x = out;
  }
  ++t_;
  if (!m.heads_exact) {
    std::vector<torch::Tensor> heads;
    const torch::Tensor xt = at::from_blob(const_cast<float*>(x), {1, 1, D}, at::kFloat);
    for (int64_t k = 0; k < K_; ++k) heads.push_back(at::linear(xt, m.head_w[k], m.head_b[k]));
    return LmFastModel::Probabilities(at::stack(heads, 1));
  }
  // Meta: softmax(logits [1, K, 1, card].permute(0, 3, 1, 2), 1), on the logits laid out [card][K] as ATen's
  // contiguous() lays them out
  float* logits = logits_.data();
  const int64_t n = K_ * card, split = HalfOf(n);
  Parts(2, [&](int part) { m.heads.RunRange(x, logits, part ? split : 0, part ? n : split); });
  for (int64_t k = 0; k < K_; ++k) {
    for (int64_t c = 0; c < card; ++c) transposed_[c * K_ + k] = logits[k * card + c];
  }
  SoftmaxInto(transposed_.data(), probas_.data_ptr<float>(), 1, card, K_);
  return probas_;
}

}  // namespace encodec
