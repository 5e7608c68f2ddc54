"""The EnCodec 48 kHz family (stereo, non-causal SEANet with time-group norm, 16-layer residual VQ) of the shared
TorchScript modules in encodec_ts.py.

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

from typing import Tuple

import torch
from torch import Tensor

try:  # package-relative or script-relative import
    from . import encodec_ts as ets
except ImportError:  # pragma: no cover - when exporter/ is on sys.path
    import encodec_ts as ets

# Meta's segment = 1.0 s and overlap = 0.01; the LSTM runs a segment's 150 steps at once
ENCODEC_48KHZ = ets.Family("encodec_48khz", 48000, 2, [3.0, 6.0, 12.0, 24.0], 16, causal=False,
                           lstm_segment_steps=150, segment_seconds=1.0, overlap=0.01)

# the family's values under the names the other exporter modules use
NAME = ENCODEC_48KHZ.name
SAMPLE_RATE = ENCODEC_48KHZ.sample_rate
CHANNELS = ENCODEC_48KHZ.channels
HOP_LENGTH = ENCODEC_48KHZ.hop_length
FRAME_RATE = ENCODEC_48KHZ.frame_rate
DIMENSION = ENCODEC_48KHZ.dimension
MAX_CODEBOOKS = ENCODEC_48KHZ.max_codebooks
CODEBOOK_SIZE = ENCODEC_48KHZ.codebook_size
BANDWIDTHS = ENCODEC_48KHZ.bandwidths
SEGMENT_SECONDS = ENCODEC_48KHZ.segment_seconds
OVERLAP = ENCODEC_48KHZ.overlap
SEGMENT_SAMPLES = ENCODEC_48KHZ.segment_samples
SEGMENT_STRIDE = ENCODEC_48KHZ.segment_stride
SEGMENT_FRAMES = ENCODEC_48KHZ.segment_frames


def n_q_for_bandwidth(bandwidth_kbps: float) -> int:
    return ENCODEC_48KHZ.n_q_for_bandwidth(bandwidth_kbps)


class EncodecTS48(ets.EncodecBase):
    """EnCodec 48 kHz for TorchScript: the shared modules built for ENCODEC_48KHZ, coding normalised segments. See
    the module docstring for the method contract."""

    def __init__(self):
        super().__init__(ENCODEC_48KHZ)
        self.segment_samples = SEGMENT_SAMPLES
        self.segment_stride = SEGMENT_STRIDE
        # the intra-op thread count whose rounding of the scales Meta's model gives; the addon sets it to the
        # model's threads when it loads the file
        self.scale_threads = 1

    def _check_wav_size(self, wav: Tensor, fn: str):
        if wav.size(0) < 1 or wav.size(2) < 1 or wav.size(2) > self.segment_samples:
            raise RuntimeError("encodec: {}: wav must have B >= 1 segments of 1 to {} samples, got {}".format(
                fn, self.segment_samples, wav.size()))

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
        mono mix, rounded as Meta's float32 ops round it on one [1, 2, T] segment with `scale_threads` intra-op
        threads. ATen sums a lone row of more than 32768 (its grain) samples in two halves, one per thread, when it
        has 2+ threads, and any row of a batch of rows whole on one thread; so each row's sum is taken whole (rows of
        a batch of at least two) or in Meta's two halves, whatever this call's own thread count."""
        mono = wav.mean(dim=1, keepdim=True)
        squares = mono.pow(2)
        length = squares.size(2)
        if self.scale_threads >= 2 and length > 32768:
            half = (length + 1) // 2
            total = squares[:, :, :half].sum(dim=2, keepdim=True) + squares[:, :, half:].sum(dim=2, keepdim=True)
            volume = (total / length).sqrt()
        else:
            rows = squares.size(0)
            if rows == 1:
                squares = torch.cat([squares, torch.zeros_like(squares)], dim=0)
            volume = squares.mean(dim=2, keepdim=True)[:rows].sqrt()
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
    def encode_latent(self, wav: Tensor) -> Tensor:
        wav = self._check_wav(wav, "encode_latent")
        return self.encoder(self._normalise(wav)[0])

    def forward(self, wav: Tensor) -> Tensor:
        codes, scales = self.encode_segments(wav, self.max_codebooks)
        return self.decode_segments(codes, scales)



# What the exported module offers beyond the whole-clip methods (encodec.json, read by lib/model/model-file.ts).
CAPABILITIES = {
    # encode_segments / decode_segments: one segment per batch row, codes with their scales
    "segment_methods": True,
    "cpu_batching": "lstm",
}
