{
  # Alternative build with node-gyp, for Debian/Ubuntu's libtorch-dev (the main build is CMakeLists.txt
  # with cmake-js, which also finds upstream and CUDA libtorch). Usage: npx node-gyp rebuild
  "targets": [
    {
      "target_name": "encodec_native",
      "sources": [
        "native/addon.cc",
        "native/allocator.cc",
        "native/arith_coder.cc",
        "native/aten_gelu.cc",
        "native/aten_layer_norm.cc",
        "native/aten_softmax.cc",
        "native/call_threads.cc",
        "native/errors.cc",
        "native/lanes.cc",
        "native/lm_block.cc",
        "native/lm_kv_plan.cc",
        "native/lm_matvec.cc",
        "native/lm_model.cc",
        "native/lm_pair.cc",
        "native/lm_session.cc",
        "native/lm_step.cc",
        "native/lm_window.cc",
        "native/lm_workers.cc",
        "native/model.cc",
        "native/promise_worker.cc",
        "native/quantized_cdf.cc",
        "native/session.cc",
        "native/spectral.cc",
        "native/tensor_io.cc",
        "native/workers.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "/usr/include/torch/csrc/api/include"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "_GLIBCXX_USE_CXX11_ABI=1"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-Wno-unused-parameter"],
      "libraries": ["-Wl,--no-as-needed", "-ltorch", "-ltorch_cpu", "-lc10"]
    }
  ]
}
