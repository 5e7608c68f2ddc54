"""LM-coded .ecdc files (use_lm=True): Meta's encodec/quantization/ac.py (build_stable_quantized_cdf,
ArithmeticCoder, ArithmeticDecoder) and the use_lm paths of encodec/compress.py, restated as the oracle for
encodec-native. Run through ecdc_reference.py (write-lm / read-lm); the LM is lm_reference.py.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

from ecdc_reference import _HEADER, _MAGIC, BitPacker, BitUnpacker


def build_stable_quantized_cdf(pdf, total_range_bits, roundoff=1e-8, min_range=2, check=True):
    pdf = pdf.detach()
    if roundoff:
        pdf = (pdf / roundoff).floor() * roundoff
    total_range = 2 ** total_range_bits
    cardinality = len(pdf)
    alpha = min_range * cardinality / total_range
    assert alpha <= 1, "you must reduce min_range"
    ranges = (((1 - alpha) * total_range) * pdf).floor().long()
    ranges += min_range
    quantized_cdf = torch.cumsum(ranges, dim=-1)
    if min_range < 2:
        raise ValueError("min_range must be at least 2.")
    if check:
        assert quantized_cdf[-1] <= 2 ** total_range_bits, quantized_cdf[-1]
        if ((quantized_cdf[1:] - quantized_cdf[:-1]) < min_range).any() or quantized_cdf[0] < min_range:
            raise ValueError("You must increase your total_range_bits.")
    return quantized_cdf


class ArithmeticCoder:
    def __init__(self, fo, total_range_bits=24):
        assert total_range_bits <= 30
        self.total_range_bits = total_range_bits
        self.packer = BitPacker(bits=1, fo=fo)
        self.low = 0
        self.high = 0
        self.max_bit = -1

    @property
    def delta(self):
        return self.high - self.low + 1

    def _flush_common_prefix(self):
        assert self.high >= self.low, (self.low, self.high)
        assert self.high < 2 ** (self.max_bit + 1)
        while self.max_bit >= 0:
            b1 = self.low >> self.max_bit
            b2 = self.high >> self.max_bit
            if b1 == b2:
                self.low -= (b1 << self.max_bit)
                self.high -= (b1 << self.max_bit)
                assert self.high >= self.low, (self.high, self.low, self.max_bit)
                assert self.low >= 0
                self.max_bit -= 1
                self.packer.push(b1)
            else:
                break

    def push(self, symbol, quantized_cdf):
        while self.delta < 2 ** self.total_range_bits:
            self.low *= 2
            self.high = self.high * 2 + 1
            self.max_bit += 1
        range_low = 0 if symbol == 0 else quantized_cdf[symbol - 1].item()
        range_high = quantized_cdf[symbol].item() - 1
        effective_low = int(math.ceil(range_low * (self.delta / (2 ** self.total_range_bits))))
        effective_high = int(math.floor(range_high * (self.delta / (2 ** self.total_range_bits))))
        assert self.low <= self.high
        self.high = self.low + effective_high
        self.low = self.low + effective_low
        assert self.low <= self.high, (effective_low, effective_high, range_low, range_high)
        self._flush_common_prefix()
        assert self.low <= self.high
        assert self.max_bit >= -1
        assert self.max_bit <= 61, self.max_bit

    def flush(self):
        while self.max_bit >= 0:
            b1 = (self.low >> self.max_bit) & 1
            self.packer.push(b1)
            self.max_bit -= 1
        self.packer.flush()


class ArithmeticDecoder:
    def __init__(self, fo, total_range_bits=24):
        self.total_range_bits = total_range_bits
        self.low = 0
        self.high = 0
        self.current = 0
        self.max_bit = -1
        self.unpacker = BitUnpacker(bits=1, fo=fo)

    @property
    def delta(self):
        return self.high - self.low + 1

    def _flush_common_prefix(self):
        while self.max_bit >= 0:
            b1 = self.low >> self.max_bit
            b2 = self.high >> self.max_bit
            if b1 == b2:
                self.low -= (b1 << self.max_bit)
                self.high -= (b1 << self.max_bit)
                self.current -= (b1 << self.max_bit)
                assert self.high >= self.low
                assert self.low >= 0
                self.max_bit -= 1
            else:
                break

    def pull(self, quantized_cdf):
        while self.delta < 2 ** self.total_range_bits:
            bit = self.unpacker.pull()
            if bit is None:
                return None
            self.low *= 2
            self.high = self.high * 2 + 1
            self.current = self.current * 2 + bit
            self.max_bit += 1

        def bin_search(low_idx, high_idx):
            if high_idx < low_idx:
                raise RuntimeError("Binary search failed")
            mid = (low_idx + high_idx) // 2
            range_low = quantized_cdf[mid - 1].item() if mid > 0 else 0
            range_high = quantized_cdf[mid].item() - 1
            effective_low = int(math.ceil(range_low * (self.delta / (2 ** self.total_range_bits))))
            effective_high = int(math.floor(range_high * (self.delta / (2 ** self.total_range_bits))))
            low = effective_low + self.low
            high = effective_high + self.low
            if self.current >= low:
                if self.current <= high:
                    return (mid, low, high, self.current)
                else:
                    return bin_search(mid + 1, high_idx)
            else:
                return bin_search(low_idx, mid - 1)

        sym, self.low, self.high, self.current = bin_search(0, len(quantized_cdf) - 1)
        self._flush_common_prefix()
        return sym


# Meta's EncodecModel attributes that decide the segments: sample_rate, frame_rate, segment (s), overlap, normalize.
MODELS = {
    'encodec_24khz': {'sample_rate': 24000, 'frame_rate': 75, 'segment': None, 'overlap': 0.01, 'normalize': False},
    'encodec_48khz': {'sample_rate': 48000, 'frame_rate': 150, 'segment': 1., 'overlap': 0.01, 'normalize': True},
}


def segment_frames(model_name, audio_length):
    """Frames per segment, as decompress_from_file computes them from the header."""
    m = MODELS[model_name]
    segment_length = int(m['segment'] * m['sample_rate']) if m['segment'] else None
    segment_stride = max(1, int((1 - m['overlap']) * segment_length)) if segment_length else None
    segment_length = segment_length or audio_length
    segment_stride = segment_stride or audio_length
    out = []
    for offset in range(0, audio_length, segment_stride):
        this_segment_length = min(audio_length - offset, segment_length)
        out.append(int(math.ceil(this_segment_length * m['frame_rate'] / m['sample_rate'])))
    return out


def write_header(fo, metadata):
    meta = json.dumps(metadata).encode('utf-8')
    fo.write(_HEADER.pack(_MAGIC, 0, len(meta)))
    fo.write(meta)


@torch.no_grad()
def write_lm(fo, model_name, audio_length, segments, lm):
    """segments: [(codes [K, T] int64 tensor, scale float or None)]. Meta's compress_to_file with use_lm=True."""
    write_header(fo, {'m': model_name, 'al': audio_length, 'nc': int(segments[0][0].shape[0]), 'lm': True})
    stats = []
    for codes, scale in segments:
        if scale is not None:
            fo.write(struct.pack('!f', scale))
        start = fo.tell()
        frame = codes[None]
        _, K, T = frame.shape
        coder = ArithmeticCoder(fo)
        states = None
        offset = 0
        input_ = torch.zeros(1, K, 1, dtype=torch.long)
        bits = 0.0
        for t in range(T):
            probas, states, offset = lm(input_, states, offset)
            input_ = 1 + frame[:, :, t: t + 1]
            for k, value in enumerate(frame[0, :, t].tolist()):
                q_cdf = build_stable_quantized_cdf(probas[0, :, k, 0], coder.total_range_bits, check=False)
                coder.push(value, q_cdf)
                width = q_cdf[value].item() - (q_cdf[value - 1].item() if value > 0 else 0)
                bits -= math.log2(width / 2 ** coder.total_range_bits)
        coder.flush()
        stats.append({'bytes': fo.tell() - start, 'ideal_bits': bits})
    return stats


def _read_exactly(fo, size):
    buf = b''
    while len(buf) < size:
        new_buf = fo.read(size)
        if not new_buf:
            raise EOFError("Impossible to read enough data from the stream, "
                           f"{size} bytes remaining.")
        buf += new_buf
        size -= len(new_buf)
    return buf


@torch.no_grad()
def read_lm(fo, lm):
    """Meta's decompress_from_file with use_lm=True, up to the codes: (metadata, [(codes [K, T], scale or None)])."""
    magic, version, size = _HEADER.unpack(_read_exactly(fo, _HEADER.size))
    assert magic == _MAGIC and version == 0
    meta = json.loads(_read_exactly(fo, size).decode('utf-8'))
    assert meta['lm'] is True
    num_codebooks = meta['nc']
    segments = []
    for frame_length in segment_frames(meta['m'], meta['al']):
        scale = None
        if MODELS[meta['m']]['normalize']:
            scale, = struct.unpack('!f', _read_exactly(fo, struct.calcsize('!f')))
        decoder = ArithmeticDecoder(fo)
        states = None
        offset = 0
        input_ = torch.zeros(1, num_codebooks, 1, dtype=torch.long)
        frame = torch.zeros(1, num_codebooks, frame_length, dtype=torch.long)
        for t in range(frame_length):
            probas, states, offset = lm(input_, states, offset)
            code_list = []
            for k in range(num_codebooks):
                q_cdf = build_stable_quantized_cdf(probas[0, :, k, 0], decoder.total_range_bits, check=False)
                code = decoder.pull(q_cdf)
                if code is None:
                    raise EOFError("The stream ended sooner than expected.")
                code_list.append(code)
            frame[0, :, t] = torch.tensor(code_list, dtype=torch.long)
            input_ = 1 + frame[:, :, t: t + 1]
        segments.append((frame[0], scale))
    return meta, segments


_LOADED = {}


def _lm(path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from lm_reference import load_lm
    # The LM's probabilities depend on torch's intra-op thread count: one thread, the addon's default, unless
    # ECDC_REFERENCE_THREADS says otherwise.
    torch.set_num_threads(int(os.environ.get('ECDC_REFERENCE_THREADS', '1')))
    # read once per process (ecdc_reference.py batch): the module keeps no state between calls
    if path not in _LOADED:
        _LOADED[path] = load_lm(path)
    return _LOADED[path]


def _load_segments(directory):
    n = len([f for f in os.listdir(directory) if f.startswith('codes_') and f.endswith('.npy')])
    scales_path = os.path.join(directory, 'scales.npy')
    scales = np.load(scales_path) if os.path.exists(scales_path) else None
    return [(torch.from_numpy(np.load(os.path.join(directory, 'codes_%d.npy' % i)).astype(np.int64)),
             None if scales is None else float(scales[i])) for i in range(n)]


def main(argv):
    if argv[0] == 'write-lm':
        model_name, audio_length, seg_dir, lm_path, out = argv[1:6]
        with open(out, 'wb') as fo:
            stats = write_lm(fo, model_name, int(audio_length), _load_segments(seg_dir), _lm(lm_path))
        print(json.dumps(stats))
    elif argv[0] == 'read-lm':
        with open(argv[1], 'rb') as fo:
            meta, segments = read_lm(fo, _lm(argv[2]))
        os.makedirs(argv[3], exist_ok=True)
        for i, (codes, _) in enumerate(segments):
            np.save(os.path.join(argv[3], 'codes_%d.npy' % i), codes.numpy().astype(np.int16))
        if segments and segments[0][1] is not None:
            np.save(os.path.join(argv[3], 'scales.npy'), np.array([s for _, s in segments], dtype=np.float32))
        print(json.dumps(meta))
    else:
        raise SystemExit('usage: write-lm MODEL AUDIO_LENGTH SEGMENTS_DIR LM.th OUT.ecdc | read-lm IN.ecdc LM.th OUT_DIR')
