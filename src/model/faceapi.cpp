// face-api.js's tiny face detector and SSD MobileNetV1, op for op from @vladmandic/face-api 1.7.15's source:
// src/tinyYolov2/TinyYolov2Base.ts (runMobilenet, extractBoxes, detect), src/ssdMobilenetv1/*.ts
// (mobileNetV1, predictionLayer, outputLayer, nonMaxSuppression, locateFaces), src/dom/NetInput.ts
// (toBatchTensor) and src/ops/{padToSquare,nonMaxSuppression,iou}.ts. TF is NHWC and LibTorch NCHW: weights
// are permuted once at load; TF's "same" padding is asymmetric (the extra row and column go at the end), so
// it is applied explicitly before every convolution and pooling.

#include "vigil/model/faceapi.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>

#include "tfjs_weights.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace vigil::model {
namespace {

namespace F = torch::nn::functional;
using Weights = std::map<std::string, torch::Tensor>;

// src/tinyFaceDetector/const.ts
constexpr double kTinyAnchors[5][2] = {{1.603231, 2.094468},
                                       {6.041143, 7.080126},
                                       {2.882459, 3.518061},
                                       {4.266906, 5.178857},
                                       {9.041765, 10.66308}};
constexpr float kTinyMeanRgb[3] = {117.001f, 114.697f, 97.404f};
constexpr double kTinyIou = 0.4;
constexpr int kTinyDefaultSize = 416;
// src/ssdMobilenetv1: the input side, NMS IoU, result cap and the batch norms' epsilon.
constexpr int kSsdSize = 512;
constexpr double kSsdIou = 0.5;
constexpr int kSsdMaxResults = 100;
constexpr double kSsdEpsilon = 0.0010000000474974513;

std::string shape_of(const torch::Tensor& t) {
  std::vector<std::string> parts;
  for (int64_t d : t.sizes()) parts.push_back(std::to_string(d));
  return "[" + join(parts, ", ") + "]";
}

/// A named weight the net needs, with its TF shape checked (-1: any size on that axis).
torch::Tensor need(const Weights& w, const std::string& name, const std::vector<int64_t>& shape,
                   const std::string& file) {
  auto it = w.find(name);
  if (it == w.end())
    throw DataError(fmt::format("{}: no weight '{}' (is this the right face-api.js model?)", file, name));
  bool ok = it->second.dim() == static_cast<int64_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || it->second.size(i) == shape[i];
  if (!ok) {
    std::vector<std::string> want;
    for (int64_t d : shape) want.push_back(d < 0 ? "?" : std::to_string(d));
    throw DataError(fmt::format("{}: weight '{}' has the shape {}, expected [{}]", file, name,
                                shape_of(it->second), join(want, ", ")));
  }
  return it->second;
}

/// Channels-last (NHWC) memory: LibTorch 1.13's oneDNN convolutions are ~100x faster on it than on NCHW for
/// the depthwise and 3-channel layers here (measured: 0.5 vs 52 ms for a 32x256x256 depthwise 3x3).
torch::Tensor nhwc(const torch::Tensor& t) {
  return t.contiguous(torch::MemoryFormat::ChannelsLast);
}

/// TF HWIO convolution filters -> torch OIHW (stored channels-last).
torch::Tensor oihw(const torch::Tensor& hwio) {
  return nhwc(hwio.permute({3, 2, 0, 1}));
}

/// TF depthwise filters [H, W, C, 1] -> torch grouped [C, 1, H, W] (stored channels-last).
torch::Tensor depthwise(const torch::Tensor& hwc1) {
  return nhwc(hwc1.permute({2, 3, 0, 1}));
}

/// TF's "same" padding of one axis for a k-wide window at stride s: output ceil(in / s), the odd pixel at the
/// end. {before, after}.
std::pair<int64_t, int64_t> same_pads(int64_t in, int64_t k, int64_t s) {
  const int64_t out = (in + s - 1) / s;
  const int64_t total = std::max<int64_t>((out - 1) * s + k - in, 0);
  return {total / 2, total - total / 2};
}

/// `x` padded as TF's "same" would for a k x k window at stride s.
torch::Tensor pad_same(const torch::Tensor& x, int64_t k, int64_t s, double value = 0) {
  const auto [top, bottom] = same_pads(x.size(2), k, s);
  const auto [left, right] = same_pads(x.size(3), k, s);
  if (top == 0 && bottom == 0 && left == 0 && right == 0) return x;
  return nhwc(F::pad(x, F::PadFuncOptions({left, right, top, bottom}).value(value)));
}

/// tf.maxPool([2, 2], stride, 'same'): the padding never wins.
torch::Tensor max_pool_same(const torch::Tensor& x, int64_t stride) {
  return torch::max_pool2d(pad_same(x, 2, stride, -std::numeric_limits<double>::infinity()), {2, 2},
                           {stride, stride});
}

/// face-api's leaky: relu(x - 0.1x) + 0.1x.
torch::Tensor leaky(const torch::Tensor& x) {
  return torch::leaky_relu(x, 0.10000000149011612);
}

/// A convolution with its filters in torch layout.
struct Conv {
  torch::Tensor weight, bias;
  int64_t stride = 1, groups = 1;
  /// TF "same": symmetric padding goes to the convolution itself (a separate pad costs a copy of the map);
  /// only the asymmetric case of stride 2 on an even side is padded first.
  torch::Tensor operator()(const torch::Tensor& x) const {
    const int64_t k = weight.size(2);
    const auto [top, bottom] = same_pads(x.size(2), k, stride);
    const auto [left, right] = same_pads(x.size(3), k, stride);
    const bool symmetric = top == bottom && left == right;
    return torch::conv2d(symmetric ? x : pad_same(x, k, stride), weight, bias,
                         torch::IntArrayRef{stride, stride},
                         symmetric ? torch::IntArrayRef{top, left} : torch::IntArrayRef{0, 0},
                         torch::IntArrayRef{1, 1}, groups);
  }
};

// ---- the tiny face detector (TinyYolov2Base.runMobilenet with withSeparableConvs, isFirstLayerConv2d) ----

struct TinyNet {
  torch::Tensor conv0_w, conv0_b;
  struct Separable {
    torch::Tensor depthwise, pointwise, bias;
  };
  std::vector<Separable> separable;  // conv1..conv5
  torch::Tensor conv8_w, conv8_b;

  TinyNet(const Weights& w, const std::string& file) {
    conv0_w = oihw(need(w, "conv0/filters", {3, 3, 3, -1}, file));
    conv0_b = need(w, "conv0/bias", {conv0_w.size(0)}, file);
    int64_t channels = conv0_w.size(0);
    for (int i = 1; i <= 5; ++i) {
      const std::string p = fmt::format("conv{}/", i);
      Separable s;
      s.depthwise = depthwise(need(w, p + "depthwise_filter", {3, 3, channels, 1}, file));
      s.pointwise = oihw(need(w, p + "pointwise_filter", {1, 1, channels, -1}, file));
      channels = s.pointwise.size(0);
      s.bias = need(w, p + "bias", {channels}, file);
      separable.push_back(std::move(s));
    }
    // The tiny face detector has one class and five anchors: 5 x (x, y, w, h, objectness) per cell.
    conv8_w = oihw(need(w, "conv8/filters", {1, 1, channels, 25}, file));
    conv8_b = need(w, "conv8/bias", {25}, file);
  }

  torch::Tensor forward(torch::Tensor x) const {
    x = leaky(torch::conv2d(x, conv0_w, conv0_b));  // 'valid'
    for (size_t i = 0; i < separable.size(); ++i) {
      x = max_pool_same(x, 2);
      const Separable& s = separable[i];
      x = torch::conv2d(x, s.depthwise, {}, torch::IntArrayRef{1, 1}, torch::IntArrayRef{1, 1},
                        torch::IntArrayRef{1, 1}, x.size(1));  // tf.pad by 1, then 'valid'
      x = leaky(torch::conv2d(x, s.pointwise, s.bias));
    }
    x = max_pool_same(x, 1);
    return torch::conv2d(x, conv8_w, conv8_b);
  }
};

// ---- SSD MobileNetV1 (mobileNetV1 + predictionLayer + outputLayer) -----------------------------------

/// pointwiseConvLayer: a convolution ('same'), the folded batch norm's offset, relu6.
Conv pointwise(const Weights& w, const std::string& prefix, int64_t stride, const std::string& file) {
  Conv c;
  c.weight = oihw(need(w, prefix + "/weights", {-1, -1, -1, -1}, file));
  c.bias = need(w, prefix + "/convolution_bn_offset", {c.weight.size(0)}, file);
  c.stride = stride;
  return c;
}

/// depthwiseConvLayer: depthwise 3x3 ('same'), batch norm (folded into the filters here), relu6.
Conv depthwise_bn(const Weights& w, int idx, int64_t stride, const std::string& file) {
  const std::string p = fmt::format("MobilenetV1/Conv2d_{}_depthwise/", idx);
  Conv c;
  const torch::Tensor filters = depthwise(need(w, p + "depthwise_weights", {3, 3, -1, 1}, file));
  const int64_t ch = filters.size(0);
  const torch::Tensor gamma = need(w, p + "BatchNorm/gamma", {ch}, file);
  const torch::Tensor beta = need(w, p + "BatchNorm/beta", {ch}, file);
  const torch::Tensor mean = need(w, p + "BatchNorm/moving_mean", {ch}, file);
  const torch::Tensor var = need(w, p + "BatchNorm/moving_variance", {ch}, file);
  const torch::Tensor scale = gamma / torch::sqrt(var + kSsdEpsilon);
  c.weight = nhwc(filters * scale.view({ch, 1, 1, 1}));
  c.bias = beta - mean * scale;
  c.stride = stride;
  c.groups = ch;
  return c;
}

struct SsdNet {
  Conv conv0;
  std::vector<std::pair<Conv, Conv>> pairs;  // conv_1..conv_13: depthwise, pointwise
  std::vector<Conv> extra;                   // Prediction/Conv2d_0..7_pointwise
  std::vector<std::pair<Conv, Conv>> heads;  // BoxPredictor_0..5: box encoding, class
  torch::Tensor anchors;                     // [N, 4]

  SsdNet(const Weights& w, const std::string& file) {
    conv0 = pointwise(w, "MobilenetV1/Conv2d_0_pointwise", 2, file);
    for (int i = 1; i <= 13; ++i) {
      const int64_t stride = (i == 2 || i == 4 || i == 6 || i == 12) ? 2 : 1;
      pairs.emplace_back(depthwise_bn(w, i, stride, file),
                         pointwise(w, fmt::format("MobilenetV1/Conv2d_{}_pointwise", i), 1, file));
    }
    for (int i = 0; i < 8; ++i)
      extra.push_back(
          pointwise(w, fmt::format("Prediction/Conv2d_{}_pointwise", i), i % 2 == 1 ? 2 : 1, file));
    for (int i = 0; i < 6; ++i) {
      const std::string p = fmt::format("Prediction/BoxPredictor_{}/", i);
      Conv box, cls;
      box.weight = oihw(need(w, p + "BoxEncodingPredictor/weights", {1, 1, -1, -1}, file));
      box.bias = need(w, p + "BoxEncodingPredictor/biases", {box.weight.size(0)}, file);
      cls.weight = oihw(need(w, p + "ClassPredictor/weights", {1, 1, -1, -1}, file));
      cls.bias = need(w, p + "ClassPredictor/biases", {cls.weight.size(0)}, file);
      if (box.weight.size(0) % 4 != 0 || cls.weight.size(0) != box.weight.size(0) / 4 * 3)
        throw DataError(
            fmt::format("{}: BoxPredictor_{} has {} box and {} class outputs; expected 4 and 3 per "
                        "anchor",
                        file, i, box.weight.size(0), cls.weight.size(0)));
      heads.emplace_back(std::move(box), std::move(cls));
    }
    anchors = need(w, "Output/extra_dim", {1, -1, 4}, file).view({-1, 4});
  }

  /// In place: LibTorch 1.13's out-of-place clamp on channels-last memory is ~60x slower (7 ms vs 0.06 ms for
  /// a 32x256x256 map, measured), and every input here is a fresh convolution output.
  static torch::Tensor relu6(torch::Tensor x) { return x.clamp_(0, 6); }

  /// Box encodings [B, N, 4] and face logits [B, N] (class 1 of background/face/unused).
  std::pair<torch::Tensor, torch::Tensor> forward(torch::Tensor x) const {
    x = relu6(conv0(x));
    torch::Tensor conv11;
    for (size_t i = 0; i < pairs.size(); ++i) {
      x = relu6(pairs[i].second(relu6(pairs[i].first(x))));
      if (i + 1 == 11) conv11 = x;
    }
    std::vector<torch::Tensor> maps = {conv11, x};
    torch::Tensor y = x;
    for (size_t i = 0; i < extra.size(); ++i) {
      y = relu6(extra[i](y));
      if (i % 2 == 1) maps.push_back(y);
    }
    std::vector<torch::Tensor> boxes, classes;
    const int64_t b = x.size(0);
    for (size_t i = 0; i < heads.size(); ++i) {
      boxes.push_back(heads[i].first(maps[i]).permute({0, 2, 3, 1}).reshape({b, -1, 4}));
      classes.push_back(heads[i].second(maps[i]).permute({0, 2, 3, 1}).reshape({b, -1, 3}));
    }
    return {torch::cat(boxes, 1), torch::cat(classes, 1).select(2, 1)};
  }

  /// outputLayer's decodeBoxesLayer: [B, N, 4] boxes (ymin, xmin, ymax, xmax) in the padded square's [0, 1].
  torch::Tensor decode(const torch::Tensor& enc, const std::string& file) const {
    if (enc.size(1) != anchors.size(0))
      throw DataError(
          fmt::format("{}: Output/extra_dim has {} anchors, but the net predicts {} boxes at 512 px", file,
                      anchors.size(0), enc.size(1)));
    const auto a = anchors.unbind(1);
    const torch::Tensor size0 = a[2] - a[0], size1 = a[3] - a[1];
    const torch::Tensor center0 = a[0] + size0 / 2, center1 = a[1] + size1 / 2;
    const auto e = enc.unbind(2);
    const torch::Tensor half0 = torch::exp(e[2] / 5) * size0 / 2;
    const torch::Tensor mid0 = e[0] / 10 * size0 + center0;
    const torch::Tensor half1 = torch::exp(e[3] / 5) * size1 / 2;
    const torch::Tensor mid1 = e[1] / 10 * size1 + center1;
    return torch::stack({mid0 - half0, mid1 - half1, mid0 + half0, mid1 + half1}, 2);
  }
};

// ---- input and output --------------------------------------------------------------------------------

/// NetInput.toBatchTensor for one image: RGB floats zero-padded at the bottom/right to a square, then
/// tf.image.resizeBilinear(size, alignCorners=false, halfPixelCenters=false) as tfjs-backend-cpu computes it
/// (columns first, then rows). [size, size, 3].
torch::Tensor to_square_input(const cv::Mat& image, bool rgb, int size) {
  cv::Mat converted;
  if (image.channels() == 3 && !rgb) {
    cv::cvtColor(image, converted, cv::COLOR_BGR2RGB);
  } else {
    converted = image.isContinuous() ? image : image.clone();
  }
  const int64_t h = converted.rows, w = converted.cols, m = std::max(h, w);
  const torch::Tensor pixels = torch::from_blob(converted.data, {h, w, 3}, torch::kUInt8).to(torch::kFloat32);
  torch::Tensor square = torch::zeros({m, m, 3});
  square.narrow(0, 0, h).narrow(1, 0, w).copy_(pixels);
  const double ratio = static_cast<double>(m) / size;
  std::vector<int64_t> lo(static_cast<size_t>(size)), hi(static_cast<size_t>(size));
  std::vector<float> frac(static_cast<size_t>(size));
  for (int i = 0; i < size; ++i) {
    const double src = ratio * i;
    const int64_t floor = std::max<int64_t>(0, static_cast<int64_t>(std::floor(src)));
    lo[i] = floor;
    hi[i] = std::min<int64_t>(m - 1, static_cast<int64_t>(std::ceil(src)));
    frac[i] = static_cast<float>(src - floor);
  }
  const torch::Tensor lo_t = torch::tensor(lo), hi_t = torch::tensor(hi), frac_t = torch::tensor(frac);
  const torch::Tensor left = square.index_select(1, lo_t), right = square.index_select(1, hi_t);
  const torch::Tensor cols = left + (right - left) * frac_t.view({1, size, 1});
  const torch::Tensor top = cols.index_select(0, lo_t), bottom = cols.index_select(0, hi_t);
  return top + (bottom - top) * frac_t.view({size, 1, 1});
}

/// computeReshapedDimensions: the image scaled so its long side is `size`, rounded as Math.round.
std::pair<double, double> reshaped(int width, int height, int size) {
  const double scale = static_cast<double>(size) / std::max(width, height);
  return {std::floor(width * scale + 0.5), std::floor(height * scale + 0.5)};
}

double sigmoid(double x) {
  return 1 / (1 + std::exp(-x));
}

/// A candidate in relative coordinates, before NMS.
struct Candidate {
  double x1, y1, x2, y2;
  double score;
};

/// src/ops/nonMaxSuppression.ts (tiny detector): stable ascending sort, pop the best, drop IoU > thr.
std::vector<size_t> nms_tiny(const std::vector<Candidate>& c, double iou_threshold) {
  std::vector<size_t> order(c.size());
  for (size_t i = 0; i < c.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return c[a].score < c[b].score; });
  std::vector<size_t> pick;
  while (!order.empty()) {
    const size_t cur = order.back();
    order.pop_back();
    pick.push_back(cur);
    std::vector<size_t> keep;
    for (size_t idx : order) {
      const Candidate &a = c[cur], &b = c[idx];
      const double iw = std::max(0.0, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
      const double ih = std::max(0.0, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
      const double inter = iw * ih;
      const double area_a = (a.x2 - a.x1) * (a.y2 - a.y1), area_b = (b.x2 - b.x1) * (b.y2 - b.y1);
      if (inter / (area_a + area_b - inter) <= iou_threshold) keep.push_back(idx);
    }
    order = std::move(keep);
  }
  return pick;
}

/// src/ssdMobilenetv1/nonMaxSuppression.ts: score > thr, stable descending sort, compare with the kept boxes
/// newest first. boxes: [N, 4] (ymin, xmin, ymax, xmax) accessor.
std::vector<int64_t> nms_ssd(const torch::TensorAccessor<float, 2>& boxes, const std::vector<float>& scores,
                             size_t max_output, double iou_threshold, double score_threshold) {
  std::vector<int64_t> candidates;
  for (size_t i = 0; i < scores.size(); ++i)
    if (scores[i] > score_threshold) candidates.push_back(static_cast<int64_t>(i));
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
  auto iou = [&](int64_t i, int64_t j) {
    const double yi0 = std::min(boxes[i][0], boxes[i][2]), xi0 = std::min(boxes[i][1], boxes[i][3]);
    const double yi1 = std::max(boxes[i][0], boxes[i][2]), xi1 = std::max(boxes[i][1], boxes[i][3]);
    const double yj0 = std::min(boxes[j][0], boxes[j][2]), xj0 = std::min(boxes[j][1], boxes[j][3]);
    const double yj1 = std::max(boxes[j][0], boxes[j][2]), xj1 = std::max(boxes[j][1], boxes[j][3]);
    const double area_i = (yi1 - yi0) * (xi1 - xi0), area_j = (yj1 - yj0) * (xj1 - xj0);
    if (area_i <= 0 || area_j <= 0) return 0.0;
    const double inter = std::max(std::min(yi1, yj1) - std::max(yi0, yj0), 0.0) *
                         std::max(std::min(xi1, xj1) - std::max(xi0, xj0), 0.0);
    return inter / (area_i + area_j - inter);
  };
  std::vector<int64_t> selected;
  const size_t limit = std::min(max_output, scores.size());
  for (int64_t c : candidates) {
    if (selected.size() >= limit) break;
    bool suppressed = false;
    for (size_t j = selected.size(); j-- > 0;) {
      const double v = iou(c, selected[j]);
      if (v == 0.0) continue;
      if (v > iou_threshold) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) selected.push_back(c);
  }
  return selected;
}

}  // namespace

std::string faceapi_net_name(FaceApiNet net) {
  return net == FaceApiNet::kTinyFaceDetector ? "tiny_face_detector" : "ssd_mobilenetv1";
}

std::vector<std::string> faceapi_net_names() {
  return {"tiny_face_detector", "ssd_mobilenetv1"};
}

FaceApiNet parse_faceapi_net(const std::string& name) {
  if (name == "tiny_face_detector") return FaceApiNet::kTinyFaceDetector;
  if (name == "ssd_mobilenetv1") return FaceApiNet::kSsdMobilenetV1;
  throw InvalidArgument(
      fmt::format("expected a face-api.js detector ({}), got '{}'", join(faceapi_net_names(), ", "), name));
}

fs::path faceapi_weights_dir() {
  if (const char* dir = std::getenv("VIGIL_FACEAPI_DIR"); dir != nullptr && *dir != '\0') return dir;
  return fs::path(std::string(kDefaultFaceApiDir));
}

fs::path faceapi_manifest_path(FaceApiNet net, const fs::path& dir) {
  return dir / (faceapi_net_name(net) + "_model-weights_manifest.json");
}

void FaceApiOptions::validate() const {
  VIGIL_CHECK(std::isfinite(score_threshold) && score_threshold >= 0 && score_threshold <= 1,
              "score_threshold: expected [0, 1], got {}", score_threshold);
  VIGIL_CHECK(nms_iou < 0 || nms_iou <= 1, "nms_iou: expected an IoU in [0, 1] (< 0: the package's), got {}",
              nms_iou);
  VIGIL_CHECK(input_size < 0 || (input_size >= 32 && input_size <= 1024 && input_size % 32 == 0),
              "input_size: expected a multiple of 32 in [32, 1024] (< 0: 416), got {}", input_size);
}

struct FaceApiDetector::Impl {
  FaceApiNet net;
  FaceApiOptions options;
  std::string file;
  int size = 0;
  std::unique_ptr<TinyNet> tiny;
  std::unique_ptr<SsdNet> ssd;

  std::vector<FaceBox> tiny_boxes(const torch::Tensor& out, int width, int height) const;
  std::vector<FaceBox> ssd_boxes(const torch::Tensor& boxes, const torch::Tensor& scores, int width,
                                 int height) const;
};

FaceApiDetector::FaceApiDetector(FaceApiNet net, const fs::path& manifest, const FaceApiOptions& options)
    : impl_(std::make_unique<Impl>()) {
  options.validate();
  impl_->net = net;
  impl_->options = options;
  const std::string file = to_utf8(manifest);
  impl_->file = file;
  const Weights weights = read_tfjs_weights(manifest);
  if (net == FaceApiNet::kTinyFaceDetector) {
    impl_->tiny = std::make_unique<TinyNet>(weights, file);
    impl_->size = options.input_size > 0 ? options.input_size : kTinyDefaultSize;
  } else {
    impl_->ssd = std::make_unique<SsdNet>(weights, file);
    impl_->size = kSsdSize;
  }
}

FaceApiDetector::~FaceApiDetector() = default;

FaceApiNet FaceApiDetector::net() const {
  return impl_->net;
}

int FaceApiDetector::input_size() const {
  return impl_->size;
}

std::vector<FaceBox> FaceApiDetector::Impl::tiny_boxes(const torch::Tensor& out, int width,
                                                       int height) const {
  // TinyYolov2Base.extractBoxes: [cells, cells, anchors, 5] with x, y, w, h, objectness.
  const int64_t cells = out.size(0);
  const auto a = out.accessor<float, 4>();
  const auto [rw, rh] = reshaped(width, height, size);
  const double input = std::max(rw, rh), fx = input / rw, fy = input / rh;
  std::vector<Candidate> found;
  for (int64_t row = 0; row < cells; ++row)
    for (int64_t col = 0; col < cells; ++col)
      for (int anchor = 0; anchor < 5; ++anchor) {
        const double score = sigmoid(a[row][col][anchor][4]);
        if (options.score_threshold > 0 && !(score > options.score_threshold)) continue;
        const double cx = (col + sigmoid(a[row][col][anchor][0])) / cells * fx;
        const double cy = (row + sigmoid(a[row][col][anchor][1])) / cells * fy;
        const double w = std::exp(a[row][col][anchor][2]) * kTinyAnchors[anchor][0] / cells * fx;
        const double h = std::exp(a[row][col][anchor][3]) * kTinyAnchors[anchor][1] / cells * fy;
        found.push_back({cx - w / 2, cy - h / 2, cx - w / 2 + w, cy - h / 2 + h, score});
      }
  const double iou = options.nms_iou >= 0 ? options.nms_iou : kTinyIou;
  std::vector<FaceBox> boxes;
  for (size_t i : nms_tiny(found, iou)) {
    if (options.max_detections > 0 && boxes.size() >= static_cast<size_t>(options.max_detections)) break;
    const Candidate& c = found[i];
    // ObjectDetection: Box(relative).rescale(image): x, y, width, height each times the image's side.
    const double x = c.x1 * width, y = c.y1 * height;
    boxes.push_back({static_cast<float>(x), static_cast<float>(y),
                     static_cast<float>(x + (c.x2 - c.x1) * width),
                     static_cast<float>(y + (c.y2 - c.y1) * height), static_cast<float>(c.score)});
  }
  return boxes;
}

std::vector<FaceBox> FaceApiDetector::Impl::ssd_boxes(const torch::Tensor& boxes, const torch::Tensor& scores,
                                                      int width, int height) const {
  const auto b = boxes.accessor<float, 2>();
  const std::vector<float> s(scores.data_ptr<float>(), scores.data_ptr<float>() + scores.numel());
  const size_t cap =
      options.max_detections > 0 ? static_cast<size_t>(options.max_detections) : kSsdMaxResults;
  const double iou = options.nms_iou >= 0 ? options.nms_iou : kSsdIou;
  const auto [rw, rh] = reshaped(width, height, size);
  const double pad_x = size / rw, pad_y = size / rh;
  std::vector<FaceBox> out;
  for (int64_t i : nms_ssd(b, s, cap, iou, options.score_threshold)) {
    // SsdMobilenetv1.locateFaces: clipped to [0, 1], un-padded, then FaceDetection's rescale to the image.
    const double top = std::max<double>(0, b[i][0]) * pad_y, bottom = std::min<double>(1, b[i][2]) * pad_y;
    const double left = std::max<double>(0, b[i][1]) * pad_x, right = std::min<double>(1, b[i][3]) * pad_x;
    const double x = left * width, y = top * height;
    out.push_back({static_cast<float>(x), static_cast<float>(y),
                   static_cast<float>(x + (right - left) * width),
                   static_cast<float>(y + (bottom - top) * height), s[static_cast<size_t>(i)]});
  }
  return out;
}

std::vector<std::vector<FaceBox>> FaceApiDetector::detect(const std::vector<cv::Mat>& images, bool rgb) {
  std::vector<std::vector<FaceBox>> result(images.size());
  if (images.empty()) return result;
  torch::InferenceMode guard;
  std::vector<torch::Tensor> inputs;
  for (const cv::Mat& image : images) {
    VIGIL_CHECK(image.type() == CV_8UC3 && !image.empty(),
                "expected an 8-bit 3-channel image, got type {} ({}x{})", image.type(), image.cols,
                image.rows);
    inputs.push_back(to_square_input(image, rgb, impl_->size));
  }
  // [B, S, S, 3] is already channels-last memory: the permuted view is the NCHW tensor oneDNN wants.
  torch::Tensor x = torch::stack(inputs).permute({0, 3, 1, 2});
  if (impl_->tiny) {
    x = nhwc((x - torch::tensor({kTinyMeanRgb[0], kTinyMeanRgb[1], kTinyMeanRgb[2]}).view({1, 3, 1, 1})) /
             255);
    const torch::Tensor out = impl_->tiny->forward(x).permute({0, 2, 3, 1}).contiguous();
    const int64_t cells = out.size(1);
    for (size_t i = 0; i < images.size(); ++i)
      result[i] = impl_->tiny_boxes(out[static_cast<int64_t>(i)].view({cells, cells, 5, 5}), images[i].cols,
                                    images[i].rows);
  } else {
    x = nhwc(x / 127.5 - 1);
    const auto [encodings, logits] = impl_->ssd->forward(x);
    const torch::Tensor boxes = impl_->ssd->decode(encodings, impl_->file).contiguous();
    const torch::Tensor scores = torch::sigmoid(logits).contiguous();
    for (size_t i = 0; i < images.size(); ++i) {
      const auto k = static_cast<int64_t>(i);
      result[i] = impl_->ssd_boxes(boxes[k], scores[k], images[i].cols, images[i].rows);
    }
  }
  return result;
}

}  // namespace vigil::model
