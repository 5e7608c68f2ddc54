"""TorchScript-friendly EnCodec 48 kHz (stereo, non-causal SEANet with time-group norm, 16-layer residual VQ).

Meta's ``EncodecModel.encodec_model_48khz``: the same SEANet layer stack as the 24 kHz model, but with 2 audio
channels, non-causal convolutions (padding split between both ends, as Meta's SConv1d / SConvTranspose1d with
causal=False), a GroupNorm(1, C) after every convolution (norm='time_group_norm', no weight norm), and audio
normalised per segment: ``mono = x.mean(1)``, ``scale = sqrt(mean(mono^2)) + 1e-8``, the encoder sees
``x / scale`` and the decoder's output is multiplied by ``scale``. Meta's model cuts audio into 1 s segments
(48000 samples) every 47520 samples (1 % overlap) and joins the decoded segments with ``_linear_overlap_add``;
the segmenting and the overlap-add are the caller's (lib/), this module codes segments, one per batch row.
The time-group norm takes its statistics over a whole segment, so a segment is always coded in one piece.

Method contract of :class:`EncodecTS48` (what the native addon calls); ``B`` rows are segments, ``T <= 48000``:

    encode_segments(wav: float32 [B,2,T], n_q) -> (int64 codes [B,n_q,F], float32 scales [B]),  F = ceil(T/320)
    decode_segments(codes [B,n_q,F], scales float32 [B]) -> float32 [B,2,F*320]   (decoder output * scale)
    encode(wav, n_q) -> codes of encode_segments (scales dropped)
    decode(codes) -> decode_segments(codes, scales = 1)
    encode_latent(wav) -> float32 [B,128,F]  (encoder of the normalised segments)
    quantize(latent, n_q) / dequantize(codes) / decode_latent(latent) -> as for 24 kHz (decode_latent unscaled)
    forward(wav) == decode_segments(*encode_segments(wav, 16))
"""

import math
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

try:  # package-relative or script-relative import
    from . import encodec_ts as ets
except ImportError:  # pragma: no cover - when models/ is on sys.path
    import encodec_ts as ets

NAME = "encodec_48khz"
SAMPLE_RATE = 48000
CHANNELS = 2
RATIOS = [8, 5, 4, 2]
HOP_LENGTH = 320
FRAME_RATE = 150
N_FILTERS = 32
DIMENSION = 128
KERNEL_SIZE = 7
LAST_KERNEL_SIZE = 7
RESIDUAL_KERNEL_SIZE = 3
COMPRESS = 2
MAX_CODEBOOKS = 16
CODEBOOK_SIZE = 1024
BANDWIDTHS = [3.0, 6.0, 12.0, 24.0]
# Meta's segment = 1.0 s and overlap = 0.01: segment_length = int(1.0 * 48000), stride = int((1 - 0.01) * 48000)
SEGMENT_SECONDS = 1.0
OVERLAP = 0.01
SEGMENT_SAMPLES = int(SEGMENT_SECONDS * SAMPLE_RATE)
SEGMENT_STRIDE = max(1, int((1 - OVERLAP) * SEGMENT_SAMPLES))
SEGMENT_FRAMES = -(-SEGMENT_SAMPLES // HOP_LENGTH)
GROUP_NORM_EPS = 1e-5  # nn.GroupNorm's default, as Meta's get_norm_module builds it


def n_q_for_bandwidth(bandwidth_kbps: float) -> int:
    """Meta's rule: floor(bandwidth * 1000 / (log2(1024) * 150)), at least 1."""
    return max(1, int(math.floor(bandwidth_kbps * 1000 / (10 * FRAME_RATE))))


class NConv1d(nn.Module):
    """Non-causal Conv1d + GroupNorm(1, C_out): Meta's SConv1d(causal=False, norm='time_group_norm')."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1):
        super().__init__()
        self.register_buffer("weight", torch.zeros(out_channels, in_channels, kernel_size))
        self.register_buffer("bias", torch.zeros(out_channels))
        self.register_buffer("norm_weight", torch.ones(out_channels))
        self.register_buffer("norm_bias", torch.zeros(out_channels))
        self.kernel_size = kernel_size
        self.stride = stride
        self.dilation = dilation
        self.padding_total = (kernel_size - 1) * dilation - (stride - 1)
        self.eps = GROUP_NORM_EPS

    def forward(self, x: Tensor) -> Tensor:
        length = x.size(-1)
        # get_extra_padding_for_conv1d (same float arithmetic as Meta's)
        n_frames = (length - self.kernel_size + self.padding_total) / self.stride + 1
        ideal_length = (math.ceil(n_frames) - 1) * self.stride + (self.kernel_size - self.padding_total)
        extra_padding = ideal_length - length
        padding_right = self.padding_total // 2
        padding_left = self.padding_total - padding_right
        x = ets._pad1d_reflect(x, padding_left, padding_right + extra_padding)
        y = F.conv1d(x, self.weight, self.bias, self.stride, 0, self.dilation)
        return F.group_norm(y, 1, self.norm_weight, self.norm_bias, self.eps)


class NConvTranspose1d(nn.Module):
    """ConvTranspose1d + GroupNorm(1, C_out) over the untrimmed output, then padding_total = k - stride trimmed,
    padding_total // 2 on the right and the rest on the left (Meta's SConvTranspose1d with causal=False)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.register_buffer("weight", torch.zeros(in_channels, out_channels, kernel_size))
        self.register_buffer("bias", torch.zeros(out_channels))
        self.register_buffer("norm_weight", torch.ones(out_channels))
        self.register_buffer("norm_bias", torch.zeros(out_channels))
        # polyphase form of weight/bias (see forward), filled by prepare(); not part of the state_dict
        self.register_buffer("poly_weight", torch.zeros(0), persistent=False)
        self.register_buffer("poly_bias", torch.zeros(0), persistent=False)
        self.kernel_size = kernel_size
        self.stride = stride
        padding_total = kernel_size - stride
        self.padding_right = padding_total // 2
        self.padding_left = padding_total - self.padding_right
        self.eps = GROUP_NORM_EPS

    def polyphase(self):
        """(weight [C_out * stride, C_in, 2], bias) of the strided conv (kernel 2) whose output frame n holds the
        transposed conv's outputs [n * stride, (n + 1) * stride): W[:, co, p] x[n] + W[:, co, p + stride] x[n - 1]."""
        c_in = self.weight.size(0)
        c_out = self.weight.size(1)
        w = self.weight.view(c_in, c_out, 2, self.stride)
        taps = torch.stack([w[:, :, 1], w[:, :, 0]], -1)  # [C_in, C_out, stride, 2]: x[n - 1], x[n]
        poly_w = taps.permute(1, 2, 0, 3).reshape(c_out * self.stride, c_in, 2).contiguous()
        return poly_w, self.bias.repeat_interleave(self.stride)

    @torch.jit.ignore
    def prepare(self):
        self.poly_weight, self.poly_bias = self.polyphase()

    def forward(self, x: Tensor) -> Tensor:
        if not torch.jit.is_scripting() or x.is_cuda or self.kernel_size != 2 * self.stride:
            y = F.conv_transpose1d(x, self.weight, self.bias, self.stride)
        else:
            # On the CPU ATen's slow_conv_transpose scatters through a column buffer; the polyphase conv (oneDNN)
            # over x padded by one zero frame at each end gives the same full output, (L + 1) * stride samples,
            # in another rounding order.
            poly_w = self.poly_weight
            poly_b = self.poly_bias
            if poly_w.numel() == 0:  # a module scripted without prepare()
                poly_w, poly_b = self.polyphase()
            batch = x.size(0)
            frames = x.size(2) + 1
            c_out = self.weight.size(1)
            y = F.conv1d(F.pad(x, [1, 1]), poly_w, poly_b)  # [B, C_out * stride, L + 1]
            y = y.view(batch, c_out, self.stride, frames).transpose(2, 3).reshape(batch, c_out, frames * self.stride)
        y = F.group_norm(y, 1, self.norm_weight, self.norm_bias, self.eps)
        end = y.size(-1) - self.padding_right
        return y[..., self.padding_left:end]


class ResnetBlock48(nn.Module):
    """SEANet residual block: shortcut(x) + conv1x1(elu(conv3(elu(x)))), every conv with its time-group norm.
    The ELUs work in place on fresh layer outputs, as in encodec_ts.ResnetBlock (the shortcut runs first)."""

    def __init__(self, dim: int):
        super().__init__()
        hidden = dim // COMPRESS
        self.block = nn.Sequential(
            nn.ELU(alpha=1.0, inplace=True),
            NConv1d(dim, hidden, RESIDUAL_KERNEL_SIZE),
            nn.ELU(alpha=1.0, inplace=True),
            NConv1d(hidden, dim, 1),
        )
        self.shortcut = NConv1d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = self.shortcut(x)
        return self.block(x).add_(shortcut)  # = shortcut + block (float addition commutes)


class _Stack48(nn.Module):
    def run_layers(self, h: Tensor, lo: int, hi: int) -> Tensor:
        for i, layer in enumerate(self.model):
            if i >= lo and i < hi:
                h = layer(h)
        return h


class SEANetEncoder48(_Stack48):
    def __init__(self):
        super().__init__()
        mult = 1
        layers: List[nn.Module] = [NConv1d(CHANNELS, mult * N_FILTERS, KERNEL_SIZE)]
        for ratio in reversed(RATIOS):
            layers.append(ResnetBlock48(mult * N_FILTERS))
            layers.append(nn.ELU(alpha=1.0, inplace=True))
            layers.append(NConv1d(mult * N_FILTERS, mult * N_FILTERS * 2, ratio * 2, stride=ratio))
            mult *= 2
        self.lstm_index = len(layers)
        lstm = ets.SLSTM(mult * N_FILTERS)
        lstm.segment_steps = SEGMENT_FRAMES  # a whole segment's steps at once
        layers.append(lstm)
        layers.append(nn.ELU(alpha=1.0, inplace=True))
        layers.append(NConv1d(mult * N_FILTERS, DIMENSION, LAST_KERNEL_SIZE))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        batch = x.size(0)
        if batch == 1 or x.is_cuda or not torch.jit.is_scripting():
            return self.model(x)
        # CPU batch of segments: the convolutions one segment at a time (its activations stay in cache), then
        # one LSTM over the batch, whose step-serial matrix-vector products become matrix products.
        parts = [self.run_layers(x[b:b + 1], 0, self.lstm_index) for b in range(batch)]
        return self.run_layers(torch.cat(parts, 0), self.lstm_index, len(self.model))


class SEANetDecoder48(_Stack48):
    def __init__(self):
        super().__init__()
        mult = 2 ** len(RATIOS)
        lstm = ets.SLSTM(mult * N_FILTERS)
        lstm.segment_steps = SEGMENT_FRAMES
        layers: List[nn.Module] = [NConv1d(DIMENSION, mult * N_FILTERS, KERNEL_SIZE), lstm]
        for ratio in RATIOS:
            layers.append(nn.ELU(alpha=1.0, inplace=True))
            layers.append(NConvTranspose1d(mult * N_FILTERS, mult * N_FILTERS // 2, ratio * 2, ratio))
            layers.append(ResnetBlock48(mult * N_FILTERS // 2))
            mult //= 2
        layers.append(nn.ELU(alpha=1.0, inplace=True))
        layers.append(NConv1d(N_FILTERS, CHANNELS, LAST_KERNEL_SIZE))
        self.model = nn.Sequential(*layers)
        self.upsample_index = 2  # after the input conv and the LSTM

    def forward(self, z: Tensor) -> Tensor:
        batch = z.size(0)
        if batch == 1 or z.is_cuda or not torch.jit.is_scripting():
            return self.model(z)
        # CPU batch: the LSTM over the whole batch, the upsampling convolutions one segment at a time
        h = self.run_layers(z, 0, self.upsample_index)
        parts = [self.run_layers(h[b:b + 1], self.upsample_index, len(self.model)) for b in range(batch)]
        return torch.cat(parts, 0)


class EncodecTS48(nn.Module):
    """EnCodec 48 kHz for TorchScript. See the module docstring for the method contract."""

    def __init__(self):
        super().__init__()
        self.encoder = SEANetEncoder48()
        self.decoder = SEANetDecoder48()
        self.quantizer = ets.ResidualVQ(MAX_CODEBOOKS)
        self.sample_rate = SAMPLE_RATE
        self.channels = CHANNELS
        self.hop_length = HOP_LENGTH
        self.frame_rate = FRAME_RATE
        self.dimension = DIMENSION
        self.max_codebooks = MAX_CODEBOOKS
        self.codebook_size = CODEBOOK_SIZE
        self.segment_samples = SEGMENT_SAMPLES
        self.segment_stride = SEGMENT_STRIDE

    @torch.jit.ignore
    def prepare(self):
        """Fills the derived buffers (polyphase transposed-conv weights); call before torch.jit.script."""
        for m in self.modules():
            if isinstance(m, NConvTranspose1d):
                m.prepare()
        return self

    # ---- validation helpers -------------------------------------------------------------
    def _check_wav(self, wav: Tensor, fn: str) -> Tensor:
        if wav.dim() != 3 or wav.size(1) != self.channels:
            raise RuntimeError("encodec: {}: expected wav of shape [B, 2, T] (stereo), got {}".format(
                fn, wav.size()))
        if wav.size(0) < 1 or wav.size(2) < 1 or wav.size(2) > self.segment_samples:
            raise RuntimeError("encodec: {}: wav must have B >= 1 segments of 1 to {} samples, got {}".format(
                fn, self.segment_samples, wav.size()))
        if not wav.is_floating_point():
            raise RuntimeError("encodec: {}: wav must be float32, got {}".format(fn, ets._dtype_name(wav.dtype)))
        if wav.dtype != torch.float32:
            wav = wav.to(torch.float32)
        return wav

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
            raise RuntimeError("encodec: {}: latent must be float32, got {}".format(
                fn, ets._dtype_name(latent.dtype)))
        if latent.dtype != torch.float32:
            latent = latent.to(torch.float32)
        return latent

    def _check_codes(self, codes: Tensor, fn: str) -> Tensor:
        if codes.dim() != 3:
            raise RuntimeError("encodec: {}: expected codes of shape [B, n_q, F], got {}".format(
                fn, codes.size()))
        if codes.is_floating_point() or codes.dtype == torch.bool or codes.is_complex():
            raise RuntimeError("encodec: {}: codes must be an integer tensor (int16/int32/int64), got {}".format(
                fn, ets._dtype_name(codes.dtype)))
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

    def _check_scales(self, scales: Tensor, batch: int, fn: str) -> Tensor:
        if scales.dim() != 1 or scales.size(0) != batch:
            raise RuntimeError("encodec: {}: expected one scale per segment, shape [{}], got {}".format(
                fn, batch, scales.size()))
        if not scales.is_floating_point():
            raise RuntimeError("encodec: {}: scales must be float32, got {}".format(fn, ets._dtype_name(scales.dtype)))
        if not bool(torch.isfinite(scales).all()):
            raise RuntimeError("encodec: {}: scales must be finite".format(fn))
        return scales.to(torch.float32)

    def _normalise(self, wav: Tensor) -> Tuple[Tensor, Tensor]:
        """Meta's EncodecModel._encode_frame with normalize=True: (x / scale, scale [B]), scale = 1e-8 + RMS of the
        mono mix. The mean of squares is accumulated in float64 and rounded to float32 once: a float32 sum over a
        segment rounds differently with the batch size and the thread count (ATen splits long reductions between
        threads), so Meta's own scale can change in its last bit from one run setting to another; this one does
        not, and is the correctly rounded value (Meta's is within an ulp or two of it)."""
        mono = wav.mean(dim=1, keepdim=True)
        volume = mono.to(torch.float64).pow(2).mean(dim=2, keepdim=True).sqrt().to(torch.float32)
        scale = 1e-8 + volume
        return wav / scale, scale.view(-1)

    # ---- exported contract ----------------------------------------------------------------
    @torch.jit.export
    def encode_segments(self, wav: Tensor, n_q: int) -> Tuple[Tensor, Tensor]:
        self._check_n_q(n_q, "encode_segments")
        wav = self._check_wav(wav, "encode_segments")
        x, scale = self._normalise(wav)
        return self.quantizer.encode(self.encoder(x), n_q), scale

    @torch.jit.export
    def decode_segments(self, codes: Tensor, scales: Tensor) -> Tensor:
        codes = self._check_codes(codes, "decode_segments")
        scales = self._check_scales(scales, codes.size(0), "decode_segments")
        out = self.decoder(self.quantizer.decode(codes))
        return out * scales.view(-1, 1, 1)

    @torch.jit.export
    def encode(self, wav: Tensor, n_q: int) -> Tensor:
        return self.encode_segments(wav, n_q)[0]

    @torch.jit.export
    def decode(self, codes: Tensor) -> Tensor:
        codes = self._check_codes(codes, "decode")
        return self.decoder(self.quantizer.decode(codes))

    @torch.jit.export
    def encode_latent(self, wav: Tensor) -> Tensor:
        wav = self._check_wav(wav, "encode_latent")
        return self.encoder(self._normalise(wav)[0])

    @torch.jit.export
    def quantize(self, latent: Tensor, n_q: int) -> Tensor:
        self._check_n_q(n_q, "quantize")
        latent = self._check_latent(latent, "quantize")
        return self.quantizer.encode(latent, n_q)

    @torch.jit.export
    def dequantize(self, codes: Tensor) -> Tensor:
        codes = self._check_codes(codes, "dequantize")
        return self.quantizer.decode(codes)

    @torch.jit.export
    def decode_latent(self, latent: Tensor) -> Tensor:
        latent = self._check_latent(latent, "decode_latent")
        return self.decoder(latent)

    def forward(self, wav: Tensor) -> Tensor:
        codes, scales = self.encode_segments(wav, self.max_codebooks)
        return self.decode_segments(codes, scales)


def build_model() -> EncodecTS48:
    return EncodecTS48().eval()
