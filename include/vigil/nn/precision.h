#pragma once
/// Reduced-precision inference: bfloat16 convolutions and matrix products on CPUs that have the instructions,
/// or int8 ResNet backbones after calibration (nn/quantize.h; this header only names and checks it).
///
/// How: the convolution and linear weights are stored in bfloat16 once, at load (half the memory), and the
/// forward pass runs under LibTorch's CPU autocast, which hands those ops bfloat16 inputs and leaves the rest
/// (box decoding, NMS, RoI Align, softmax) in float32. The models cast their heads' outputs back to float32
/// (a no-op in float32), so the code after them never sees bfloat16.

#include <torch/nn/module.h>

#include <string>

namespace vigil::nn {

enum class Precision { kFp32, kBf16, kInt8 };

/// "fp32", "bf16" or "int8"; anything else is an InvalidArgument that lists them.
Precision parse_precision(const std::string& name);
const char* precision_name(Precision p);

/// Throws InvalidArgument when this CPU cannot run `p` at full speed: bf16 needs AVX512_BF16 or AMX-BF16
/// (oneDNN would emulate it elsewhere, slower than float32), int8 needs VNNI (avx512_vnni, avx_vnni or
/// amx_int8; the int8 kernels are no faster than float32 without it) and LibTorch's oneDNN quantised
/// engine. The message names the CPU and the instructions.
void check_precision_supported(Precision p);

/// Stores the weights and biases of every convolution and linear layer of `root` in bfloat16 (layout kept).
/// Inference only, after fold_batch_norms. Returns the number of tensors converted.
int convert_weights_to_bf16(torch::nn::Module& root);

/// Runs this thread's LibTorch ops under CPU autocast to bfloat16 while alive (nothing otherwise); restores
/// the previous state and drops autocast's cast cache when it ends.
class PrecisionGuard {
 public:
  explicit PrecisionGuard(Precision p);
  ~PrecisionGuard();
  PrecisionGuard(const PrecisionGuard&) = delete;
  PrecisionGuard& operator=(const PrecisionGuard&) = delete;

 private:
  bool active_ = false;
  bool was_enabled_ = false;
  c10::ScalarType was_dtype_ = c10::ScalarType::BFloat16;
};

/// `t` in float32: the heads' outputs under a PrecisionGuard, an int8 FPN's quantised levels (dequantised).
/// Returns `t` itself when it already is.
inline torch::Tensor to_float32(const torch::Tensor& t) {
  if (!t.defined() || t.scalar_type() == torch::kFloat32) return t;
  return t.is_quantized() ? t.dequantize() : t.to(torch::kFloat32);
}

}  // namespace vigil::nn
