// The baseline for the addon-overhead benchmark: calls the TorchScript module's encode/decode directly from
// C++ with the same runtime settings as native/session.cc (fuser off, inference mode, same thread count),
// on raw float32 samples, and prints the seconds of each repetition as JSON.
//
//   direct MODEL.pt SAMPLES.f32 THREADS REPS N_Q
// Build: bench/run.ts compiles it with g++ against the system libtorch.
#include <ATen/Parallel.h>
#include <torch/csrc/jit/passes/tensorexpr_fuser.h>
#include <torch/script.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: direct MODEL.pt SAMPLES.f32 THREADS REPS N_Q\n";
    return 2;
  }
  try {
    const int threads = std::stoi(argv[3]);
    const int reps = std::stoi(argv[4]);
    const int64_t n_q = std::stoll(argv[5]);
    std::ifstream in(argv[2], std::ios::binary | std::ios::ate);
    if (!in) throw std::runtime_error(std::string("cannot open ") + argv[2]);
    const auto bytes = static_cast<size_t>(in.tellg());
    std::vector<float> samples(bytes / sizeof(float));
    in.seekg(0);
    in.read(reinterpret_cast<char*>(samples.data()), static_cast<std::streamsize>(samples.size() * sizeof(float)));

    torch::jit::setTensorExprFuserEnabled(false);
    at::set_num_threads(threads);
    torch::jit::Module module = torch::jit::load(argv[1]);
    module.eval();
    c10::InferenceMode inference;
    torch::Tensor wav = torch::from_blob(samples.data(), {1, 1, static_cast<int64_t>(samples.size())}, torch::kFloat32);
    std::vector<double> encode_s, decode_s;
    for (int r = 0; r < reps; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      torch::Tensor codes = module.get_method("encode")({wav, n_q}).toTensor().to(torch::kInt16);
      auto t1 = std::chrono::steady_clock::now();
      torch::Tensor audio = module.get_method("decode")({codes}).toTensor();
      auto t2 = std::chrono::steady_clock::now();
      encode_s.push_back(std::chrono::duration<double>(t1 - t0).count());
      decode_s.push_back(std::chrono::duration<double>(t2 - t1).count());
      if (audio.numel() == 0) return 1;
    }
    auto list = [](const std::vector<double>& v) {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
      return s + "]";
    };
    std::printf("{\"threads\":%d,\"samples\":%zu,\"encode\":%s,\"decode\":%s}\n", at::get_num_threads(), samples.size(),
                list(encode_s).c_str(), list(decode_s).c_str());
  } catch (const std::exception& e) {
    std::cerr << "direct: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
