"""TorchScript-friendly EnCodec: the SEANet encoder/decoder, LSTM and residual VQ shared by every model family,
and the 24 kHz family (mono, causal SEANet + 32-layer residual VQ).

A family (:class:`Family`) is described once: rates, channels, bandwidths, codebooks, causal convolutions with
weight norm or non-causal ones with time-group norm, the LSTM's segment length and Meta's segmenting. The modules
below are built from that description, as Meta's ``EncodecModel`` builds ``encodec_24khz`` and ``encodec_48khz``
from one parameterised SEANet; ``encodec48_ts.py`` is the 48 kHz family.

Weight norm is folded at export time: every convolution holds a plain ``weight`` and ``bias``
buffer. All tensors are *buffers* (not parameters), so the scripted module never records autograd
history even when the caller forgets ``torch::NoGradGuard``, and ``module.to(device)`` moves
everything (the LSTM is called through ``torch.lstm`` with its buffers, so there is no cached
``_flat_weights`` list that would be left on the old device).

The op sequence intentionally mirrors Meta's facebookresearch/encodec code (same padding, same
distance formula, same summation order) so that codes are bit-identical to the eager reference.

Method contract of :class:`EncodecTS` (what the native addon calls):

    encode(wav: float32 [B,1,T], n_q: int) -> int64 [B,n_q,F],  F = ceil(T/320)
    decode(codes: int16/int32/int64 [B,n_q,F]) -> float32 [B,1,F*320]
    encode_latent(wav) -> float32 [B,128,F]
    quantize(latent [B,128,F], n_q: int) -> int64 [B,n_q,F]
    dequantize(codes) -> float32 [B,128,F]   (sum of the selected codebook vectors)
    decode_latent(latent [B,128,F]) -> float32 [B,1,F*320]
    encode_span(wav [1,1,T], n_q, lead, chunk, context) -> int64 [1,n_q,F-lead]   (chunked encoding of a span
        whose first `lead` frames are context: convolutions once over it, LSTM windows batched; exporter 1.2)
    decode_span(codes [1,n_q,F], lead, chunk, context) -> float32 [1,1,(F-lead)*320]
    encode_spans(wavs: List[[1,1,T_s]], n_q, leads: List[int], chunk, context) -> List[int64 [1,n_q,F_s-lead_s]]
    decode_spans(codes: List[[1,n_q,F_s]], leads, chunk, context) -> List[float32 [1,1,(F_s-lead_s)*320]]
        (several spans, of one clip or many, per call: their LSTM windows pooled into batches; exporter 1.6)
    latents_span(wav [1,1,T], lead, chunk, context) -> float32 [1,128,F-lead]   (encode_span before quantization;
        exporter 1.5)
    forward(wav) == decode(encode(wav, 32))
"""

import math
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Family:
    """One EnCodec model family: what Meta's ``EncodecModel`` is given to build it. The SEANet geometry (ratios,
    filters, kernels, 2 LSTM layers, 128-dim latent, 1024-entry codebooks) is the same for Meta's families and
    has its defaults here. ``causal`` goes with weight norm (folded at export), non-causal with a time-group
    norm after every convolution, as in Meta's two models. ``segment_seconds`` set: the audio is coded in
    normalised segments of that length (one per batch row; the caller cuts and overlap-adds)."""

    def __init__(self, name: str, sample_rate: int, channels: int, bandwidths: List[float], max_codebooks: int,
                 causal: bool, lstm_segment_steps: int, segment_seconds: Optional[float] = None,
                 overlap: float = 0.0):
        self.name = name
        self.sample_rate = sample_rate
        self.channels = channels
        self.ratios = [8, 5, 4, 2]
        self.hop_length = int(math.prod(self.ratios))
        self.frame_rate = -(-sample_rate // self.hop_length)
        self.n_filters = 32
        self.dimension = 128
        self.kernel_size = 7
        self.last_kernel_size = 7
        self.residual_kernel_size = 3
        self.compress = 2
        self.lstm_layers = 2
        self.codebook_size = 1024
        self.bandwidths = bandwidths
        self.max_codebooks = max_codebooks
        self.causal = causal
        self.norm = "weight_norm" if causal else "time_group_norm"
        # the CPU LSTM runs in segments of this many steps, carrying its state: see SLSTM.forward
        self.lstm_segment_steps = lstm_segment_steps
        self.segment_seconds = segment_seconds
        self.overlap = overlap
        # Meta's segment_length = int(segment * sample_rate), stride = int((1 - overlap) * segment_length)
        self.segment_samples = int(segment_seconds * sample_rate) if segment_seconds is not None else 0
        self.segment_stride = max(1, int((1 - overlap) * self.segment_samples)) if segment_seconds is not None else 0
        self.segment_frames = -(-self.segment_samples // self.hop_length)

    def n_q_for_bandwidth(self, bandwidth_kbps: float) -> int:
        """Meta's rule: floor(bandwidth * 1000 / (log2(1024) * frame_rate)), at least 1."""
        return max(1, int(math.floor(bandwidth_kbps * 1000 / (10 * self.frame_rate))))


ENCODEC_24KHZ = Family("encodec_24khz", 24000, 1, [1.5, 3.0, 6.0, 12.0, 24.0], 32, causal=True,
                       lstm_segment_steps=75)

# the 24 kHz family's values under the names the other exporter modules use
NAME = ENCODEC_24KHZ.name
SAMPLE_RATE = ENCODEC_24KHZ.sample_rate
CHANNELS = ENCODEC_24KHZ.channels
HOP_LENGTH = ENCODEC_24KHZ.hop_length
FRAME_RATE = ENCODEC_24KHZ.frame_rate
DIMENSION = ENCODEC_24KHZ.dimension
LSTM_LAYERS = ENCODEC_24KHZ.lstm_layers
MAX_CODEBOOKS = ENCODEC_24KHZ.max_codebooks
CODEBOOK_SIZE = ENCODEC_24KHZ.codebook_size
BANDWIDTHS = ENCODEC_24KHZ.bandwidths
LSTM_SEGMENT_STEPS = ENCODEC_24KHZ.lstm_segment_steps
# Span methods (encode_span / decode_span): the convolution stacks run on pieces of PIECE_FRAMES frames (1 s:
# activations of at most 3 MB, which stay in cache and in the addon's block cache) that overlap by CONV_OVERLAP
# frames, more than the receptive fields of the layers run piecewise (encoder up to the LSTM: 797 samples, under
# 2.5 frames; decoder after the LSTM: under 1.5 frames), so a span's convolutions give the values of one pass
# over the whole file.
PIECE_FRAMES = 75
CONV_OVERLAP = 3
# A span's last piece, whose length is the clip's, runs zero-padded to a multiple of this many frames, so that
# clips of any length run the convolutions on a few shapes: each new shape costs oneDNN a primitive (kernel
# generation, and memory in its cache) for every layer.
PIECE_QUANTUM = 5
# Pooled span calls (encode_spans / decode_spans) pad each LSTM window at its end to a multiple of this many
# frames and pack the windows of many clips end to end into rows of one width (through_pooled_windows; the
# LSTM stage is causal: the padding never reaches the kept frames).
WINDOW_QUANTUM = 25
# The CPU quantizer computes distances for this many frames at a time ([256, 1024] floats, 1 MiB: in cache).
QUANTIZE_BLOCK_ROWS = 256
# nn.GroupNorm's default, as Meta's get_norm_module builds the time-group norm
GROUP_NORM_EPS = 1e-5


def n_q_for_bandwidth(bandwidth_kbps: float) -> int:
    return ENCODEC_24KHZ.n_q_for_bandwidth(bandwidth_kbps)


def _dtype_name(dtype: torch.dtype) -> str:
    # the table is built here, not at module level: TorchScript takes no global dict, and this runs in the scripted
    # checks (on their error paths only)
    names = {
        torch.float32: "float32", torch.float64: "float64", torch.float16: "float16", torch.bfloat16: "bfloat16",
        torch.int64: "int64", torch.int32: "int32", torch.int16: "int16", torch.int8: "int8", torch.uint8: "uint8",
        torch.bool: "bool",
    }
    return names.get(dtype, "dtype #{}".format(dtype))


def _pad1d_reflect(x: Tensor, padding_left: int, padding_right: int) -> Tensor:
    """Reflect padding that also works on inputs shorter than the padding (Meta's pad1d).

    The same values as ``F.pad(mode="reflect")``, assembled with one ``cat`` of the two mirrored edges and
    the input: ATen 1.13's reflection_pad1d kernel is a scalar loop over every element and took about an
    eighth of the encoder's time, while the mirrored parts are only a few samples long.
    """
    if padding_left == 0 and padding_right == 0:
        return x
    length = x.size(-1)
    max_pad = max(padding_left, padding_right)
    if length > max_pad:
        parts: List[Tensor] = []
        if padding_left > 0:
            parts.append(x[..., 1:padding_left + 1].flip(-1))
        parts.append(x)
        if padding_right > 0:
            parts.append(x[..., length - padding_right - 1:length - 1].flip(-1))
        return torch.cat(parts, -1)
    extra_pad = 0
    if length <= max_pad:
        extra_pad = max_pad - length + 1
        x = F.pad(x, [0, extra_pad])
    padded = F.pad(x, [padding_left, padding_right], mode="reflect")
    end = padded.size(-1) - extra_pad
    return padded[..., :end]


def _span_windows(frames: int, lead: int, chunk: int, context: int) -> List[List[int]]:
    """LSTM windows of a span: [input start, kept start, end] in span frames.

    Frames [0, lead) of the span are only context; the kept frames [lead, frames) are cut into chunks of
    `chunk` frames, each run through the LSTM from `context` frames before it (a zero state forgotten within
    the context). Every window spans chunk + context frames where the span allows it, so they batch: the
    first window of a file (lead 0) keeps all its frames, and the last one takes more context instead of
    being shorter. Input never starts before frame lead - context, before which the convolutions had no
    left context of their own.
    """
    width = chunk + context
    clean = max(0, lead - context)
    windows: List[List[int]] = []
    kept = lead
    end = min(max(lead + chunk, width), frames)
    while True:
        windows.append([max(clean, end - width), kept, end])
        if end >= frames:
            break
        kept = end
        end = min(end + chunk, frames)
    return windows



def _equal_groups(lengths: List[int]) -> List[List[int]]:
    """The indices of `lengths` grouped by equal value, each group in order, groups in order of first index (the
    inputs of one length that run as one batch)."""
    groups: List[List[int]] = []
    done: List[bool] = [False for _ in lengths]
    for i in range(len(lengths)):
        if done[i]:
            continue
        members: List[int] = []
        for j in range(i, len(lengths)):
            if not done[j] and lengths[j] == lengths[i]:
                members.append(j)
                done[j] = True
        groups.append(members)
    return groups


class _Conv1d(nn.Module):
    """The buffers and geometry of Meta's SConv1d (weight norm folded, or no weight norm)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1):
        super().__init__()
        self.register_buffer("weight", torch.zeros(out_channels, in_channels, kernel_size))
        self.register_buffer("bias", torch.zeros(out_channels))
        self.kernel_size = kernel_size
        self.stride = stride
        self.dilation = dilation
        self.padding_total = (kernel_size - 1) * dilation - (stride - 1)

    def _extra_padding(self, length: int) -> int:
        """get_extra_padding_for_conv1d (same float arithmetic as the reference): what makes the last window full."""
        n_frames = (length - self.kernel_size + self.padding_total) / self.stride + 1
        ideal_length = (math.ceil(n_frames) - 1) * self.stride + (self.kernel_size - self.padding_total)
        return ideal_length - length


class SConv1d(_Conv1d):
    """Causal Conv1d with reflect padding and 'last window full' extra padding (weight norm folded)."""

    def forward(self, x: Tensor) -> Tensor:
        x = _pad1d_reflect(x, self.padding_total, self._extra_padding(x.size(-1)))
        return F.conv1d(x, self.weight, self.bias, self.stride, 0, self.dilation)

    def forward_within(self, x: Tensor, length: int) -> Tuple[Tensor, int]:
        """forward on the first `length` positions of x [B, C, W], whose rest is padding (W a multiple of the
        stride, W > length > padding_total): forward's outputs at positions [0, ceil(length / stride)), computed
        on W positions, and their count. The reflect padding that forward adds after the input's end is written
        in place over the first padding positions (x is a fresh activation, read by nothing else)."""
        extra_padding = self._extra_padding(length)
        if extra_padding > 0:
            mirror = torch.arange(length - 2, length - 2 - extra_padding, -1, device=x.device)
            x[:, :, length:length + extra_padding] = x.index_select(2, mirror)
        x = _pad1d_reflect(x, self.padding_total, 0)
        y = F.conv1d(x, self.weight, self.bias, self.stride, 0, self.dilation)
        return y, (length + self.stride - 1) // self.stride


class NConv1d(_Conv1d):
    """Non-causal Conv1d + GroupNorm(1, C_out): Meta's SConv1d(causal=False, norm='time_group_norm')."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride, dilation)
        self.register_buffer("norm_weight", torch.ones(out_channels))
        self.register_buffer("norm_bias", torch.zeros(out_channels))
        self.eps = GROUP_NORM_EPS

    def forward(self, x: Tensor) -> Tensor:
        length = x.size(-1)
        k1 = self.kernel_size - 1
        if self.stride == 1 and self.dilation == 1 and k1 > 0 and k1 % 2 == 0 and length > self.kernel_size:
            # Odd kernel, stride 1: Meta's padding is k1 / 2 reflected samples on each side and no extra padding. The
            # convolution zero-pads inside oneDNN instead of on a padded copy of the whole input, and the k1 / 2
            # outputs at each edge are computed again from the reflect-padded edge samples (they lie in x[:k1] and
            # x[-k1:]) and written over: the same values without copying the input (rounding may differ in the
            # last bit, as for any other kernel choice).
            p = k1 // 2
            y = F.conv1d(x, self.weight, self.bias, 1, p)
            y[:, :, :p] = F.conv1d(_pad1d_reflect(x[:, :, :k1], p, 0), self.weight, self.bias)
            y[:, :, length - p:] = F.conv1d(_pad1d_reflect(x[:, :, length - k1:], 0, p), self.weight, self.bias)
            return F.group_norm(y, 1, self.norm_weight, self.norm_bias, self.eps)
        padding_right = self.padding_total // 2
        padding_left = self.padding_total - padding_right
        x = _pad1d_reflect(x, padding_left, padding_right + self._extra_padding(length))
        y = F.conv1d(x, self.weight, self.bias, self.stride, 0, self.dilation)
        return F.group_norm(y, 1, self.norm_weight, self.norm_bias, self.eps)


class _ConvTranspose1d(nn.Module):
    """The buffers of Meta's SConvTranspose1d and their polyphase form: on the CPU, ATen's slow_conv_transpose
    zero-fills and scatters a column buffer (about half of the decoder's time); the polyphase conv (oneDNN) and
    one interleaving copy take half as long. Same sums, other rounding order (decoded audio ~120 dB SNR from the
    transposed conv)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.register_buffer("weight", torch.zeros(in_channels, out_channels, kernel_size))
        self.register_buffer("bias", torch.zeros(out_channels))
        self.kernel_size = kernel_size
        self.stride = stride

    def _register_polyphase(self):
        # polyphase form of weight/bias (see polyphase), filled by prepare(); not part of the state_dict
        self.register_buffer("poly_weight", torch.zeros(0), persistent=False)
        self.register_buffer("poly_bias", torch.zeros(0), persistent=False)

    def polyphase(self):
        """(weight [C_out * stride, C_in, 2], bias [C_out * stride]) of the equivalent strided conv (kernel = 2 * stride).

        Output phase p of frame n is W[:, co, p] x[n] + W[:, co, p + stride] x[n - 1]: a causal conv with
        kernel 2 whose output channel co * stride + p holds phase p of channel co.
        """
        c_in = self.weight.size(0)
        c_out = self.weight.size(1)
        w = self.weight.view(c_in, c_out, 2, self.stride)
        taps = torch.stack([w[:, :, 1], w[:, :, 0]], -1)  # [C_in, C_out, stride, 2]: x[n - 1], x[n]
        poly_w = taps.permute(1, 2, 0, 3).reshape(c_out * self.stride, c_in, 2).contiguous()
        return poly_w, self.bias.repeat_interleave(self.stride)

    @torch.jit.ignore
    def prepare(self):
        self.poly_weight, self.poly_bias = self.polyphase()

    def transposed(self, x: Tensor, pad_right: int) -> Tensor:
        """The transposed conv's output over x [B, C_in, L] zero-padded by one frame on the left and `pad_right`
        on the right, untrimmed: [B, C_out, (L + 1 + pad_right) * stride] from the polyphase conv (the frames
        before and after x hold the kernel's tails)."""
        poly_w = self.poly_weight
        poly_b = self.poly_bias
        if poly_w.numel() == 0:  # a module scripted without prepare()
            poly_w, poly_b = self.polyphase()
        batch = x.size(0)
        frames = x.size(2) + pad_right
        c_out = self.weight.size(1)
        y = F.conv1d(F.pad(x, [1, pad_right]), poly_w, poly_b)  # [B, C_out * stride, frames]
        return y.view(batch, c_out, self.stride, frames).transpose(2, 3).reshape(batch, c_out, frames * self.stride)

    def uses_polyphase(self, x: Tensor) -> bool:
        # eager mode (whose layer calls the random checkpoint's data-dependent init hooks) and CUDA keep ATen's kernel
        return torch.jit.is_scripting() and not x.is_cuda and self.kernel_size == 2 * self.stride


class SConvTranspose1d(_ConvTranspose1d):
    """Causal ConvTranspose1d, all of padding_total = k - stride trimmed on the right."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__(in_channels, out_channels, kernel_size, stride)
        self._register_polyphase()
        self.padding_total = kernel_size - stride

    def forward(self, x: Tensor) -> Tensor:
        if not self.uses_polyphase(x):
            y = F.conv_transpose1d(x, self.weight, self.bias, self.stride)
            end = y.size(-1) - self.padding_total
            return y[..., :end]
        return self.transposed(x, 0)

    def forward_within(self, x: Tensor, length: int) -> Tuple[Tensor, int]:
        """forward on the first `length` positions of x, whose rest is padding (causal: it never reaches them)."""
        return self.forward(x), length * self.stride


class NConvTranspose1d(_ConvTranspose1d):
    """ConvTranspose1d + GroupNorm(1, C_out) over the untrimmed output, then padding_total = k - stride trimmed,
    padding_total // 2 on the right and the rest on the left (Meta's SConvTranspose1d with causal=False)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__(in_channels, out_channels, kernel_size, stride)
        self.register_buffer("norm_weight", torch.ones(out_channels))
        self.register_buffer("norm_bias", torch.zeros(out_channels))
        self._register_polyphase()
        padding_total = kernel_size - stride
        self.padding_right = padding_total // 2
        self.padding_left = padding_total - self.padding_right
        self.eps = GROUP_NORM_EPS

    def forward(self, x: Tensor) -> Tensor:
        if not self.uses_polyphase(x):
            y = F.conv_transpose1d(x, self.weight, self.bias, self.stride)
        else:
            # x padded by one zero frame at each end: the full output, (L + 1) * stride samples
            y = self.transposed(x, 1)
        y = F.group_norm(y, 1, self.norm_weight, self.norm_bias, self.eps)
        end = y.size(-1) - self.padding_right
        return y[..., self.padding_left:end]


def _conv_classes(family: Family):
    """The convolution modules of a family: causal with weight norm folded, or non-causal with time-group norm."""
    return (SConv1d, SConvTranspose1d) if family.causal else (NConv1d, NConvTranspose1d)


class SLSTM(nn.Module):
    """2-layer unidirectional LSTM over time with skip connection: y = lstm(x) + x."""

    def __init__(self, dimension: int, segment_steps: int = LSTM_SEGMENT_STEPS):
        super().__init__()
        self.hidden_size = dimension
        self.segment_steps = segment_steps
        # set to False (module attribute) on CUDA builds without cuDNN (e.g. ROCm)
        self.cudnn_flatten = True
        for layer in range(LSTM_LAYERS):
            self.register_buffer("weight_ih_l%d" % layer, torch.zeros(4 * dimension, dimension))
            self.register_buffer("weight_hh_l%d" % layer, torch.zeros(4 * dimension, dimension))
            self.register_buffer("bias_ih_l%d" % layer, torch.zeros(4 * dimension))
            self.register_buffer("bias_hh_l%d" % layer, torch.zeros(4 * dimension))

    def _params(self, x: Tensor) -> List[Tensor]:
        params: List[Tensor] = [self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0,
                                self.weight_ih_l1, self.weight_hh_l1, self.bias_ih_l1, self.bias_hh_l1]
        if x.is_cuda and self.cudnn_flatten:
            # cuDNN wants the 8 LSTM tensors as views of one packed buffer, otherwise it warns
            # ("RNN module weights are not part of single contiguous chunk of memory") and repacks
            # on every call. Pack private clones (the op re-points them at the packed buffer), so
            # the module's buffers are never mutated and concurrent calls stay safe.
            params = [p.clone() for p in params]
            packed = torch._cudnn_rnn_flatten_weight(params, 4, self.hidden_size, 2, self.hidden_size, 0, 2,
                                                     False, False)
            # the op's schema hides that it re-points `params`; use its result so that the
            # TorchScript optimiser does not drop it as dead code
            if packed.numel() == 0:
                raise RuntimeError("encodec: cuDNN LSTM weight packing failed")
        return params

    def forward(self, x: Tensor) -> Tensor:
        """y = lstm(x) + x on x [B, C, T]. On the CPU in segments of segment_steps steps carrying the state (the
        same steps): ATen's LSTM computes the input projections of all steps at once, [T, B, 2048] floats per
        layer, which for a span's batch of windows (16 x 375 steps: 49 MB) was most of the memory a span call
        held."""
        steps = x.size(-1)
        return self._run(x, torch.jit.annotate(Dict[int, List[int]], {}),
                         max(1, steps) if x.is_cuda else self.segment_steps)

    def forward_packed(self, x: Tensor, starts: List[List[int]]) -> Tensor:
        """forward on rows x [B, C, T] that each hold several windows end to end, row b's windows starting at
        steps starts[b]: the state is zero where a window starts, so each window gets what it gets alone."""
        steps = x.size(-1)
        # the rows whose state is reset at each step (a window's start)
        resets: Dict[int, List[int]] = {}
        for b in range(x.size(0)):
            for step in starts[b]:
                if step > 0 and step < steps:
                    if step not in resets:
                        resets[step] = [b]
                    else:
                        resets[step].append(b)
        return self._run(x, resets, self.segment_steps)

    def _run(self, x: Tensor, resets: Dict[int, List[int]], segment_steps: int) -> Tensor:
        """The LSTM over x [B, C, T] in segments cut at every reset step and every `segment_steps` steps, the state
        carried from one segment to the next but zeroed for the rows resets[step] where a segment starts at `step`;
        each segment's output and skip connection go straight into the result (no list of parts to join)."""
        x = x.permute(2, 0, 1)  # [T, B, C]
        params = self._params(x)
        steps = x.size(0)
        batch = x.size(1)
        cuts: List[int] = [step for step in resets.keys()]
        for step in range(segment_steps, steps, segment_steps):
            if step not in resets:
                cuts.append(step)
        cuts.append(steps)
        cuts.sort()
        h = torch.zeros(2, batch, self.hidden_size, dtype=x.dtype, device=x.device)
        c = h
        y = torch.empty([steps, batch, x.size(2)], dtype=x.dtype, device=x.device)
        start = 0
        for stop in cuts:
            if start in resets:
                keep = torch.ones(batch, dtype=x.dtype, device=x.device)
                keep.index_fill_(0, torch.tensor(resets[start], dtype=torch.long, device=x.device), 0.0)
                keep = keep.view(1, batch, 1)
                h = h * keep
                c = c * keep
            part, h, c = torch.lstm(x[start:stop], [h, c], params, True, 2, 0.0, False, False, False)
            torch.add(part, x[start:stop], out=y[start:stop])
            start = stop
        return y.permute(1, 2, 0)


class ResnetBlock(nn.Module):
    """SEANet residual block: shortcut(x) + conv1x1(elu(conv3(elu(x)))), every conv with the family's norm.

    Its ELUs work in place (as do those that follow a block, and the encoder's after its LSTM): every input they
    overwrite is a fresh output of the layer before, read by nothing else once the shortcut has run, and each
    one saves allocating and filling a buffer of up to 3 MB per 1 s piece on the CPU. Same values.
    """

    def __init__(self, family: Family, dim: int):
        super().__init__()
        conv = _conv_classes(family)[0]
        hidden = dim // family.compress
        self.block = nn.Sequential(
            nn.ELU(alpha=1.0, inplace=True),
            conv(dim, hidden, family.residual_kernel_size),
            nn.ELU(alpha=1.0, inplace=True),
            conv(hidden, dim, 1),
        )
        self.shortcut = conv(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = self.shortcut(x)
        return self.block(x).add_(shortcut)  # = shortcut + block (float addition commutes)


class _LayerStack(nn.Module):
    """A SEANet encoder or decoder (``self.model``, a Sequential) run in parts: layers [lo, hi) only, on
    pieces of a span, or on a span's LSTM windows batched."""

    def __init__(self, family: Family):
        super().__init__()
        # module attributes: TorchScript does not read module-level globals
        self.piece_frames = PIECE_FRAMES
        self.conv_overlap = CONV_OVERLAP
        self.piece_quantum = PIECE_QUANTUM
        self.hop_length = family.hop_length

    def run_layers(self, h: Tensor, lo: int, hi: int, within: int = -1) -> Tensor:
        """Layers [lo, hi) on h. With `within` >= 0, only h's first `within` positions are input and the rest is
        padding, which the layers with a forward_within keep out of the outputs that matter (run_padded)."""
        length = within
        for i, layer in enumerate(self.model):
            if i >= lo and i < hi:
                if length >= 0 and hasattr(layer, "forward_within"):
                    h, length = layer.forward_within(h, length)
                else:
                    h = layer(h)
        return h

    def piecewise(self, x: Tensor, frames: int, in_hop: int, out_hop: int, lo: int, hi: int) -> Tensor:
        """Layers [lo, hi) on x [1, C, T] in pieces of PIECE_FRAMES frames, each with CONV_OVERLAP frames of left
        overlap whose outputs are dropped (the first piece has none): the values of one pass over x, computed
        with activations that fit in cache. The last piece runs padded (run_padded)."""
        length = x.size(-1)
        parts: List[Tensor] = []
        start = 0
        while start < frames:
            stop = min(start + self.piece_frames, frames)
            first = max(0, start - self.conv_overlap)
            piece = x[:, :, first * in_hop:min(stop * in_hop, length)]
            if stop == frames and stop - first >= 3:
                h = self.run_padded(piece, in_hop, lo, hi)
            else:
                h = self.run_layers(piece, lo, hi)
            parts.append(h[:, :, (start - first) * out_hop:(stop - first) * out_hop])
            start = stop
        return torch.cat(parts, -1)

    def run_padded(self, x: Tensor, in_hop: int, lo: int, hi: int) -> Tensor:
        """Layers [lo, hi) on x [1, C, n] zero-padded to a multiple of PIECE_QUANTUM frames of `in_hop`: the
        outputs of run_layers(x) (and more after them). The layers are causal, and the reflect padding that a
        strided conv adds after its input's end is written where it belongs (SConv1d.forward_within); n must
        exceed each conv's left padding (2 frames do)."""
        length = x.size(-1)
        unit = self.piece_quantum * in_hop
        return self.run_layers(F.pad(x, [0, (length + unit - 1) // unit * unit - length]), lo, hi, length)

    def through_windows(self, h: Tensor, windows: List[List[int]], lo: int, hi: int, keep_context: bool) -> Tensor:
        """Layers [lo, hi) on each window [input start, kept start, end] of h [1, C, F], windows of one length
        batched; returns the kept frames of all windows in order (the first window's from its input start
        when `keep_context`), joined along time."""
        outputs: List[Tensor] = [h.new_empty(0) for _ in windows]
        for members in _equal_groups([w[2] - w[0] for w in windows]):
            y = self.run_layers(torch.stack([h[0, :, windows[j][0]:windows[j][2]] for j in members], 0), lo, hi)
            for k, j in enumerate(members):
                skip = 0 if keep_context and j == 0 else windows[j][1] - windows[j][0]
                outputs[j] = y[k:k + 1, :, skip:]
        return torch.cat(outputs, -1)


    def lstm_packed(self, x: Tensor, starts: List[List[int]]) -> Tensor:
        """The stack's LSTM (SLSTM.forward_packed) on packed rows x."""
        for layer in self.model:
            if hasattr(layer, "forward_packed"):
                x = layer.forward_packed(x, starts)
        return x

    def redo_starts(self, out: Tensor, inputs: List[Tensor], rows: List[int], offsets: List[int], lo: int,
                    hi: int):
        """Writes into out [R, C', W] at (rows[j], offsets[j]) the first `window_edge` outputs of layers [lo, hi)
        on inputs[j] [C, n] alone: what a window gets from its own start's reflect padding, which a window
        packed after another read from its neighbour instead. Inputs of one length are batched."""
        for members in _equal_groups([x.size(-1) for x in inputs]):
            y = self.run_layers(torch.stack([inputs[j] for j in members], 0), lo, hi)
            edge = min(self.window_edge, y.size(-1))
            for k, j in enumerate(members):
                out[rows[j], :, offsets[j]:offsets[j] + edge] = y[k, :, :edge]

    def through_pooled_windows(self, hs: List[Tensor], windows: List[List[int]], lo: int, hi: int,
                               quantum: int) -> List[Tensor]:
        """Layers [lo, hi), the LSTM among them, on windows [span, input start, kept start, end, skip] of the spans
        hs[span] [1, C, F]; returns each window's frames [input start + skip, end), as the window alone gives
        them (through_windows).

        The windows are packed end to end into rows as wide as the widest one, each taking a multiple of
        `quantum` frames (zeros after its end: the layers are causal, so they never reach its own frames), and
        every layer runs once on all the rows: the LSTM with its state zeroed where each window starts
        (SLSTM.forward_packed), so that its step-serial matrix products see one batch of full rows, not a small
        batch per width. The convolutions next to the LSTM read `window_edge` frames back: a window packed after
        another would read its neighbour where alone it reads its own start's reflect padding, so the outputs
        at window starts that matter (all before the LSTM, whose state carries them on; after it, those the
        window keeps) are computed again from the window's first frames alone (redo_starts)."""
        count = len(windows)
        widths: List[int] = [(w[3] - w[1] + quantum - 1) // quantum * quantum for w in windows]
        width = max(widths)
        # first fit, widest first
        by_width: List[List[int]] = []
        for _ in range(width // quantum + 1):
            by_width.append(torch.jit.annotate(List[int], []))
        for j in range(count):
            by_width[widths[j] // quantum].append(j)
        fill: List[int] = []
        starts: List[List[int]] = []
        rows: List[int] = [0 for _ in windows]
        offsets: List[int] = [0 for _ in windows]
        for units in range(len(by_width) - 1, 0, -1):
            for j in by_width[units]:
                r = 0
                while r < len(fill) and fill[r] + widths[j] > width:
                    r += 1
                if r == len(fill):
                    fill.append(0)
                    starts.append(torch.jit.annotate(List[int], []))
                rows[j] = r
                offsets[j] = fill[r]
                starts[r].append(fill[r])
                fill[r] += widths[j]
        first = hs[0]
        h = first.new_empty([len(fill), first.size(1), width])
        for j in range(count):
            w = windows[j]
            frames = w[3] - w[1]
            h[rows[j], :, offsets[j]:offsets[j] + frames] = hs[w[0]][0, :, w[1]:w[3]]
            if frames < widths[j]:
                h[rows[j], :, offsets[j] + frames:offsets[j] + widths[j]].zero_()
        for r in range(len(fill)):
            if fill[r] < width:
                h[r, :, fill[r]:].zero_()
        if lo < self.lstm_index:
            h = self.run_layers(h, lo, self.lstm_index)
            self.redo_starts(h, [hs[w[0]][0, :, w[1]:min(w[3], w[1] + 2 * self.window_edge)] for w in windows],
                             rows, offsets, lo, self.lstm_index)
        h = self.lstm_packed(h, starts)
        if self.lstm_index + 1 < hi:
            # the windows that keep outputs of their start's padding (a clip's first window)
            heads: List[int] = []
            inputs: List[Tensor] = []
            for j in range(count):
                if windows[j][4] < self.window_edge:
                    heads.append(j)
                    frames = min(windows[j][3] - windows[j][1], 2 * self.window_edge)
                    inputs.append(h[rows[j], :, offsets[j]:offsets[j] + frames].clone())
            h = self.run_layers(h, self.lstm_index + 1, hi)
            if len(heads) > 0:
                self.redo_starts(h, inputs, [rows[j] for j in heads], [offsets[j] for j in heads],
                                 self.lstm_index + 1, hi)
        return [h[rows[j]:rows[j] + 1, :, offsets[j] + windows[j][4]:offsets[j] + windows[j][3] - windows[j][1]]
                for j in range(count)]


class SEANetEncoder(_LayerStack):
    def __init__(self, family: Family = ENCODEC_24KHZ):
        super().__init__(family)
        conv = _conv_classes(family)[0]
        n = family.n_filters
        mult = 1
        layers: List[nn.Module] = [conv(family.channels, mult * n, family.kernel_size)]
        for ratio in reversed(family.ratios):
            layers.append(ResnetBlock(family, mult * n))
            layers.append(nn.ELU(alpha=1.0, inplace=True))
            layers.append(conv(mult * n, mult * n * 2, ratio * 2, stride=ratio))
            mult *= 2
        self.lstm_index = len(layers)
        # the last conv reads this many frames back (see through_pooled_windows)
        self.window_edge = family.last_kernel_size - 1
        layers.append(SLSTM(mult * n, family.lstm_segment_steps))
        layers.append(nn.ELU(alpha=1.0, inplace=True))
        layers.append(conv(mult * n, family.dimension, family.last_kernel_size))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        batch = x.size(0)
        # eager mode keeps one batched pass: the random checkpoint's data-dependent init hooks every layer call
        if batch == 1 or x.is_cuda or not torch.jit.is_scripting():
            return self.model(x)
        # CPU batch (chunked encoding's windows): the convolutions one clip at a time, so that a clip's
        # activations stay in cache, then one LSTM over the batch, whose step-serial matrix-vector products
        # become matrix products that read the 8 MB of LSTM weights once per step for all clips.
        parts = [self.run_layers(x[b:b + 1], 0, self.lstm_index) for b in range(batch)]
        return self.run_layers(torch.cat(parts, 0), self.lstm_index, len(self.model))

    def forward_span(self, x: Tensor, lead: int, chunk: int, context: int) -> Tensor:
        """Latent [1, 128, F - lead] of span x [1, 1, T] (F = ceil(T / 320)) whose first `lead` frames are
        context: the convolutions piecewise over the whole span, then the LSTM and last conv on the batched
        windows of _span_windows."""
        frames = (x.size(-1) + self.hop_length - 1) // self.hop_length
        h = self.piecewise(x, frames, self.hop_length, 1, 0, self.lstm_index)
        return self.through_windows(h, _span_windows(frames, lead, chunk, context), self.lstm_index,
                                    len(self.model), False)


class SEANetDecoder(_LayerStack):
    def __init__(self, family: Family = ENCODEC_24KHZ):
        super().__init__(family)
        conv, conv_transpose = _conv_classes(family)
        n = family.n_filters
        mult = 2 ** len(family.ratios)
        layers: List[nn.Module] = [conv(family.dimension, mult * n, family.kernel_size),
                                   SLSTM(mult * n, family.lstm_segment_steps)]
        for ratio in family.ratios:
            # not in place after the LSTM: forward_span runs the upsampling layers on views of the LSTM's output
            layers.append(nn.ELU(alpha=1.0, inplace=ratio != family.ratios[0]))
            layers.append(conv_transpose(mult * n, mult * n // 2, ratio * 2, ratio))
            layers.append(ResnetBlock(family, mult * n // 2))
            mult //= 2
        layers.append(nn.ELU(alpha=1.0, inplace=True))
        layers.append(conv(n, family.channels, family.last_kernel_size))
        self.model = nn.Sequential(*layers)
        self.lstm_index = 1
        # the input conv reads this many frames back (see through_pooled_windows)
        self.window_edge = family.kernel_size - 1
        self.upsample_index = 2  # after the input conv and the LSTM

    def forward(self, z: Tensor) -> Tensor:
        batch = z.size(0)
        if batch == 1 or z.is_cuda or not torch.jit.is_scripting():
            return self.model(z)
        # CPU batch: the LSTM (at 75 Hz) over the whole batch, the upsampling convolutions one clip at a time
        # (see SEANetEncoder.forward)
        h = self.run_layers(z, 0, self.upsample_index)
        parts = [self.run_layers(h[b:b + 1], self.upsample_index, len(self.model)) for b in range(batch)]
        return torch.cat(parts, 0)

    def forward_span(self, z: Tensor, lead: int, chunk: int, context: int) -> Tensor:
        """Audio [1, 1, (F - lead) * 320] of latent span z [1, 128, F] whose first `lead` frames are context: the
        input conv and LSTM on the batched windows of _span_windows, then the upsampling convolutions
        piecewise over the frames from the first window's start (their overlap reads the context's LSTM
        output, as a window of audio with context would)."""
        frames = z.size(-1)
        windows = _span_windows(frames, lead, chunk, context)
        h = self.through_windows(z, windows, 0, self.upsample_index, True)
        start = windows[0][0]
        y = self.piecewise(h, frames - start, 1, self.hop_length, self.upsample_index, len(self.model))
        return y[:, :, (lead - start) * self.hop_length:]


class ResidualVQ(nn.Module):
    """Euclidean codebooks stacked in one buffer ``embed`` [32, 1024, 128] (16 for the 48 kHz model)."""

    def __init__(self, family: Family = ENCODEC_24KHZ):
        super().__init__()
        self.register_buffer("embed", torch.zeros(family.max_codebooks, family.codebook_size, family.dimension))
        self.num_codebooks = family.max_codebooks
        self.codebook_size = family.codebook_size
        self.block_rows = QUANTIZE_BLOCK_ROWS

    def encode(self, x: Tensor, n_q: int) -> Tensor:
        """x: [B, D, N] -> codes [B, n_q, N] (int64).

        The distances of each codebook go in blocks of QUANTIZE_BLOCK_ROWS frames on the CPU: the whole [N, 1024]
        matrix (30 MB for a 100 s span) and its temporaries were fresh memory on every call, page-faulted in,
        and overflowed the addon's block cache. Per element the same arithmetic as the reference's
        -(|r|^2 - 2 r.e + |e|^2): addmm adds -2 (r.e) to |r|^2 (the product scaled by a power of two, exact).
        """
        B = x.size(0)
        N = x.size(2)
        residual = x.transpose(1, 2).reshape(B * N, x.size(1))  # [B*N, D]
        rows = residual.size(0)
        block = rows if x.is_cuda else self.block_rows
        all_indices: List[Tensor] = []
        for i in range(n_q):
            embed = self.embed[i].t()  # [D, K]
            embed_sq = embed.pow(2).sum(0, keepdim=True)
            residual_sq = residual.pow(2).sum(1, keepdim=True)
            parts: List[Tensor] = []
            for start in range(0, rows, block):
                stop = min(start + block, rows)
                dist = torch.addmm(residual_sq[start:stop], residual[start:stop], embed, beta=1, alpha=-2)
                dist.add_(embed_sq)
                dist.neg_()
                parts.append(dist.max(dim=-1).indices)
            indices = parts[0] if len(parts) == 1 else torch.cat(parts, 0)
            quantized = F.embedding(indices, self.embed[i])
            residual = residual - quantized
            all_indices.append(indices.view(B, N))
        return torch.stack(all_indices, dim=1)

    def decode(self, codes: Tensor) -> Tensor:
        """codes: int64 [B, n_q, N] -> [B, D, N] (sequential sum, same order as the reference)."""
        n_q = codes.size(1)
        out = F.embedding(codes[:, 0], self.embed[0])
        for i in range(1, n_q):
            out = out + F.embedding(codes[:, i], self.embed[i])
        return out.transpose(1, 2)


class EncodecBase(nn.Module):
    """The modules, input checks and whole-clip methods of every family's TorchScript model (the 24 kHz family's
    EncodecTS, encodec48_ts.EncodecTS48)."""

    def __init__(self, family: Family):
        super().__init__()
        self.encoder = SEANetEncoder(family)
        self.decoder = SEANetDecoder(family)
        self.quantizer = ResidualVQ(family)
        self.sample_rate = family.sample_rate
        self.channels = family.channels
        self.hop_length = family.hop_length
        self.frame_rate = family.frame_rate
        self.dimension = family.dimension
        self.max_codebooks = family.max_codebooks
        self.codebook_size = family.codebook_size

    @torch.jit.ignore
    def prepare(self):
        """Fills the derived buffers (polyphase transposed-conv weights) from the loaded weights; call before
        torch.jit.script."""
        for m in self.modules():
            if isinstance(m, _ConvTranspose1d):
                m.prepare()
        return self

    # ---- validation helpers -------------------------------------------------------------
    def _check_wav(self, wav: Tensor, fn: str) -> Tensor:
        if wav.dim() != 3 or wav.size(1) != self.channels:
            raise RuntimeError("encodec: {}: expected wav of shape [B, {}, T] ({}), got {}".format(
                fn, self.channels, "mono" if self.channels == 1 else "stereo", wav.size()))
        self._check_wav_size(wav, fn)
        if not wav.is_floating_point():
            raise RuntimeError("encodec: {}: wav must be float32, got {}".format(fn, _dtype_name(wav.dtype)))
        if wav.dtype != torch.float32:
            wav = wav.to(torch.float32)
        return wav

    def _check_wav_size(self, wav: Tensor, fn: str):
        if wav.size(0) < 1 or wav.size(2) < 1:
            raise RuntimeError("encodec: {}: wav must have B >= 1 and T >= 1 samples, got {}".format(
                fn, wav.size()))

    def _check_n_q(self, n_q: int, fn: str):
        if n_q < 1 or n_q > self.max_codebooks:
            raise RuntimeError("encodec: {}: n_q must be in 1..{}, got {}".format(fn, self.max_codebooks, n_q))

    def _check_latent(self, latent: Tensor, fn: str) -> Tensor:
        if latent.dim() != 3 or latent.size(1) != self.dimension:
            raise RuntimeError("encodec: {}: expected latent of shape [B, 128, F], got {}".format(
                fn, latent.size()))
        if latent.size(0) < 1 or latent.size(2) < 1:
            raise RuntimeError("encodec: {}: latent must have B >= 1 and F >= 1, got {}".format(
                fn, latent.size()))
        if not latent.is_floating_point():
            raise RuntimeError("encodec: {}: latent must be float32, got {}".format(fn, _dtype_name(latent.dtype)))
        if latent.dtype != torch.float32:
            latent = latent.to(torch.float32)
        return latent

    def _check_codes(self, codes: Tensor, fn: str) -> Tensor:
        if codes.dim() != 3:
            raise RuntimeError("encodec: {}: expected codes of shape [B, n_q, F], got {}".format(
                fn, codes.size()))
        if codes.is_floating_point() or codes.dtype == torch.bool or codes.is_complex():
            raise RuntimeError("encodec: {}: codes must be an integer tensor (int16/int32/int64), got {}".format(
                fn, _dtype_name(codes.dtype)))
        self._check_n_q(codes.size(1), fn)
        if codes.size(0) < 1 or codes.size(2) < 1:
            raise RuntimeError("encodec: {}: codes must have B >= 1 and F >= 1, got {}".format(
                fn, codes.size()))
        codes = codes.to(torch.long)
        lo = int(codes.min())
        hi = int(codes.max())
        if lo < 0 or hi >= self.codebook_size:
            raise RuntimeError("encodec: {}: codes must be in 0..{}, got values in {}..{}".format(
                fn, self.codebook_size - 1, lo, hi))
        return codes

    # ---- exported contract ----------------------------------------------------------------
    @torch.jit.export
    def encode_latent(self, wav: Tensor) -> Tensor:
        wav = self._check_wav(wav, "encode_latent")
        return self.encoder(wav)

    @torch.jit.export
    def quantize(self, latent: Tensor, n_q: int) -> Tensor:
        self._check_n_q(n_q, "quantize")
        latent = self._check_latent(latent, "quantize")
        return self.quantizer.encode(latent, n_q)

    @torch.jit.export
    def encode(self, wav: Tensor, n_q: int) -> Tensor:
        self._check_n_q(n_q, "encode")
        wav = self._check_wav(wav, "encode")
        return self.quantizer.encode(self.encoder(wav), n_q)

    @torch.jit.export
    def dequantize(self, codes: Tensor) -> Tensor:
        codes = self._check_codes(codes, "dequantize")
        return self.quantizer.decode(codes)

    @torch.jit.export
    def decode_latent(self, latent: Tensor) -> Tensor:
        latent = self._check_latent(latent, "decode_latent")
        return self.decoder(latent)

    @torch.jit.export
    def decode(self, codes: Tensor) -> Tensor:
        codes = self._check_codes(codes, "decode")
        return self.decoder(self.quantizer.decode(codes))


class EncodecTS(EncodecBase):
    """EnCodec 24 kHz for TorchScript. See the module docstring for the method contract."""

    def __init__(self, family: Family = ENCODEC_24KHZ):
        super().__init__(family)
        self.window_quantum = WINDOW_QUANTUM

    def _check_span(self, frames: int, batch: int, lead: int, chunk: int, context: int, fn: str):
        if batch != 1:
            raise RuntimeError("encodec: {}: a span is one clip (batch 1), got batch {}".format(fn, batch))
        if chunk < 1 or context < 0 or lead < 0 or lead >= frames:
            raise RuntimeError("encodec: {}: need chunk >= 1, context >= 0 and 0 <= lead < {} frames, got chunk {}, "
                               "context {}, lead {}".format(fn, frames, chunk, context, lead))

    @torch.jit.export
    def encode_span(self, wav: Tensor, n_q: int, lead: int, chunk: int, context: int) -> Tensor:
        """Codes [1, n_q, F - lead] of a span of audio [1, 1, T] whose first `lead` frames are context (chunked
        encoding, see SEANetEncoder.forward_span)."""
        self._check_n_q(n_q, "encode_span")
        wav = self._check_wav(wav, "encode_span")
        self._check_span((wav.size(2) + self.hop_length - 1) // self.hop_length, wav.size(0), lead, chunk, context,
                         "encode_span")
        return self.quantizer.encode(self.encoder.forward_span(wav, lead, chunk, context), n_q)

    @torch.jit.export
    def latents_span(self, wav: Tensor, lead: int, chunk: int, context: int) -> Tensor:
        """The encoder's output before quantization, [1, 128, F - lead], of a span of audio [1, 1, T] whose first
        `lead` frames are context (encode_span without its quantizer)."""
        wav = self._check_wav(wav, "latents_span")
        self._check_span((wav.size(2) + self.hop_length - 1) // self.hop_length, wav.size(0), lead, chunk, context,
                         "latents_span")
        return self.encoder.forward_span(wav, lead, chunk, context)

    @torch.jit.export
    def decode_span(self, codes: Tensor, lead: int, chunk: int, context: int) -> Tensor:
        """Audio [1, 1, (F - lead) * 320] of a span of codes [1, n_q, F] whose first `lead` frames are context
        (chunked decoding, see SEANetDecoder.forward_span)."""
        codes = self._check_codes(codes, "decode_span")
        self._check_span(codes.size(2), codes.size(0), lead, chunk, context, "decode_span")
        return self.decoder.forward_span(self.quantizer.decode(codes), lead, chunk, context)

    def _check_spans(self, count: int, leads: List[int], fn: str):
        if count < 1 or count != len(leads):
            raise RuntimeError("encodec: {}: need one lead per span and at least one span, got {} spans and {} "
                               "leads".format(fn, count, len(leads)))

    @torch.jit.export
    def encode_spans(self, wavs: List[Tensor], n_q: int, leads: List[int], chunk: int, context: int) -> List[Tensor]:
        """Codes [1, n_q, F_s - lead_s] of each span of audio wavs[s] [1, 1, T_s], as encode_span gives them, with
        the LSTM windows of all spans pooled into batches (see through_pooled_windows): many short clips cost
        about what one long clip of their total length costs. The spans may come from different clips."""
        self._check_n_q(n_q, "encode_spans")
        self._check_spans(len(wavs), leads, "encode_spans")
        hs: List[Tensor] = []
        windows: List[List[int]] = []
        for s in range(len(wavs)):
            wav = self._check_wav(wavs[s], "encode_spans")
            frames = (wav.size(2) + self.hop_length - 1) // self.hop_length
            self._check_span(frames, wav.size(0), leads[s], chunk, context, "encode_spans")
            hs.append(self.encoder.piecewise(wav, frames, self.hop_length, 1, 0, self.encoder.lstm_index))
            for w in _span_windows(frames, leads[s], chunk, context):
                windows.append([s, w[0], w[1], w[2], w[1] - w[0]])
        parts = self.encoder.through_pooled_windows(hs, windows, self.encoder.lstm_index, len(self.encoder.model),
                                                     self.window_quantum)
        codes = self.quantizer.encode(torch.cat(parts, -1), n_q)
        out: List[Tensor] = []
        at = 0
        for s in range(len(wavs)):
            kept = hs[s].size(-1) - leads[s]
            out.append(codes[:, :, at:at + kept])
            at += kept
        return out

    @torch.jit.export
    def decode_spans(self, codes: List[Tensor], leads: List[int], chunk: int, context: int) -> List[Tensor]:
        """Audio [1, 1, (F_s - lead_s) * 320] of each span of codes codes[s] [1, n_q, F_s], as decode_span gives
        it, with the LSTM windows of all spans pooled into batches (see encode_spans)."""
        self._check_spans(len(codes), leads, "decode_spans")
        zs: List[Tensor] = []
        windows: List[List[int]] = []
        firsts: List[int] = []
        for s in range(len(codes)):
            c = self._check_codes(codes[s], "decode_spans")
            self._check_span(c.size(2), c.size(0), leads[s], chunk, context, "decode_spans")
            zs.append(self.quantizer.decode(c))
            span_windows = _span_windows(c.size(2), leads[s], chunk, context)
            firsts.append(span_windows[0][0])
            for k, w in enumerate(span_windows):
                # a span's first window keeps its context: the upsampling convolutions' overlap reads it
                windows.append([s, w[0], w[1], w[2], 0 if k == 0 else w[1] - w[0]])
        parts = self.decoder.through_pooled_windows(zs, windows, 0, self.decoder.upsample_index, self.window_quantum)
        out: List[Tensor] = []
        at = 0
        for s in range(len(codes)):
            mine: List[Tensor] = []
            while at < len(windows) and windows[at][0] == s:
                mine.append(parts[at])
                at += 1
            h = torch.cat(mine, -1)
            frames = zs[s].size(-1)
            start = firsts[s]
            y = self.decoder.piecewise(h, frames - start, 1, self.hop_length, self.decoder.upsample_index,
                                       len(self.decoder.model))
            out.append(y[:, :, (leads[s] - start) * self.hop_length:])
        return out

    def forward(self, wav: Tensor) -> Tensor:
        return self.decode(self.encode(wav, self.max_codebooks))



# What the exported module offers beyond the whole-clip methods (encodec.json, read by lib/model/model-file.ts).
CAPABILITIES = {
    # a CPU batch runs the convolutions clip by clip and the LSTM over the whole batch (SEANetEncoder.forward), so
    # batching chunked windows pays off; older exports batch every layer and prefer one window per call
    "cpu_batching": "lstm",
    # encode_span / decode_span: chunked coding of a whole span per call, convolutions run once over it
    "span_methods": True,
    # the CPU LSTM runs in segments of this many steps (exporter 1.3): a span call holds less, so spans can be longer
    "lstm_segment_steps": LSTM_SEGMENT_STEPS,
    # encode_spans / decode_spans (exporter 1.6): several spans per call, of one clip or many, their LSTM
    # windows padded to multiples of this many frames and pooled (1.7: packed end to end into full rows)
    "pooled_span_quantum": WINDOW_QUANTUM,
    # latents_span: the encoder's output before quantization of a span (exporter 1.5), for codec.latents()
    "latents_span": True,
}
