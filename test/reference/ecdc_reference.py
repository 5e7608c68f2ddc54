"""Meta's .ecdc container (encodec/binary.py, encodec/compress.py and encodec/quantization/ac.py), restated
as the oracle for encodec-native's reader and writer.

  write CODES.npy AUDIO_LENGTH OUT.ecdc   codes [n_q, n_frames] -> .ecdc bytes, as Meta's compress_to_file
  read IN.ecdc OUT.npy                    .ecdc -> codes [n_q, n_frames] (and prints the metadata JSON)

With the entropy-coding language model (use_lm=True; the LM is test/reference/lm_reference.py, loaded from a
checkpoint in Meta's layout):

  write-lm MODEL AUDIO_LENGTH SEGMENTS_DIR LM.th OUT.ecdc
      MODEL is encodec_24khz or encodec_48khz; SEGMENTS_DIR holds codes_0.npy, codes_1.npy, ... ([K, T_i] per
      segment) and, for encodec_48khz, scales.npy (float32, one per segment). Prints JSON: per segment the payload
      bytes and the ideal size in bits, sum of -log2(q / 2^24) over the codes under the quantized CDFs.
  read-lm IN.ecdc LM.th OUT_DIR
      -> codes_i.npy (int16) and scales.npy as above (prints the metadata JSON). Raises EOFError / RuntimeError
      like Meta's.

Several of these commands in one process (torch imported once, each LM checkpoint read once: the commands are what
they are run one by one, each in turn):

  batch
      stdin: a JSON list of {"args": [COMMAND, ...], "threads": N (optional: ECDC_REFERENCE_THREADS for an LM
      command)}; prints a JSON list of what each command prints.
"""
import io
import json
import math
import os
import struct
import sys

import numpy as np

_HEADER = struct.Struct('!4sBI')
_MAGIC = b'ECDC'


class BitPacker:
    def __init__(self, bits, fo):
        self._current_value = 0
        self._current_bits = 0
        self.bits = bits
        self.fo = fo

    def push(self, value):
        self._current_value += (value << self._current_bits)
        self._current_bits += self.bits
        while self._current_bits >= 8:
            lower_8bits = self._current_value & 0xff
            self._current_bits -= 8
            self._current_value >>= 8
            self.fo.write(bytes([lower_8bits]))

    def flush(self):
        if self._current_bits:
            self.fo.write(bytes([self._current_value]))
            self._current_value = 0
            self._current_bits = 0
        self.fo.flush()


class BitUnpacker:
    def __init__(self, bits, fo):
        self.bits = bits
        self.fo = fo
        self._mask = (1 << bits) - 1
        self._current_value = 0
        self._current_bits = 0

    def pull(self):
        while self._current_bits < self.bits:
            buf = self.fo.read(1)
            if not buf:
                return None
            self._current_value += buf[0] << self._current_bits
            self._current_bits += 8
        out = self._current_value & self._mask
        self._current_value >>= self.bits
        self._current_bits -= self.bits
        return out


def write(codes, audio_length, fo):
    meta = json.dumps({'m': 'encodec_24khz', 'al': audio_length, 'nc': int(codes.shape[0]), 'lm': False}).encode('utf-8')
    fo.write(_HEADER.pack(_MAGIC, 0, len(meta)))
    fo.write(meta)
    packer = BitPacker(10, fo)
    for t in range(codes.shape[1]):
        for k in range(codes.shape[0]):
            packer.push(int(codes[k, t]))
    packer.flush()


def read(fo):
    magic, version, size = _HEADER.unpack(fo.read(_HEADER.size))
    assert magic == _MAGIC and version == 0
    meta = json.loads(fo.read(size).decode('utf-8'))
    frames = int(math.ceil(meta['al'] * 75 / 24000))
    unpacker = BitUnpacker(10, fo)
    codes = np.zeros((meta['nc'], frames), dtype=np.int64)
    for t in range(frames):
        for k in range(meta['nc']):
            value = unpacker.pull()
            if value is None:
                raise EOFError('The stream ended sooner than expected.')
            codes[k, t] = value
    return meta, codes


def main(argv):
    """Runs one command (the usage above); prints what it prints."""
    if argv[0] in ('write-lm', 'read-lm'):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import ecdc_lm_reference  # torch is imported only for LM-coded files
        ecdc_lm_reference.main(argv)
    elif argv[0] == 'write':
        with open(argv[3], 'wb') as fo:
            write(np.load(argv[1]), int(argv[2]), fo)
    else:
        with open(argv[1], 'rb') as fo:
            meta, codes = read(fo)
        np.save(argv[2], codes)
        print(json.dumps(meta))


def batch(jobs):
    """Runs each job's command in turn; returns what each printed."""
    import contextlib
    outputs = []
    threads = os.environ.get('ECDC_REFERENCE_THREADS')
    for job in jobs:
        if job.get('threads') is not None:
            os.environ['ECDC_REFERENCE_THREADS'] = str(job['threads'])
        elif threads is None:
            os.environ.pop('ECDC_REFERENCE_THREADS', None)
        else:
            os.environ['ECDC_REFERENCE_THREADS'] = threads
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(job['args'])
        outputs.append(out.getvalue())
    return outputs


if __name__ == '__main__':
    if sys.argv[1] == 'batch':
        print(json.dumps(batch(json.load(sys.stdin))))
    else:
        main(sys.argv[1:])
