#include "spectral.h"

#include <torch/types.h>  // the operators (spectral.h has only torch::Tensor)
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "errors.h"
#include "promise_worker.h"
#include "tensor_io.h"

namespace encodec {

namespace {

// Non-negative least-squares updates for the mel -> linear power estimate, and the Griffin-Lim
// momentum of Perraudin et al. ("fast Griffin-Lim", librosa's default).
constexpr int kNnlsIterations = 60;
constexpr double kMomentum = 0.99;
// Griffin-Lim's initial phase is random but seeded, so reconstructions are reproducible.
constexpr uint64_t kPhaseSeed = 0x5eed;
constexpr double kPi = 3.14159265358979323846;

torch::Tensor HannWindow(int64_t n_fft) {
  return torch::hann_window(n_fft, /*periodic=*/true, torch::TensorOptions().dtype(torch::kFloat32));
}

// Complex STFT [n_fft / 2 + 1, 1 + length / hop] of 1-D samples, frames centred with zero padding.
torch::Tensor Stft(const torch::Tensor& samples, const torch::Tensor& window, const StftSettings& s) {
  return torch::stft(samples, s.n_fft, s.hop_length, s.n_fft, window, /*center=*/true, "constant",
                     /*normalized=*/false, /*onesided=*/true, /*return_complex=*/true);
}

torch::Tensor Istft(const torch::Tensor& spectrum, const torch::Tensor& window, const StftSettings& s, int64_t length) {
  return torch::istft(spectrum, s.n_fft, s.hop_length, s.n_fft, window, /*center=*/true, /*normalized=*/false,
                      /*onesided=*/true, length, /*return_complex=*/false);
}

}  // namespace

torch::Tensor MelSpectrogram(const torch::Tensor& samples, const torch::Tensor& filterbank, const StftSettings& stft,
                             int64_t block_frames) {
  c10::InferenceMode inference;
  const torch::Tensor window = HannWindow(stft.n_fft);
  // Mel filters are narrow triangles: the sparse product costs O(nonzeros x frames), not O(mels x bins x frames).
  const torch::Tensor fb = filterbank.to_sparse();
  // Centred frames: zero padding of n_fft / 2 on both sides, as torch.stft(center=True, pad_mode='constant').
  const int64_t pad = stft.n_fft / 2;
  const torch::Tensor padded = torch::constant_pad_nd(samples, {pad, pad}, 0);
  const int64_t frames = 1 + (padded.numel() - stft.n_fft) / stft.hop_length;
  torch::Tensor mel = torch::empty({filterbank.size(0), frames}, torch::TensorOptions().dtype(torch::kFloat32));
  // Blocks of frames bound the complex spectrogram held at once (hours of audio would need gigabytes).
  for (int64_t f0 = 0; f0 < frames; f0 += block_frames) {
    const int64_t f1 = std::min(frames, f0 + block_frames);
    const torch::Tensor segment = padded.slice(0, f0 * stft.hop_length, (f1 - 1) * stft.hop_length + stft.n_fft);
    const torch::Tensor spectrum = torch::stft(segment, stft.n_fft, stft.hop_length, stft.n_fft, window, /*center=*/false,
                                               "constant", /*normalized=*/false, /*onesided=*/true, /*return_complex=*/true);
    mel.slice(1, f0, f1).copy_(torch::mm(fb, spectrum.abs().pow(2)));
  }
  return mel;
}

torch::Tensor MelToAudio(const torch::Tensor& mel, const torch::Tensor& filterbank, const StftSettings& stft,
                         int64_t iterations, int64_t length) {
  c10::InferenceMode inference;
  const torch::Tensor fb = filterbank.to_sparse();
  const torch::Tensor fb_t = filterbank.t().contiguous().to_sparse();
  const torch::Tensor target = mel.clamp_min(0);

  // Linear power P >= 0 minimising |fb P - mel|^2: start from the filter-weighted average of the mel
  // values over each bin, then multiplicative (Lee-Seung) updates, which keep P non-negative.
  const torch::Tensor numerator = torch::mm(fb_t, target);
  const torch::Tensor coverage = filterbank.sum(0).unsqueeze(1).clamp_min(1e-12);
  torch::Tensor power = numerator / coverage;
  const double tiny = 1e-30;
  for (int i = 0; i < kNnlsIterations; ++i) {
    power = power * numerator / (torch::mm(fb_t, torch::mm(fb, power)) + tiny);
  }
  const torch::Tensor magnitude = power.sqrt();

  const torch::Tensor window = HannWindow(stft.n_fft);
  auto generator = at::detail::createCPUGenerator(kPhaseSeed);
  torch::Tensor phase = torch::rand(magnitude.sizes(), generator, torch::TensorOptions().dtype(torch::kFloat32)) * (2 * kPi);
  torch::Tensor angles = torch::polar(torch::ones_like(phase), phase);
  torch::Tensor rebuilt = torch::zeros_like(angles);
  const double step = kMomentum / (1 + kMomentum);
  for (int64_t i = 0; i < iterations; ++i) {
    torch::Tensor previous = rebuilt;
    torch::Tensor inverse = Istft(magnitude * angles, window, stft, length);
    rebuilt = Stft(inverse, window, stft);
    angles = rebuilt - previous * step;
    angles = angles / (angles.abs() + 1e-16);
  }
  return Istft(magnitude * angles, window, stft, length).contiguous();
}

namespace {

StftSettings ReadStftSettings(const Napi::CallbackInfo& info, size_t at) {
  StftSettings s;
  s.n_fft = ReadInteger(info[at], "nFft", 16, 1 << 16);
  s.hop_length = ReadInteger(info[at + 1], "hopLength", 1, s.n_fft / 2);
  return s;
}

torch::Tensor ReadFilterbank(const Napi::Value& value, int64_t n_mels, const StftSettings& s) {
  torch::Tensor fb = CopyFloat32Array(value, "filterbank");
  const int64_t bins = s.n_fft / 2 + 1;
  if (fb.numel() != n_mels * bins) {
    throw NativeError(ErrorKind::Range, "filterbank has " + std::to_string(fb.numel()) + " values; expected nMels x (nFft / 2 + 1) = " +
                                           std::to_string(n_mels) + " x " + std::to_string(bins));
  }
  return fb.view({n_mels, bins});
}

// Computes a power mel spectrogram off the event loop.
class MelSpectrogramWorker : public PromiseWorker {
 public:
  MelSpectrogramWorker(Napi::Env env, const Napi::CallbackInfo& info) : PromiseWorker(env, "encodec-native:melSpectrogram") {
    samples_ = Borrow(info[0], "samples");
    const int64_t n_mels = ReadInteger(info[2], "nMels", 1, 1 << 16);
    stft_ = ReadStftSettings(info, 3);
    filterbank_ = ReadFilterbank(info[1], n_mels, stft_);
    if (!info[5].IsUndefined()) block_frames_ = ReadInteger(info[5], "blockFrames", 1, int64_t{1} << 30);
  }

 protected:
  void Run() override { mel_ = MelSpectrogram(samples_, filterbank_, stft_, block_frames_); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("data", TensorToTypedArray(env, mel_));
    out.Set("nMels", Napi::Number::New(env, static_cast<double>(mel_.size(0))));
    out.Set("nFrames", Napi::Number::New(env, static_cast<double>(mel_.size(1))));
    mel_ = torch::Tensor();
    return out;
  }

 private:
  torch::Tensor samples_, filterbank_, mel_;
  StftSettings stft_{};
  int64_t block_frames_ = kDefaultBlockFrames;
};

// Inverts a power mel spectrogram to samples off the event loop.
class MelToAudioWorker : public PromiseWorker {
 public:
  MelToAudioWorker(Napi::Env env, const Napi::CallbackInfo& info) : PromiseWorker(env, "encodec-native:melToAudio") {
    torch::Tensor mel = CopyFloat32Array(info[0], "mel");
    const int64_t n_mels = ReadInteger(info[2], "nMels", 1, 1 << 16);
    stft_ = ReadStftSettings(info, 3);
    filterbank_ = ReadFilterbank(info[1], n_mels, stft_);
    iterations_ = ReadInteger(info[5], "iterations", 1, 10000);
    length_ = ReadInteger(info[6], "length", 1, int64_t{1} << 40);
    if (mel.numel() % n_mels != 0) {
      throw NativeError(ErrorKind::Range, "mel has " + std::to_string(mel.numel()) + " values, not a multiple of nMels = " +
                                             std::to_string(n_mels) + "; the layout is [nMels, nFrames]");
    }
    const int64_t frames = mel.numel() / n_mels;
    const int64_t expected = 1 + length_ / stft_.hop_length;
    if (frames != expected) {
      throw NativeError(ErrorKind::Range, "mel has " + std::to_string(frames) + " frames but " + std::to_string(length_) +
                                             " samples need 1 + length / hopLength = " + std::to_string(expected));
    }
    mel_ = mel.view({n_mels, frames});  // copies own their data: nothing to keep alive
  }

 protected:
  void Run() override { audio_ = MelToAudio(mel_, filterbank_, stft_, iterations_, length_); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Value out = TensorToTypedArray(env, audio_);
    audio_ = torch::Tensor();
    return out;
  }

 private:
  torch::Tensor mel_, filterbank_, audio_;
  StftSettings stft_{};
  int64_t iterations_ = 0, length_ = 0;
};

template <typename Worker>
Napi::Value StartWorker(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value { return QueueWork<Worker>(info.Env(), info); });
}

}  // namespace

Napi::Value MelSpectrogramJs(const Napi::CallbackInfo& info) { return StartWorker<MelSpectrogramWorker>(info); }

Napi::Value MelToAudioJs(const Napi::CallbackInfo& info) { return StartWorker<MelToAudioWorker>(info); }

}  // namespace encodec
