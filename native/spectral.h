// Spectral operations on audio with libtorch's stft/istft: mel spectrograms and their inversion
// (mel -> linear magnitude -> Griffin-Lim). The mel filterbank is built by the TypeScript side
// (lib/dsp/mel.ts) and passed in, so its definition lives in one place.
#pragma once

#include <napi.h>
#include "torch_names.h"  // not torch/torch.h nor torch/types.h: see there

#include <cstdint>

namespace encodec {

// Short-time Fourier transform settings shared by the forward and inverse paths:
// periodic Hann window of n_fft samples, frames centred (zero padding of n_fft / 2 at both ends).
struct StftSettings {
  int64_t n_fft;
  int64_t hop_length;
};

// Frames per STFT block in MelSpectrogram: 4096 frames of 2049 bins is 67 MB of complex spectrum.
constexpr int64_t kDefaultBlockFrames = 4096;

// Power mel spectrogram of 1-D float32 `samples`: filterbank [n_mels, n_fft / 2 + 1] times |STFT|^2,
// computed `block_frames` frames at a time (the result does not depend on the block size).
// Returns float32 [n_mels, 1 + samples / hop_length] (for even n_fft).
torch::Tensor MelSpectrogram(const torch::Tensor& samples, const torch::Tensor& filterbank, const StftSettings& stft,
                             int64_t block_frames = kDefaultBlockFrames);

// Audio from a power mel spectrogram [n_mels, n_frames]: non-negative least-squares estimate of the
// linear power spectrum (multiplicative updates), then `iterations` of fast Griffin-Lim (momentum 0.99)
// from a seeded random phase. Returns float32 samples of exactly `length` samples.
torch::Tensor MelToAudio(const torch::Tensor& mel, const torch::Tensor& filterbank, const StftSettings& stft,
                         int64_t iterations, int64_t length);

// melSpectrogram(samples: Float32Array, filterbank: Float32Array, nMels, nFft, hopLength, blockFrames?)
//   -> Promise<{ data: Float32Array, nMels, nFrames }>   (data laid out [nMels, nFrames])
Napi::Value MelSpectrogramJs(const Napi::CallbackInfo& info);

// melToAudio(mel: Float32Array, filterbank: Float32Array, nMels, nFft, hopLength, iterations, length)
//   -> Promise<Float32Array>   (mel laid out [nMels, nFrames], power, not dB)
Napi::Value MelToAudioJs(const Napi::CallbackInfo& info);

}  // namespace encodec
