"""TorchScript-friendly EnCodec entropy-coding language model (Meta's ``encodec.model.LMModel``).

Meta's ``encodec --lm`` codes each frame's codes with an arithmetic coder whose probabilities come from a
small streaming transformer: ``LMModel(n_q, 1024, num_layers=5, dim=200, past_context=int(3.5 * frame_rate))``
over ``StreamingTransformerEncoder`` (encodec/modules/transformer.py). This module restates both with the same
submodules (``nn.MultiheadAttention``, ``nn.LayerNorm``, ``nn.Linear``, ``nn.Embedding``) and the same op
sequence (embedding sum order, sinusoidal positions computed per step, attention mask, post-norm layers, GELU,
stack/permute/softmax), so a step's probabilities are bit-identical to the eager model on the same machine and
torch. Parameter names are Meta's (``transformer.layers.N.self_attn.in_proj_weight``, ``emb.K.weight``,
``linears.K.weight``...), so Meta's checkpoint loads with ``load_state_dict(strict=True)``.

Method contract (what the native addon calls, once per frame):

    step(indices: int64 [B, K, 1], states: Optional[List[Tensor]], offset: int)
        -> (probas float32 [B, card, K, 1], new_states List[Tensor], new_offset int)

``indices`` are 1 + the previous frame's codes (0 at the first frame), ``K`` (1..n_q) the number of codebooks
in use (the first K embeddings and output heads). ``states=None`` starts a segment (Meta's ``states=None``:
one zero vector of past per layer); pass back the returned states and offset for the next frame.
``forward`` is the same as ``step``. Invalid input raises ``RuntimeError("encodec_lm: step: ...")``.
"""

import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CARD = 1024
DIM = 200
NUM_LAYERS = 5
NUM_HEADS = 8
HIDDEN_SCALE = 4
MAX_PERIOD = 10000

# The codec each LM belongs to: Meta's get_lm_model() builds LMModel(quantizer.n_q, ...,
# past_context=int(3.5 * frame_rate)) with frame_rate = ceil(sample_rate / 320).
CODECS = {
    "encodec_24khz": {"n_q": 32, "sample_rate": 24000, "frame_rate": 75, "lm_model": "encodec_lm_24khz",
                      "checkpoint": "encodec_lm_24khz-1608e3c0.th"},
    "encodec_48khz": {"n_q": 16, "sample_rate": 48000, "frame_rate": 150, "lm_model": "encodec_lm_48khz",
                      "checkpoint": "encodec_lm_48khz-7add9fc3.th"},
}


def past_context_for(frame_rate: int) -> int:
    return int(3.5 * frame_rate)


def codec_for_n_q(n_q: int) -> Optional[str]:
    for name, spec in CODECS.items():
        if spec["n_q"] == n_q:
            return name
    return None


def create_sin_embedding(positions: Tensor, dim: int, max_period: int) -> Tensor:
    # Meta's create_sin_embedding; `max_period ** t` in eager Python is Tensor.__rpow__, which makes a 0-dim
    # float32 tensor of the base: spelled out here so the scripted graph runs the very same pow kernel.
    half_dim = dim // 2
    adim = torch.arange(half_dim, device=positions.device).view(1, 1, -1)
    base = torch.tensor(max_period, dtype=torch.float32, device=positions.device)
    phase = positions / (base ** (adim / (half_dim - 1)))
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)


class StreamingLayer(nn.Module):
    """Meta's StreamingTransformerEncoderLayer (nn.TransformerEncoderLayer, post-norm, GELU, dropout 0)."""

    def __init__(self, dim: int, num_heads: int, hidden_dim: int):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=0.0, batch_first=True)
        self.linear1 = nn.Linear(dim, hidden_dim)
        self.linear2 = nn.Linear(hidden_dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: Tensor, x_past: Tensor, past_context: int) -> Tuple[Tensor, Tensor]:
        sa_input = x
        x = self.norm1(x + self._sa_block(sa_input, x_past, past_context))
        x = self.norm2(x + self._ff_block(x))
        return x, sa_input

    def _sa_block(self, x: Tensor, x_past: Tensor, past_context: int) -> Tensor:
        T = x.shape[1]
        H = x_past.shape[1]
        queries = x
        keys = torch.cat([x_past, x], dim=1)
        values = keys  # the same tensor: MultiheadAttention takes its packed key/value projection path
        queries_pos = torch.arange(H, T + H, device=x.device).view(-1, 1)
        keys_pos = torch.arange(T + H, device=x.device).view(1, -1)
        delta = queries_pos - keys_pos
        valid_access = (delta >= 0) & (delta <= past_context)
        return self.self_attn(queries, keys, values, attn_mask=~valid_access, need_weights=False)[0]

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.linear2(F.gelu(self.linear1(x)))


class StreamingTransformer(nn.Module):
    """Meta's StreamingTransformerEncoder (norm_in, sinusoidal positions, past kept per layer)."""

    def __init__(self, dim: int, num_layers: int, past_context: int, num_heads: int = NUM_HEADS,
                 hidden_scale: int = HIDDEN_SCALE, max_period: int = MAX_PERIOD):
        super().__init__()
        self.past_context = past_context
        self.max_period = max_period
        self.num_layers = num_layers
        self.norm_in = nn.LayerNorm(dim, eps=1e-5)
        self.layers = nn.ModuleList([StreamingLayer(dim, num_heads, int(dim * hidden_scale))
                                     for _ in range(num_layers)])

    def forward(self, x: Tensor, states: Optional[List[Tensor]], offset: int) -> Tuple[Tensor, List[Tensor], int]:
        T = x.shape[1]
        C = x.shape[2]
        if states is None:
            past: List[Tensor] = [torch.zeros_like(x[:, :1]) for _ in range(1 + self.num_layers)]
        else:
            past = states
        positions = torch.arange(T, device=x.device).view(1, -1, 1) + offset
        pos_emb = create_sin_embedding(positions, C, self.max_period)
        new_state: List[Tensor] = []
        x = self.norm_in(x)
        x = x + pos_emb
        for i, layer in enumerate(self.layers):
            layer_state = past[i]
            x, new_layer_state = layer(x, layer_state, self.past_context)
            new_layer_state = torch.cat([layer_state, new_layer_state], dim=1)
            new_state.append(new_layer_state[:, -self.past_context:, :])
        return x, new_state, offset + T


class EncodecLM(nn.Module):
    """Meta's LMModel: all codebooks of a frame predicted in parallel from the previous frame's codes."""

    def __init__(self, n_q: int, card: int = CARD, dim: int = DIM, num_layers: int = NUM_LAYERS,
                 past_context: int = 262):
        super().__init__()
        self.n_q = n_q
        self.card = card
        self.dim = dim
        self.num_layers = num_layers
        self.transformer = StreamingTransformer(dim, num_layers, past_context)
        self.emb = nn.ModuleList([nn.Embedding(card + 1, dim) for _ in range(n_q)])
        self.linears = nn.ModuleList([nn.Linear(dim, card) for _ in range(n_q)])

    def _check(self, indices: Tensor, states: Optional[List[Tensor]], offset: int) -> Tensor:
        if indices.dim() != 3 or indices.shape[0] < 1 or indices.shape[2] < 1:
            raise RuntimeError("encodec_lm: step: expected indices of shape [B, K, T] with B, T >= 1, got {}".format(
                indices.shape))
        if indices.shape[1] < 1 or indices.shape[1] > self.n_q:
            raise RuntimeError("encodec_lm: step: K (codebooks) must be in 1..{}, got {}".format(
                self.n_q, indices.shape[1]))
        if indices.dtype not in [torch.int64, torch.int32, torch.int16]:
            raise RuntimeError("encodec_lm: step: indices must be an integer tensor (int16/int32/int64)")
        lo = int(indices.min())
        hi = int(indices.max())
        if lo < 0 or hi > self.card:
            raise RuntimeError("encodec_lm: step: indices (1 + code, 0 for none) must be in 0..{}, got {}..{}".format(
                self.card, lo, hi))
        if offset < 0:
            raise RuntimeError("encodec_lm: step: offset must be >= 0, got {}".format(offset))
        if states is not None:
            if len(states) < self.num_layers:
                raise RuntimeError("encodec_lm: step: expected {} state tensors, got {}".format(
                    self.num_layers, len(states)))
            for s in states:
                if s.dim() != 3 or s.shape[0] != indices.shape[0] or s.shape[2] != self.dim or s.shape[1] < 1:
                    raise RuntimeError("encodec_lm: step: a state tensor has shape {}, expected [{}, H, {}]".format(
                        s.shape, indices.shape[0], self.dim))
        return indices.to(torch.int64)

    @torch.jit.export
    def step(self, indices: Tensor, states: Optional[List[Tensor]], offset: int) -> Tuple[Tensor, List[Tensor], int]:
        indices = self._check(indices, states, offset)
        B = indices.shape[0]
        K = indices.shape[1]
        T = indices.shape[2]
        # Meta: sum(self.emb[k](indices[:, k]) for k in range(K)), i.e. ((0 + e0) + e1) + ...
        x = torch.zeros([B, T, self.dim], dtype=torch.float32, device=indices.device)
        for k, emb in enumerate(self.emb):
            if k < K:
                x = x + emb(indices[:, k])
        out, new_states, new_offset = self.transformer(x, states, offset)
        heads: List[Tensor] = []
        for k, linear in enumerate(self.linears):
            if k < K:
                heads.append(linear(out))
        logits = torch.stack(heads, dim=1).permute(0, 3, 1, 2)
        return torch.softmax(logits, dim=1), new_states, new_offset

    def forward(self, indices: Tensor, states: Optional[List[Tensor]] = None,
                offset: int = 0) -> Tuple[Tensor, List[Tensor], int]:
        return self.step(indices, states, offset)


def build(codec: str) -> EncodecLM:
    spec = CODECS[codec]
    return EncodecLM(spec["n_q"], past_context=past_context_for(spec["frame_rate"]))
