"""Meta's .ecdc container for encodec_48khz (the lm=False path of encodec/compress.py: compress_to_file and
decompress_from_file with a segmented, normalising model), restated as the oracle for encodec-native.

  write CODES.npy SCALES.npy AUDIO_LENGTH OUT.ecdc   codes [n_q, frames of all segments], scales [segments] -> .ecdc
  read IN.ecdc CODES.npy SCALES.npy                  .ecdc -> codes and scales (prints the metadata JSON)

Per segment (offsets range(0, al, 47520), each up to 48000 samples): the scale as struct '!f', then the segment's
codes frame by frame through a fresh BitPacker, flushed.
"""
import json
import math
import struct
import sys

import numpy as np

from ecdc_reference import _HEADER, _MAGIC, BitPacker, BitUnpacker

SEGMENT_LENGTH = 48000
SEGMENT_STRIDE = 47520
FRAME_RATE = 150
SAMPLE_RATE = 48000


def segment_frames(audio_length):
    out = []
    for offset in range(0, audio_length, SEGMENT_STRIDE):
        this_segment_length = min(audio_length - offset, SEGMENT_LENGTH)
        out.append(int(math.ceil(this_segment_length * FRAME_RATE / SAMPLE_RATE)))
    return out


def write(codes, scales, audio_length, fo):
    meta = json.dumps({'m': 'encodec_48khz', 'al': audio_length, 'nc': int(codes.shape[0]), 'lm': False}).encode('utf-8')
    fo.write(_HEADER.pack(_MAGIC, 0, len(meta)))
    fo.write(meta)
    start = 0
    for k, frames in enumerate(segment_frames(audio_length)):
        fo.write(struct.pack('!f', float(scales[k])))
        packer = BitPacker(10, fo)
        for t in range(start, start + frames):
            for q in range(codes.shape[0]):
                packer.push(int(codes[q, t]))
        packer.flush()
        start += frames


def read(fo):
    magic, version, size = _HEADER.unpack(fo.read(_HEADER.size))
    assert magic == _MAGIC and version == 0
    meta = json.loads(fo.read(size).decode('utf-8'))
    assert meta['m'] == 'encodec_48khz'
    frames_per = segment_frames(meta['al'])
    codes = np.zeros((meta['nc'], sum(frames_per)), dtype=np.int64)
    scales = np.zeros(len(frames_per), dtype=np.float32)
    start = 0
    for k, frames in enumerate(frames_per):
        scales[k], = struct.unpack('!f', fo.read(4))
        unpacker = BitUnpacker(10, fo)
        for t in range(start, start + frames):
            for q in range(meta['nc']):
                value = unpacker.pull()
                if value is None:
                    raise EOFError('The stream ended sooner than expected.')
                codes[q, t] = value
        start += frames
    return meta, codes, scales


if __name__ == '__main__':
    if sys.argv[1] == 'write':
        with open(sys.argv[5], 'wb') as fo:
            write(np.load(sys.argv[2]), np.load(sys.argv[3]), int(sys.argv[4]), fo)
    else:
        with open(sys.argv[2], 'rb') as fo:
            meta, codes, scales = read(fo)
        np.save(sys.argv[3], codes)
        np.save(sys.argv[4], scales)
        print(json.dumps(meta))
