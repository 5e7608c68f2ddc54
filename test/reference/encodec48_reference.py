"""Independent eager EnCodec 48 kHz reference (the oracle for the 48 kHz parity tests).

Written in the style of Meta's facebookresearch/encodec (MIT), ``EncodecModel.encodec_model_48khz()``:
SEANet with ``causal=False`` and ``norm='time_group_norm'`` (NormConv1d / NormConvTranspose1d holding ``conv`` /
``convtr`` and ``norm = nn.GroupNorm(1, C)``, no weight norm), 2 channels, 16 codebooks, ``normalize=True``,
``segment=1.0``, ``overlap=0.01``: ``encode`` cuts the audio into segments at offsets ``range(0, T, stride)``
and returns a list of ``(codes [B, n_q, F], scale [B, 1])``; ``decode`` decodes each segment and joins them with
``_linear_overlap_add``. Loads an official-layout state_dict with ``load_state_dict(strict=True)``; Hugging Face
names are converted back here. It does NOT import anything from exporter/.

    model = load_reference("random48.th" or "model.safetensors")
    frames = model.encode(wav[B, 2, T], n_q=8)     # [(codes, scale), ...] one per segment
    audio = model.decode(frames)[:, :, :T]          # float32 [B, 2, T]
"""

import math
import re
import typing as tp
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

import encodec_reference as r24

EncodedFrame = tp.Tuple[torch.Tensor, tp.Optional[torch.Tensor]]


# ----------------------------------------------------------------------------------- conv.py
class NormConv1d(nn.Module):
    def __init__(self, *args, causal: bool = False, norm: str = 'time_group_norm', **kwargs):
        super().__init__()
        self.conv = nn.Conv1d(*args, **kwargs)
        assert norm == 'time_group_norm' and not causal
        self.norm = nn.GroupNorm(1, self.conv.out_channels)

    def forward(self, x):
        x = self.conv(x)
        x = self.norm(x)
        return x


class NormConvTranspose1d(nn.Module):
    def __init__(self, *args, causal: bool = False, norm: str = 'time_group_norm', **kwargs):
        super().__init__()
        self.convtr = nn.ConvTranspose1d(*args, **kwargs)
        assert norm == 'time_group_norm' and not causal
        self.norm = nn.GroupNorm(1, self.convtr.out_channels)

    def forward(self, x):
        x = self.convtr(x)
        x = self.norm(x)
        return x


class SConv1d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, groups: int = 1, bias: bool = True, causal: bool = False,
                 norm: str = 'time_group_norm', pad_mode: str = 'reflect'):
        super().__init__()
        self.conv = NormConv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation,
                               groups=groups, bias=bias, causal=causal, norm=norm)
        self.causal = causal
        self.pad_mode = pad_mode

    def forward(self, x):
        B, C, T = x.shape
        kernel_size = self.conv.conv.kernel_size[0]
        stride = self.conv.conv.stride[0]
        dilation = self.conv.conv.dilation[0]
        padding_total = (kernel_size - 1) * dilation - (stride - 1)
        extra_padding = r24.get_extra_padding_for_conv1d(x, kernel_size, stride, padding_total)
        if self.causal:
            x = r24.pad1d(x, (padding_total, extra_padding), mode=self.pad_mode)
        else:
            # Asymmetric padding required for odd strides
            padding_right = padding_total // 2
            padding_left = padding_total - padding_right
            x = r24.pad1d(x, (padding_left, padding_right + extra_padding), mode=self.pad_mode)
        return self.conv(x)


class SConvTranspose1d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 causal: bool = False, norm: str = 'time_group_norm', trim_right_ratio: float = 1.):
        super().__init__()
        self.convtr = NormConvTranspose1d(in_channels, out_channels, kernel_size, stride,
                                          causal=causal, norm=norm)
        self.causal = causal
        self.trim_right_ratio = trim_right_ratio

    def forward(self, x):
        kernel_size = self.convtr.convtr.kernel_size[0]
        stride = self.convtr.convtr.stride[0]
        padding_total = kernel_size - stride
        y = self.convtr(x)
        if self.causal:
            padding_right = math.ceil(padding_total * self.trim_right_ratio)
            padding_left = padding_total - padding_right
            y = r24.unpad1d(y, (padding_left, padding_right))
        else:
            padding_right = padding_total // 2
            padding_left = padding_total - padding_right
            y = r24.unpad1d(y, (padding_left, padding_right))
        return y


# ----------------------------------------------------------------------------------- seanet.py
class SEANetResnetBlock(nn.Module):
    def __init__(self, dim: int, kernel_sizes: tp.List[int] = [3, 1], dilations: tp.List[int] = [1, 1],
                 causal: bool = False, pad_mode: str = 'reflect', compress: int = 2, true_skip: bool = False):
        super().__init__()
        hidden = dim // compress
        block = []
        for i, (kernel_size, dilation) in enumerate(zip(kernel_sizes, dilations)):
            in_chs = dim if i == 0 else hidden
            out_chs = dim if i == len(kernel_sizes) - 1 else hidden
            block += [nn.ELU(alpha=1.0),
                      SConv1d(in_chs, out_chs, kernel_size=kernel_size, dilation=dilation,
                              causal=causal, pad_mode=pad_mode)]
        self.block = nn.Sequential(*block)
        self.shortcut = nn.Identity() if true_skip else SConv1d(dim, dim, kernel_size=1, causal=causal,
                                                                  pad_mode=pad_mode)

    def forward(self, x):
        return self.shortcut(x) + self.block(x)


class SEANetEncoder(nn.Module):
    def __init__(self, channels: int = 2, dimension: int = 128, n_filters: int = 32, n_residual_layers: int = 1,
                 ratios: tp.List[int] = [8, 5, 4, 2], kernel_size: int = 7, last_kernel_size: int = 7,
                 residual_kernel_size: int = 3, dilation_base: int = 2, causal: bool = False,
                 pad_mode: str = 'reflect', true_skip: bool = False, compress: int = 2, lstm: int = 2):
        super().__init__()
        self.ratios = list(reversed(ratios))
        self.hop_length = int(np.prod(self.ratios))
        mult = 1
        model: tp.List[nn.Module] = [SConv1d(channels, mult * n_filters, kernel_size, causal=causal,
                                             pad_mode=pad_mode)]
        for i, ratio in enumerate(self.ratios):
            for j in range(n_residual_layers):
                model += [SEANetResnetBlock(mult * n_filters, kernel_sizes=[residual_kernel_size, 1],
                                            dilations=[dilation_base ** j, 1], causal=causal,
                                            pad_mode=pad_mode, compress=compress, true_skip=true_skip)]
            model += [nn.ELU(alpha=1.0),
                      SConv1d(mult * n_filters, mult * n_filters * 2, kernel_size=ratio * 2, stride=ratio,
                              causal=causal, pad_mode=pad_mode)]
            mult *= 2
        if lstm:
            model += [r24.SLSTM(mult * n_filters, num_layers=lstm)]
        model += [nn.ELU(alpha=1.0),
                  SConv1d(mult * n_filters, dimension, last_kernel_size, causal=causal, pad_mode=pad_mode)]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


class SEANetDecoder(nn.Module):
    def __init__(self, channels: int = 2, dimension: int = 128, n_filters: int = 32, n_residual_layers: int = 1,
                 ratios: tp.List[int] = [8, 5, 4, 2], kernel_size: int = 7, last_kernel_size: int = 7,
                 residual_kernel_size: int = 3, dilation_base: int = 2, causal: bool = False,
                 pad_mode: str = 'reflect', true_skip: bool = False, compress: int = 2, lstm: int = 2,
                 trim_right_ratio: float = 1.0):
        super().__init__()
        self.ratios = ratios
        mult = int(2 ** len(self.ratios))
        model: tp.List[nn.Module] = [SConv1d(dimension, mult * n_filters, kernel_size, causal=causal,
                                             pad_mode=pad_mode)]
        if lstm:
            model += [r24.SLSTM(mult * n_filters, num_layers=lstm)]
        for i, ratio in enumerate(self.ratios):
            model += [nn.ELU(alpha=1.0),
                      SConvTranspose1d(mult * n_filters, mult * n_filters // 2, kernel_size=ratio * 2,
                                       stride=ratio, causal=causal, trim_right_ratio=trim_right_ratio)]
            for j in range(n_residual_layers):
                model += [SEANetResnetBlock(mult * n_filters // 2, kernel_sizes=[residual_kernel_size, 1],
                                            dilations=[dilation_base ** j, 1], causal=causal,
                                            pad_mode=pad_mode, compress=compress, true_skip=true_skip)]
            mult //= 2
        model += [nn.ELU(alpha=1.0),
                  SConv1d(n_filters, channels, last_kernel_size, causal=causal, pad_mode=pad_mode)]
        self.model = nn.Sequential(*model)

    def forward(self, z):
        return self.model(z)


# ----------------------------------------------------------------------------------- utils.py
def _linear_overlap_add(frames: tp.List[torch.Tensor], stride: int):
    assert len(frames)
    device = frames[0].device
    dtype = frames[0].dtype
    shape = frames[0].shape[:-1]
    total_size = stride * (len(frames) - 1) + frames[-1].shape[-1]

    frame_length = frames[0].shape[-1]
    t = torch.linspace(0, 1, frame_length + 2, device=device, dtype=dtype)[1: -1]
    weight = 0.5 - (t - 0.5).abs()

    sum_weight = torch.zeros(total_size, device=device, dtype=dtype)
    out = torch.zeros(*shape, total_size, device=device, dtype=dtype)
    offset: int = 0

    for frame in frames:
        frame_length = frame.shape[-1]
        out[..., offset:offset + frame_length] += weight[:frame_length] * frame
        sum_weight[offset:offset + frame_length] += weight[:frame_length]
        offset += stride
    assert sum_weight.min() > 0
    return out / sum_weight


# ----------------------------------------------------------------------------------- model.py
class EncodecModel(nn.Module):
    """encodec_model_48khz(): non-causal, stereo, time-group norm, normalised 1 s segments with 1 % overlap."""

    def __init__(self):
        super().__init__()
        self.encoder = SEANetEncoder(channels=2, causal=False)
        self.decoder = SEANetDecoder(channels=2, causal=False)
        self.quantizer = r24.ResidualVectorQuantizer(dimension=128, n_q=16, bins=1024)
        self.target_bandwidths = [3., 6., 12., 24.]
        self.sample_rate = 48000
        self.channels = 2
        self.normalize = True
        self.segment = 1.
        self.overlap = 0.01
        self.frame_rate = math.ceil(self.sample_rate / np.prod(self.encoder.ratios))
        self.bandwidth: tp.Optional[float] = None

    @property
    def segment_length(self) -> int:
        return int(self.segment * self.sample_rate)

    @property
    def segment_stride(self) -> int:
        return max(1, int((1 - self.overlap) * self.segment_length))

    def n_q_for_bandwidth(self, bandwidth: float) -> int:
        return self.quantizer.get_num_quantizers_for_bandwidth(self.frame_rate, bandwidth)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, n_q: int) -> tp.List[EncodedFrame]:
        assert x.dim() == 3
        _, channels, length = x.shape
        assert channels > 0 and channels <= 2
        segment_length = self.segment_length
        stride = self.segment_stride
        encoded_frames: tp.List[EncodedFrame] = []
        for offset in range(0, length, stride):
            frame = x[:, :, offset: offset + segment_length]
            encoded_frames.append(self._encode_frame(frame, n_q))
        return encoded_frames

    def _encode_frame(self, x: torch.Tensor, n_q: int) -> EncodedFrame:
        length = x.shape[-1]
        duration = length / self.sample_rate
        assert self.segment is None or duration <= 1e-5 + self.segment
        if self.normalize:
            mono = x.mean(dim=1, keepdim=True)
            volume = mono.pow(2).mean(dim=2, keepdim=True).sqrt()
            scale = 1e-8 + volume
            x = x / scale
            scale = scale.view(-1, 1)
        else:
            scale = None
        emb = self.encoder(x)
        codes = self.quantizer.encode(emb, n_q)
        codes = codes.transpose(0, 1)
        return codes, scale

    @torch.no_grad()
    def decode(self, encoded_frames: tp.List[EncodedFrame]) -> torch.Tensor:
        frames = [self._decode_frame(frame) for frame in encoded_frames]
        return _linear_overlap_add(frames, self.segment_stride or 1)

    def _decode_frame(self, encoded_frame: EncodedFrame) -> torch.Tensor:
        codes, scale = encoded_frame
        codes = codes.to(torch.long).transpose(0, 1)
        emb = self.quantizer.decode(codes)
        out = self.decoder(emb)
        if scale is not None:
            out = out * scale.view(-1, 1, 1)
        return out

    @torch.no_grad()
    def forward(self, x: torch.Tensor, n_q: int = 16) -> torch.Tensor:
        return self.decode(self.encode(x, n_q))[:, :, :x.shape[-1]]


# ----------------------------------------------------------------------------------- loading
def hf_to_official(sd: tp.Dict[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Hugging Face facebook/encodec_48khz names -> Meta names (transformers' EncodecConv1d / EncodecConvTranspose1d
    hold `conv` and `norm`; the module types tell a transposed conv)."""
    ref = EncodecModel()
    convtr = {n for n, m in ref.named_modules() if isinstance(m, SConvTranspose1d)}
    out = OrderedDict()
    for k, v in sd.items():
        m = re.match(r"^quantizer\.layers\.(\d+)\.codebook\.(.*)$", k)
        if m:
            out["quantizer.vq.layers.%s._codebook.%s" % m.groups()] = v
            continue
        m = re.match(r"^(encoder|decoder)\.layers\.(.*)\.(conv|norm)\.(weight|bias)$", k)
        if m:
            part, mid, kind, leaf = m.groups()
            base = "%s.model.%s" % (part, mid)
            inner = "convtr" if base in convtr else "conv"
            out["%s.%s.%s.%s" % (base, inner, inner if kind == "conv" else "norm", leaf)] = v
            continue
        out[re.sub(r"^(encoder|decoder)\.layers\.", r"\1.model.", k)] = v
    return out


def read_state_dict(path: str) -> tp.Dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        sd = r24._read_safetensors(path)
    else:
        sd = torch.load(path, map_location="cpu")
        for key in ("state_dict", "model", "best_state"):
            if isinstance(sd, dict) and isinstance(sd.get(key), dict):
                sd = sd[key]
    if any(k.startswith(("encoder.layers.", "quantizer.layers.")) for k in sd):
        sd = hf_to_official(sd)
    return OrderedDict((k, v.to(torch.float32)) for k, v in sd.items())


def load_reference(path_or_state_dict) -> EncodecModel:
    sd = path_or_state_dict if isinstance(path_or_state_dict, dict) else read_state_dict(path_or_state_dict)
    if any(k.startswith(("encoder.layers.", "quantizer.layers.")) for k in sd):
        sd = hf_to_official(sd)
    model = EncodecModel()
    model.load_state_dict(sd, strict=True)
    return model.eval()
