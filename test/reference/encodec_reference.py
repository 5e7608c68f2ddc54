"""Independent eager EnCodec 24 kHz reference (the oracle for parity tests).

Written in the style of Meta's facebookresearch/encodec (MIT): NormConv1d / NormConvTranspose1d with
torch.nn.utils.weight_norm hooks, SConv1d / SConvTranspose1d with pad1d / unpad1d, SLSTM,
SEANetResnetBlock, SEANetEncoder / SEANetDecoder, EuclideanCodebook / VectorQuantization /
ResidualVectorQuantization / ResidualVectorQuantizer and an EncodecModel-like wrapper.
It loads an official-layout state_dict with load_state_dict(strict=True). It deliberately does NOT
import anything from exporter/ (Hugging Face names are converted back to official ones here).

    model = load_reference("checkpoint.th" or "model.safetensors")
    codes = model.encode(wav[B,1,T], n_q=8)      # int64 [B, n_q, ceil(T/320)]
    audio = model.decode(codes)                  # float32 [B, 1, F*320]
"""

import json
import math
import os
import re
import struct
import typing as tp
from collections import OrderedDict

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import weight_norm


# ----------------------------------------------------------------------------------- conv.py
def get_extra_padding_for_conv1d(x: torch.Tensor, kernel_size: int, stride: int,
                                 padding_total: int = 0) -> int:
    length = x.shape[-1]
    n_frames = (length - kernel_size + padding_total) / stride + 1
    ideal_length = (math.ceil(n_frames) - 1) * stride + (kernel_size - padding_total)
    return ideal_length - length


def pad1d(x: torch.Tensor, paddings: tp.Tuple[int, int], mode: str = 'zero', value: float = 0.):
    length = x.shape[-1]
    padding_left, padding_right = paddings
    assert padding_left >= 0 and padding_right >= 0, (padding_left, padding_right)
    if mode == 'reflect':
        max_pad = max(padding_left, padding_right)
        extra_pad = 0
        if length <= max_pad:
            extra_pad = max_pad - length + 1
            x = F.pad(x, (0, extra_pad))
        padded = F.pad(x, paddings, mode, value)
        end = padded.shape[-1] - extra_pad
        return padded[..., :end]
    else:
        return F.pad(x, paddings, mode, value)


def unpad1d(x: torch.Tensor, paddings: tp.Tuple[int, int]):
    padding_left, padding_right = paddings
    assert padding_left >= 0 and padding_right >= 0, (padding_left, padding_right)
    assert (padding_left + padding_right) <= x.shape[-1]
    end = x.shape[-1] - padding_right
    return x[..., padding_left: end]


class NormConv1d(nn.Module):
    def __init__(self, *args, causal: bool = False, norm: str = 'weight_norm', **kwargs):
        super().__init__()
        conv = nn.Conv1d(*args, **kwargs)
        self.conv = weight_norm(conv) if norm == 'weight_norm' else conv
        self.norm = nn.Identity()

    def forward(self, x):
        return self.norm(self.conv(x))


class NormConvTranspose1d(nn.Module):
    def __init__(self, *args, causal: bool = False, norm: str = 'weight_norm', **kwargs):
        super().__init__()
        convtr = nn.ConvTranspose1d(*args, **kwargs)
        self.convtr = weight_norm(convtr) if norm == 'weight_norm' else convtr
        self.norm = nn.Identity()

    def forward(self, x):
        return self.norm(self.convtr(x))


class SConv1d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, groups: int = 1, bias: bool = True, causal: bool = False,
                 norm: str = 'weight_norm', pad_mode: str = 'reflect'):
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
        extra_padding = get_extra_padding_for_conv1d(x, kernel_size, stride, padding_total)
        if self.causal:
            x = pad1d(x, (padding_total, extra_padding), mode=self.pad_mode)
        else:
            padding_right = padding_total // 2
            padding_left = padding_total - padding_right
            x = pad1d(x, (padding_left, padding_right + extra_padding), mode=self.pad_mode)
        return self.conv(x)


class SConvTranspose1d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 causal: bool = False, norm: str = 'weight_norm', trim_right_ratio: float = 1.):
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
            y = unpad1d(y, (padding_left, padding_right))
        else:
            padding_right = padding_total // 2
            padding_left = padding_total - padding_right
            y = unpad1d(y, (padding_left, padding_right))
        return y


# ----------------------------------------------------------------------------------- lstm.py
class SLSTM(nn.Module):
    def __init__(self, dimension: int, num_layers: int = 2, skip: bool = True):
        super().__init__()
        self.skip = skip
        self.lstm = nn.LSTM(dimension, dimension, num_layers)

    def forward(self, x):
        x = x.permute(2, 0, 1)
        y, _ = self.lstm(x)
        if self.skip:
            y = y + x
        y = y.permute(1, 2, 0)
        return y


# ----------------------------------------------------------------------------------- seanet.py
class SEANetResnetBlock(nn.Module):
    def __init__(self, dim: int, kernel_sizes: tp.List[int] = [3, 1], dilations: tp.List[int] = [1, 1],
                 causal: bool = True, pad_mode: str = 'reflect', compress: int = 2, true_skip: bool = False):
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
    def __init__(self, channels: int = 1, dimension: int = 128, n_filters: int = 32, n_residual_layers: int = 1,
                 ratios: tp.List[int] = [8, 5, 4, 2], kernel_size: int = 7, last_kernel_size: int = 7,
                 residual_kernel_size: int = 3, dilation_base: int = 2, causal: bool = True,
                 pad_mode: str = 'reflect', true_skip: bool = False, compress: int = 2, lstm: int = 2):
        super().__init__()
        self.ratios = list(reversed(ratios))
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
            model += [SLSTM(mult * n_filters, num_layers=lstm)]
        model += [nn.ELU(alpha=1.0),
                  SConv1d(mult * n_filters, dimension, last_kernel_size, causal=causal, pad_mode=pad_mode)]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


class SEANetDecoder(nn.Module):
    def __init__(self, channels: int = 1, dimension: int = 128, n_filters: int = 32, n_residual_layers: int = 1,
                 ratios: tp.List[int] = [8, 5, 4, 2], kernel_size: int = 7, last_kernel_size: int = 7,
                 residual_kernel_size: int = 3, dilation_base: int = 2, causal: bool = True,
                 pad_mode: str = 'reflect', true_skip: bool = False, compress: int = 2, lstm: int = 2,
                 trim_right_ratio: float = 1.0):
        super().__init__()
        self.ratios = ratios
        mult = int(2 ** len(self.ratios))
        model: tp.List[nn.Module] = [SConv1d(dimension, mult * n_filters, kernel_size, causal=causal,
                                             pad_mode=pad_mode)]
        if lstm:
            model += [SLSTM(mult * n_filters, num_layers=lstm)]
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


# ----------------------------------------------------------------------------------- core_vq.py
class EuclideanCodebook(nn.Module):
    def __init__(self, dim: int, codebook_size: int):
        super().__init__()
        self.codebook_size = codebook_size
        embed = torch.zeros(codebook_size, dim)
        self.register_buffer("inited", torch.Tensor([True]))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())

    def preprocess(self, x):
        return x.reshape(-1, x.shape[-1])  # rearrange "... d -> (...) d"

    def quantize(self, x):
        embed = self.embed.t()
        dist = -(
            x.pow(2).sum(1, keepdim=True)
            - 2 * x @ embed
            + embed.pow(2).sum(0, keepdim=True)
        )
        embed_ind = dist.max(dim=-1).indices
        return embed_ind

    def postprocess_emb(self, embed_ind, shape):
        return embed_ind.view(*shape[:-1])

    def dequantize(self, embed_ind):
        return F.embedding(embed_ind, self.embed)

    def encode(self, x):
        shape = x.shape
        x = self.preprocess(x)
        embed_ind = self.quantize(x)
        return self.postprocess_emb(embed_ind, shape)

    def decode(self, embed_ind):
        return self.dequantize(embed_ind)


class VectorQuantization(nn.Module):
    def __init__(self, dim: int, codebook_size: int):
        super().__init__()
        self.project_in = nn.Identity()
        self.project_out = nn.Identity()
        self._codebook = EuclideanCodebook(dim=dim, codebook_size=codebook_size)

    def encode(self, x):
        x = x.permute(0, 2, 1)  # rearrange "b d n -> b n d"
        x = self.project_in(x)
        return self._codebook.encode(x)

    def decode(self, embed_ind):
        quantize = self._codebook.decode(embed_ind)
        quantize = self.project_out(quantize)
        return quantize.permute(0, 2, 1)  # rearrange "b n d -> b d n"


class ResidualVectorQuantization(nn.Module):
    def __init__(self, *, num_quantizers, **kwargs):
        super().__init__()
        self.layers = nn.ModuleList([VectorQuantization(**kwargs) for _ in range(num_quantizers)])

    def encode(self, x: torch.Tensor, n_q: tp.Optional[int] = None) -> torch.Tensor:
        residual = x
        all_indices = []
        n_q = n_q or len(self.layers)
        for layer in self.layers[:n_q]:
            indices = layer.encode(residual)
            quantized = layer.decode(indices)
            residual = residual - quantized
            all_indices.append(indices)
        return torch.stack(all_indices)

    def decode(self, q_indices: torch.Tensor) -> torch.Tensor:
        quantized_out = torch.tensor(0.0, device=q_indices.device)
        for i, indices in enumerate(q_indices):
            layer = self.layers[i]
            quantized = layer.decode(indices)
            quantized_out = quantized_out + quantized
        return quantized_out


class ResidualVectorQuantizer(nn.Module):
    def __init__(self, dimension: int = 128, n_q: int = 32, bins: int = 1024):
        super().__init__()
        self.n_q = n_q
        self.dimension = dimension
        self.bins = bins
        self.vq = ResidualVectorQuantization(dim=dimension, codebook_size=bins, num_quantizers=n_q)

    def get_num_quantizers_for_bandwidth(self, frame_rate: int, bandwidth: tp.Optional[float] = None) -> int:
        bw_per_q = math.log2(self.bins) * frame_rate
        n_q = self.n_q
        if bandwidth and bandwidth > 0.:
            n_q = int(max(1, math.floor(bandwidth * 1000 / bw_per_q)))
        return n_q

    def encode(self, x: torch.Tensor, n_q: int) -> torch.Tensor:
        return self.vq.encode(x, n_q=n_q)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.vq.decode(codes)


# ----------------------------------------------------------------------------------- model.py
class EncodecModel(nn.Module):
    """encodec_model_24khz(): causal, mono, no normalisation, whole-file (segment=None)."""

    def __init__(self):
        super().__init__()
        self.encoder = SEANetEncoder(causal=True)
        self.decoder = SEANetDecoder(causal=True)
        self.quantizer = ResidualVectorQuantizer(dimension=128, n_q=32, bins=1024)
        self.sample_rate = 24000
        self.channels = 1
        self.frame_rate = math.ceil(self.sample_rate / int(np.prod(self.encoder.ratios)))

    def n_q_for_bandwidth(self, bandwidth: float) -> int:
        return self.quantizer.get_num_quantizers_for_bandwidth(self.frame_rate, bandwidth)

    @torch.no_grad()
    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, n_q: int) -> torch.Tensor:
        """x [B,1,T] -> codes [B, n_q, F] (EncodecModel._encode_frame with scale=None)."""
        assert x.dim() == 3 and x.shape[1] == 1
        emb = self.encoder(x)
        codes = self.quantizer.encode(emb, n_q)
        return codes.transpose(0, 1)

    @torch.no_grad()
    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        return self.quantizer.decode(codes.to(torch.long).transpose(0, 1))

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, n_q, F] -> audio [B, 1, F*320] (EncodecModel._decode_frame)."""
        emb = self.dequantize(codes)
        return self.decoder(emb)


# ----------------------------------------------------------------------------------- loading
def _read_safetensors(path: str) -> tp.Dict[str, torch.Tensor]:
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    header.pop("__metadata__", None)
    dt = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4", "BF16": "<u2"}
    out = OrderedDict()
    for name, info in header.items():
        b, e = info["data_offsets"]
        arr = np.frombuffer(buf[8 + n + b: 8 + n + e], dtype=dt[info["dtype"]]).reshape(info["shape"])
        if info["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(arr.astype(np.float32) if arr.dtype.kind == "f" else arr.copy())
    return out


def hf_to_official(sd: tp.Dict[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Hugging Face facebook/encodec_24khz names -> Meta names (needs the module types)."""
    ref = EncodecModel()
    convtr = {n for n, m in ref.named_modules() if isinstance(m, nn.ConvTranspose1d)}
    out = OrderedDict()
    for k, v in sd.items():
        k = re.sub(r"\.parametrizations\.weight\.original0$", ".weight_g", k)
        k = re.sub(r"\.parametrizations\.weight\.original1$", ".weight_v", k)
        m = re.match(r"^quantizer\.layers\.(\d+)\.codebook\.(.*)$", k)
        if m:
            out["quantizer.vq.layers.%s._codebook.%s" % m.groups()] = v
            continue
        m = re.match(r"^(encoder|decoder)\.layers\.(.*)\.conv\.(bias|weight_g|weight_v)$", k)
        if m:
            part, mid, leaf = m.groups()
            base = "%s.model.%s" % (part, mid)
            if base + ".convtr.convtr" in convtr:
                out[base + ".convtr.convtr." + leaf] = v
            else:
                out[base + ".conv.conv." + leaf] = v
            continue
        out[re.sub(r"^(encoder|decoder)\.layers\.", r"\1.model.", k)] = v
    return out


def read_state_dict(path: str) -> tp.Dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        sd = _read_safetensors(path)
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
