#include "vigil/nn/ops/roi_align.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "vigil/core/error.h"
#include "vigil/core/thread_pool.h"

namespace vigil::nn::ops {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct RoIAlignParams {
  double spatial_scale;
  int64_t pooled_height;
  int64_t pooled_width;
  int64_t sampling_ratio;
  bool aligned;
};

// One roi mapped onto the feature map: start, bin size and sampling grid, computed in T exactly as the
// reference kernel does (no rounding; the order of float operations matters for parity).
template <typename T>
struct RoiGeometry {
  int64_t batch_index;
  T start_h;
  T start_w;
  T bin_h;
  T bin_w;
  int grid_h;
  int grid_w;

  RoiGeometry(const T* roi, const RoIAlignParams& p) {
    const T scale = static_cast<T>(p.spatial_scale);
    batch_index = static_cast<int64_t>(roi[0]);
    const T offset = p.aligned ? static_cast<T>(0.5) : static_cast<T>(0.0);
    start_w = roi[1] * scale - offset;
    start_h = roi[2] * scale - offset;
    const T end_w = roi[3] * scale - offset;
    const T end_h = roi[4] * scale - offset;
    T roi_width = end_w - start_w;
    T roi_height = end_h - start_h;
    if (!p.aligned) {  // legacy behaviour: malformed rois are forced to 1x1
      roi_width = std::max(roi_width, static_cast<T>(1.));
      roi_height = std::max(roi_height, static_cast<T>(1.));
    }
    bin_h = roi_height / static_cast<T>(p.pooled_height);
    bin_w = roi_width / static_cast<T>(p.pooled_width);
    grid_h = p.sampling_ratio > 0 ? static_cast<int>(p.sampling_ratio)
                                  : static_cast<int>(std::ceil(roi_height / p.pooled_height));
    grid_w = p.sampling_ratio > 0 ? static_cast<int>(p.sampling_ratio)
                                  : static_cast<int>(std::ceil(roi_width / p.pooled_width));
  }

  T sample_y(int64_t ph, int iy) const {
    return start_h + ph * bin_h + static_cast<T>(iy + .5f) * bin_h / static_cast<T>(grid_h);
  }
  T sample_x(int64_t pw, int ix) const {
    return start_w + pw * bin_w + static_cast<T>(ix + .5f) * bin_w / static_cast<T>(grid_w);
  }
};

// Four neighbour offsets and bilinear weights of one sampling point; all-zero weights when the point lies
// more than one pixel outside the map.
template <typename T>
struct Bilinear {
  int64_t pos[4] = {0, 0, 0, 0};
  T w[4] = {0, 0, 0, 0};
  bool valid = false;
};

template <typename T>
Bilinear<T> bilinear(int64_t height, int64_t width, T y, T x) {
  Bilinear<T> b;
  if (y < -1.0 || y > height || x < -1.0 || x > width) return b;
  if (y <= 0) y = 0;
  if (x <= 0) x = 0;
  int64_t y_low = static_cast<int>(y);
  int64_t x_low = static_cast<int>(x);
  int64_t y_high;
  int64_t x_high;
  if (y_low >= height - 1) {
    y_high = y_low = height - 1;
    y = static_cast<T>(y_low);
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= width - 1) {
    x_high = x_low = width - 1;
    x = static_cast<T>(x_low);
  } else {
    x_high = x_low + 1;
  }
  const T ly = y - y_low;
  const T lx = x - x_low;
  const T hy = 1. - ly;
  const T hx = 1. - lx;
  b.pos[0] = y_low * width + x_low;
  b.pos[1] = y_low * width + x_high;
  b.pos[2] = y_high * width + x_low;
  b.pos[3] = y_high * width + x_high;
  b.w[0] = hy * hx;
  b.w[1] = hy * lx;
  b.w[2] = ly * hx;
  b.w[3] = ly * lx;
  b.valid = true;
  return b;
}

// Runs fn(begin, end) over [0, n) on torch's intra-op thread count. at::parallel_for cannot be used: with
// LibTorch's OpenMP backend it is a header template that runs serially unless this file is built with
// -fopenmp (measured: no speed-up at 2 threads). Small jobs stay on the calling thread, where spawning
// would cost more than it saves.
void parallel_ranges(int64_t n, int64_t work_per_item, const std::function<void(int64_t, int64_t)>& fn,
                     int64_t chunks_per_thread = 4) {
  constexpr int64_t kMinParallelWork = 1 << 16;
  const int64_t threads = at::get_num_threads();
  if (threads <= 1 || n < 2 || n * work_per_item < kMinParallelWork) {
    if (n > 0) fn(0, n);
    return;
  }
  // A few chunks per thread balance rois of very different sizes (channels have equal work: one each).
  const int64_t chunks = std::min(n, threads * chunks_per_thread);
  vigil::parallel_for(static_cast<size_t>(chunks), static_cast<size_t>(threads), [&](size_t k) {
    const int64_t i = static_cast<int64_t>(k);
    fn(n * i / chunks, n * (i + 1) / chunks);
  });
}

// Forward for one roi: the interpolation weights are shared by every channel, so they are computed once
// per roi (the reference kernel's pre_calc) and then applied channel by channel.
template <typename T>
void forward_roi(const T* input, const T* roi, T* out, int64_t channels, int64_t height, int64_t width,
                 const RoIAlignParams& p, std::vector<Bilinear<T>>& pre) {
  const RoiGeometry<T> g(roi, p);
  const int64_t bins = p.pooled_height * p.pooled_width;
  const int64_t per_bin = static_cast<int64_t>(g.grid_h) * g.grid_w;
  pre.resize(bins * per_bin);
  int64_t k = 0;
  for (int64_t ph = 0; ph < p.pooled_height; ++ph) {
    for (int64_t pw = 0; pw < p.pooled_width; ++pw) {
      for (int iy = 0; iy < g.grid_h; ++iy) {
        const T y = g.sample_y(ph, iy);
        for (int ix = 0; ix < g.grid_w; ++ix) pre[k++] = bilinear<T>(height, width, y, g.sample_x(pw, ix));
      }
    }
  }
  // An empty grid outputs zeros rather than dividing by zero.
  const T count = static_cast<T>(std::max<int64_t>(per_bin, 1));
  for (int64_t c = 0; c < channels; ++c) {
    const T* in_c = input + (g.batch_index * channels + c) * height * width;
    T* out_c = out + c * bins;
    k = 0;
    for (int64_t bin = 0; bin < bins; ++bin) {
      T val = 0.;
      for (int64_t s = 0; s < per_bin; ++s, ++k) {
        const auto& pc = pre[k];
        val += pc.w[0] * in_c[pc.pos[0]] + pc.w[1] * in_c[pc.pos[1]] + pc.w[2] * in_c[pc.pos[2]] +
               pc.w[3] * in_c[pc.pos[3]];
      }
      out_c[bin] = val / count;
    }
  }
}

template <typename T>
void forward_kernel(const torch::Tensor& input, const torch::Tensor& rois, torch::Tensor& output,
                    const RoIAlignParams& p) {
  const int64_t channels = input.size(1);
  const int64_t height = input.size(2);
  const int64_t width = input.size(3);
  const T* in = input.data_ptr<T>();
  const T* r = rois.data_ptr<T>();
  T* out = output.data_ptr<T>();
  const int64_t out_per_roi = channels * p.pooled_height * p.pooled_width;
  // Rois are independent, so splitting them across threads leaves every output bit-identical.
  parallel_ranges(rois.size(0), out_per_roi * 4, [&](int64_t begin, int64_t end) {
    std::vector<Bilinear<T>> pre;
    for (int64_t n = begin; n < end; ++n) {
      forward_roi<T>(in, r + n * 5, out + n * out_per_roi, channels, height, width, p, pre);
    }
  });
}

// Backward for channels [c_begin, c_end) over all rois, in the reference kernel's (roi, bin, sample) order
// for each channel: a gradient cell then receives its contributions in the same sequence, so even float32
// sums are identical. The interpolation weights of a roi are shared by every channel, so they are computed
// once per roi and chunk (computing them per channel, as a per-channel loop does, was 14% of a Faster R-CNN
// training step).
template <typename T>
void backward_channels(const T* grad, const T* rois, T* grad_in, int64_t num_rois, int64_t c_begin,
                       int64_t c_end, int64_t channels, int64_t height, int64_t width,
                       const RoIAlignParams& p) {
  const int64_t bins = p.pooled_height * p.pooled_width;
  std::vector<Bilinear<T>> pre;
  for (int64_t n = 0; n < num_rois; ++n) {
    const RoiGeometry<T> g(rois + n * 5, p);
    const int64_t per_bin = static_cast<int64_t>(g.grid_h) * g.grid_w;
    pre.resize(bins * per_bin);
    int64_t k = 0;
    for (int64_t ph = 0; ph < p.pooled_height; ++ph) {
      for (int64_t pw = 0; pw < p.pooled_width; ++pw) {
        for (int iy = 0; iy < g.grid_h; ++iy) {
          const T y = g.sample_y(ph, iy);
          for (int ix = 0; ix < g.grid_w; ++ix) pre[k++] = bilinear<T>(height, width, y, g.sample_x(pw, ix));
        }
      }
    }
    const T count = static_cast<T>(g.grid_h * g.grid_w);
    for (int64_t c = c_begin; c < c_end; ++c) {
      T* gin_c = grad_in + (g.batch_index * channels + c) * height * width;
      const T* gout = grad + (n * channels + c) * bins;
      k = 0;
      for (int64_t bin = 0; bin < bins; ++bin) {
        const T gbin = gout[bin];
        for (int64_t s = 0; s < per_bin; ++s, ++k) {
          const auto& b = pre[k];
          if (!b.valid) continue;
          for (int q = 0; q < 4; ++q) gin_c[b.pos[q]] += static_cast<T>(gbin * b.w[q] / count);
        }
      }
    }
  }
}

template <typename T>
void backward_kernel(const torch::Tensor& grad, const torch::Tensor& rois, torch::Tensor& grad_input,
                     const RoIAlignParams& p) {
  const int64_t channels = grad_input.size(1);
  const int64_t height = grad_input.size(2);
  const int64_t width = grad_input.size(3);
  const T* g = grad.data_ptr<T>();
  const T* r = rois.data_ptr<T>();
  T* gin = grad_input.data_ptr<T>();
  // Channels write disjoint slices of grad_input, so they can run in parallel without atomics.
  parallel_ranges(
      channels, grad.numel() / std::max<int64_t>(channels, 1) * 4,
      [&](int64_t begin, int64_t end) {
        backward_channels<T>(g, r, gin, rois.size(0), begin, end, channels, height, width, p);
      },
      /*chunks_per_thread=*/1);
}

torch::Tensor roi_align_forward(const torch::Tensor& input, const torch::Tensor& rois,
                                const RoIAlignParams& p) {
  auto output = torch::zeros({rois.size(0), input.size(1), p.pooled_height, p.pooled_width}, input.options());
  if (output.numel() == 0) return output;
  const auto input_c = input.contiguous();
  const auto rois_c = rois.contiguous();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "vigil_roi_align_forward",
                             [&] { forward_kernel<scalar_t>(input_c, rois_c, output, p); });
  return output;
}

torch::Tensor roi_align_backward(const torch::Tensor& grad, const torch::Tensor& rois,
                                 c10::IntArrayRef input_shape, const RoIAlignParams& p) {
  auto grad_input = torch::zeros(input_shape, grad.options());
  if (grad.numel() == 0) return grad_input;
  const auto grad_c = grad.contiguous();
  const auto rois_c = rois.contiguous();
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "vigil_roi_align_backward",
                             [&] { backward_kernel<scalar_t>(grad_c, rois_c, grad_input, p); });
  return grad_input;
}

class RoIAlignFunction : public torch::autograd::Function<RoIAlignFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, const torch::Tensor& rois,
                               double spatial_scale, int64_t pooled_height, int64_t pooled_width,
                               int64_t sampling_ratio, bool aligned) {
    ctx->saved_data["spatial_scale"] = spatial_scale;
    ctx->saved_data["pooled_height"] = pooled_height;
    ctx->saved_data["pooled_width"] = pooled_width;
    ctx->saved_data["sampling_ratio"] = sampling_ratio;
    ctx->saved_data["aligned"] = aligned;
    ctx->saved_data["input_shape"] = input.sizes();
    ctx->save_for_backward({rois});
    return roi_align_forward(input, rois, params(ctx));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_output) {
    const auto rois = ctx->get_saved_variables()[0];
    const auto shape = ctx->saved_data["input_shape"].toIntVector();
    const auto grad_in = roi_align_backward(grad_output[0], rois, shape, params(ctx));
    return {grad_in,         torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }

 private:
  static RoIAlignParams params(AutogradContext* ctx) {
    return {ctx->saved_data["spatial_scale"].toDouble(), ctx->saved_data["pooled_height"].toInt(),
            ctx->saved_data["pooled_width"].toInt(), ctx->saved_data["sampling_ratio"].toInt(),
            ctx->saved_data["aligned"].toBool()};
  }
};

void check_inputs(const torch::Tensor& input, const torch::Tensor& rois, std::array<int64_t, 2> output_size) {
  VIGIL_CHECK(input.dim() == 4, "expected input of shape [N, C, H, W], got {}", c10::str(input.sizes()));
  VIGIL_CHECK(rois.dim() == 2 && rois.size(1) == 5, "expected rois of shape [K, 5], got {}",
              c10::str(rois.sizes()));
  VIGIL_CHECK(input.scalar_type() == rois.scalar_type(),
              "expected input and rois of one dtype, got {} and {}", c10::toString(input.scalar_type()),
              c10::toString(rois.scalar_type()));
  VIGIL_CHECK(input.scalar_type() == torch::kFloat32 || input.scalar_type() == torch::kFloat64,
              "expected float32 or float64 input, got {}", c10::toString(input.scalar_type()));
  VIGIL_CHECK(input.device().is_cpu() && rois.device().is_cpu(), "expected CPU tensors, got {}",
              c10::str(input.device()));
  VIGIL_CHECK(output_size[0] > 0 && output_size[1] > 0, "expected a positive output size, got {}x{}",
              output_size[0], output_size[1]);
}

}  // namespace

torch::Tensor roi_align(const torch::Tensor& input, const torch::Tensor& rois,
                        std::array<int64_t, 2> output_size, double spatial_scale, int64_t sampling_ratio,
                        bool aligned) {
  check_inputs(input, rois, output_size);
  return RoIAlignFunction::apply(input, rois, spatial_scale, output_size[0], output_size[1], sampling_ratio,
                                 aligned);
}

torch::Tensor roi_align(const torch::Tensor& input, const std::vector<torch::Tensor>& boxes,
                        std::array<int64_t, 2> output_size, double spatial_scale, int64_t sampling_ratio,
                        bool aligned) {
  return roi_align(input, convert_boxes_to_roi_format(boxes), output_size, spatial_scale, sampling_ratio,
                   aligned);
}

torch::Tensor convert_boxes_to_roi_format(const std::vector<torch::Tensor>& boxes) {
  VIGIL_CHECK(!boxes.empty(), "expected at least one box tensor, got none");
  std::vector<torch::Tensor> ids;
  for (size_t i = 0; i < boxes.size(); ++i) {
    VIGIL_CHECK(boxes[i].dim() == 2 && boxes[i].size(1) == 4, "expected boxes[{}] of shape [L, 4], got {}", i,
                c10::str(boxes[i].sizes()));
    ids.push_back(torch::full_like(boxes[i].narrow(1, 0, 1), static_cast<int64_t>(i)));
  }
  return torch::cat({torch::cat(ids, 0), torch::cat(boxes, 0)}, 1);
}

}  // namespace vigil::nn::ops
