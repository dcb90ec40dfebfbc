#include "vigil/model/model_file.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <optional>
#include <unordered_set>

#include "model_build.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/model/checkpoint.h"
#include "vigil/model/rng_guard.h"
#include "vigil/model/weight_import.h"
#include "vigil/nn/zoo.h"

namespace vigil::model {

namespace detail {

bool is_bn_counter(const std::string& key) {
  const std::string_view suffix = "num_batches_tracked";
  return key.size() >= suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Builds `info.arch` with info's classes, seeded so fresh layers are the same on every run.
LoadedModel build_model(const ModelInfo& info, uint64_t seed) {
  nn::ModelArgs args;
  args.num_classes = info.num_classes();
  args.pretrained_backbone = info.pretrained_backbone;
  args.clip_length = info.clip_length;
  args.detector = info.detector;
  torch::manual_seed(seed);
  LoadedModel m;
  m.info = info;
  m.module = nn::make_model(info.arch, args);
  if (info.task == data::Task::kClassification) {
    m.classifier = std::dynamic_pointer_cast<nn::Classifier>(m.module);
    VIGIL_ASSERT(m.classifier, "zoo model '{}' (classification) is not an nn::Classifier", info.arch);
  } else {
    m.detector = std::dynamic_pointer_cast<nn::Detector>(m.module);
    VIGIL_ASSERT(m.detector, "zoo model '{}' (detection) is not an nn::Detector", info.arch);
    m.detector->set_postprocess(info.postprocess);
  }
  return m;
}

}  // namespace detail

namespace {

using detail::build_model;
using detail::is_bn_counter;

using nlohmann::json;

constexpr const char* kInfoFormat = "vigil.model_info";
constexpr int kInfoVersion = 1;
// The checkpoint trailer documented in model/checkpoint.h: "VGLCKPT1" + 64 hex digits.
constexpr std::string_view kCheckpointMagic = "VGLCKPT1";
constexpr std::streamoff kTrailerSize = 8 + 64;

std::string json_excerpt(const json& j) {
  std::string text = j.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

/// Reads obj[key] into `out`; a missing required field or a value of the wrong type is a DataError naming the
/// dotted field.
template <class T>
void read_field(const json& obj, const std::string& prefix, const char* key, T& out, bool required = false) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) throw DataError(fmt::format("model info: expected field '{}{}', got none", prefix, key));
    return;
  }
  try {
    out = it->template get<T>();
  } catch (const json::exception&) {
    throw DataError(fmt::format("model info: field '{}{}': expected {}, got {}", prefix, key,
                                std::is_arithmetic_v<T>          ? "a number"
                                : std::is_same_v<T, std::string> ? "a string"
                                                                 : "a list",
                                json_excerpt(*it)));
  }
}

const json& read_object(const json& obj, const char* key) {
  static const json kEmpty = json::object();
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return kEmpty;
  if (!it->is_object())
    throw DataError(
        fmt::format("model info: field '{}': expected an object, got {}", key, json_excerpt(*it)));
  return *it;
}

void check_info(const ModelInfo& info) {
  if (info.arch.empty()) throw DataError("model info: field 'arch': expected a model name, got ''");
  const data::PreprocessOptions& p = info.preprocess;
  for (const auto* field : {"mean", "std"}) {
    const auto& v = std::string(field) == "mean" ? p.mean : p.std;
    if (!v.empty() && v.size() != 3)
      throw DataError(
          fmt::format("model info: field '{}': expected 3 values (RGB), got {}", field, v.size()));
  }
  for (double s : p.std) {
    if (!(s > 0)) throw DataError(fmt::format("model info: field 'std': expected values > 0, got {}", s));
  }
  if (info.clip_length < 0)
    throw DataError(fmt::format("model info: field 'clip_length': expected >= 0, got {}", info.clip_length));
}

data::Task read_task(const json& j) {
  std::string task;
  read_field(j, "", "task", task, true);
  try {
    return data::parse_task(task);
  } catch (const InvalidArgument& e) {
    throw DataError(fmt::format("model info: field 'task': {}", e.what()));
  }
}

/// The file's input_width / input_height: a classifier's input size, a detector's transform min / max size.
std::pair<int, int> stored_input_size(const ModelInfo& info) {
  const data::PreprocessOptions& p = info.preprocess;
  if (info.task == data::Task::kDetection) return {p.min_size, p.max_size};
  return {p.width, p.height};
}

void set_input_size(ModelInfo& info, int w, int h) {
  data::PreprocessOptions& p = info.preprocess;
  if (info.task == data::Task::kDetection) {
    p.min_size = w;
    p.max_size = h;
  } else {
    p.width = w;
    p.height = h;
  }
  p.normalize = info.task == data::Task::kClassification;
}

ModelInfo info_from_checkpoint(const Checkpoint& meta, const std::filesystem::path& file) {
  if (meta.model_json.empty()) {
    // A training checkpoint written before model files existed: the zoo's defaults describe it.
    return default_model_info(meta.arch, meta.class_names);
  }
  try {
    return ModelInfo::from_json(meta.model_json);
  } catch (const DataError& e) {
    throw DataError(fmt::format("{}: {}", to_utf8(file), e.what()));
  }
}

LoadedModel load_vigil_file(const std::filesystem::path& file, const LoadModelOptions& options) {
  const Checkpoint meta = read_checkpoint_meta(file);
  ModelInfo info = info_from_checkpoint(meta, file);
  if (!options.arch.empty() && options.arch != info.arch) {
    throw InvalidArgument(fmt::format("{}: expected a model of architecture '{}' (--arch), got one of '{}'",
                                      to_utf8(file), options.arch, info.arch));
  }
  if (info.class_names.empty())
    throw DataError(
        fmt::format("{}: the model file names no classes, so its head size is unknown", to_utf8(file)));
  LoadedModel m = build_model(info, options.seed);
  try {
    load_checkpoint(file, *m.module, nullptr);
  } catch (const InvalidArgument& first) {
    if (info.task != data::Task::kDetection) throw;
    // A checkpoint whose ModelInfo does not record the backbone's batch-norm kind (BatchNorm2d vs
    // FrozenBatchNorm2d buffers): try the other one, and report the first failure if that fails too.
    info.pretrained_backbone = !info.pretrained_backbone;
    LoadedModel other = build_model(info, options.seed);
    try {
      load_checkpoint(file, *other.module, nullptr);
    } catch (const InvalidArgument&) {
      throw first;
    }
    m = std::move(other);
  }
  m.module->eval();
  return m;
}

}  // namespace

std::string ModelInfo::to_json() const {
  const auto [input_width, input_height] = stored_input_size(*this);
  const json j = {{"format", kInfoFormat},
                  {"version", kInfoVersion},
                  {"arch", arch},
                  {"task", data::task_name(task)},
                  {"class_names", class_names},
                  {"input_width", input_width},
                  {"input_height", input_height},
                  {"mean", preprocess.mean},
                  {"std", preprocess.std},
                  {"postprocess",
                   {{"score_threshold", postprocess.score_threshold},
                    {"nms_iou", postprocess.nms_iou},
                    {"max_detections", postprocess.max_detections}}},
                  {"pretrained_backbone", pretrained_backbone},
                  {"lineage",
                   {{"run_id", run_id},
                    {"dataset_id", dataset_id},
                    {"source", source},
                    {"code_version", code_version},
                    {"created_at", created_at}}}};
  json out = j;
  if (clip_length > 0) out["clip_length"] = clip_length;
  if (!detector.empty()) {
    json d = json::object();
    detector.for_each_set([&](const char* key, const auto& value) { d[key] = value; });
    out["detector"] = d;
  }
  if (!metrics.empty()) {
    json m = json::object();
    for (const auto& [k, v] : metrics) m[k] = std::isfinite(v) ? json(v) : json(nullptr);
    out["metrics"] = m;
  }
  return out.dump();
}

ModelInfo ModelInfo::from_json(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw DataError(fmt::format("model info: expected JSON, got unparsable text: {}", e.what()));
  }
  if (!j.is_object())
    throw DataError(fmt::format("model info: expected a JSON object, got {}", json_excerpt(j)));
  std::string format = kInfoFormat;
  int version = kInfoVersion;
  read_field(j, "", "format", format);
  read_field(j, "", "version", version);
  if (format != kInfoFormat)
    throw DataError(fmt::format("model info: field 'format': expected '{}', got '{}'", kInfoFormat, format));
  if (version > kInfoVersion) {
    throw DataError(
        fmt::format("model info: field 'version': expected <= {}, got {} (written by a newer vigil)",
                    kInfoVersion, version));
  }
  ModelInfo info;
  read_field(j, "", "arch", info.arch, true);
  info.task = read_task(j);
  read_field(j, "", "class_names", info.class_names, true);
  int input_width = 0, input_height = 0;
  read_field(j, "", "input_width", input_width);
  read_field(j, "", "input_height", input_height);
  set_input_size(info, input_width, input_height);
  read_field(j, "", "mean", info.preprocess.mean);
  read_field(j, "", "std", info.preprocess.std);
  read_field(j, "", "pretrained_backbone", info.pretrained_backbone);
  read_field(j, "", "clip_length", info.clip_length);
  if (j.contains("detector")) {
    const json& d = read_object(j, "detector");
    auto read = [&](const char* key, auto& field, const char*) { read_field(d, "detector.", key, field); };
    info.detector.visit(read);
    try {
      info.detector.validate();
    } catch (const InvalidArgument& e) {
      throw DataError(fmt::format("model info: {}", e.what()));
    }
  }
  const json& post = read_object(j, "postprocess");
  read_field(post, "postprocess.", "score_threshold", info.postprocess.score_threshold);
  read_field(post, "postprocess.", "nms_iou", info.postprocess.nms_iou);
  read_field(post, "postprocess.", "max_detections", info.postprocess.max_detections);
  const json& lineage = read_object(j, "lineage");
  read_field(lineage, "lineage.", "run_id", info.run_id);
  read_field(lineage, "lineage.", "dataset_id", info.dataset_id);
  read_field(lineage, "lineage.", "source", info.source);
  read_field(lineage, "lineage.", "code_version", info.code_version);
  read_field(lineage, "lineage.", "created_at", info.created_at);
  if (j.contains("metrics")) {
    const json& m = read_object(j, "metrics");
    for (const auto& [k, v] : m.items()) {
      if (!v.is_number() && !v.is_null())
        throw DataError(
            fmt::format("model info: field 'metrics.{}': expected a number, got {}", k, v.dump()));
      info.metrics[k] = v.is_number() ? v.get<double>() : std::nan("");
    }
  }
  check_info(info);
  return info;
}

ModelInfo default_model_info(const std::string& arch, const std::vector<std::string>& class_names) {
  const nn::ModelSpec& spec = nn::find_model(arch);
  ModelInfo info;
  info.arch = spec.name;
  info.task = spec.task;
  info.class_names = class_names;
  if (spec.task == data::Task::kDetection &&
      (class_names.empty() || class_names.front() != detail::kBackground))
    info.class_names.insert(info.class_names.begin(), detail::kBackground);
  info.preprocess = spec.preprocess;
  info.clip_length = spec.clip_length;
  return info;
}

const std::vector<std::string>& coco_category_names() {
  static const std::vector<std::string> kNames = {"__background__",
                                                  "person",
                                                  "bicycle",
                                                  "car",
                                                  "motorcycle",
                                                  "airplane",
                                                  "bus",
                                                  "train",
                                                  "truck",
                                                  "boat",
                                                  "traffic light",
                                                  "fire hydrant",
                                                  "N/A",
                                                  "stop sign",
                                                  "parking meter",
                                                  "bench",
                                                  "bird",
                                                  "cat",
                                                  "dog",
                                                  "horse",
                                                  "sheep",
                                                  "cow",
                                                  "elephant",
                                                  "bear",
                                                  "zebra",
                                                  "giraffe",
                                                  "N/A",
                                                  "backpack",
                                                  "umbrella",
                                                  "N/A",
                                                  "N/A",
                                                  "handbag",
                                                  "tie",
                                                  "suitcase",
                                                  "frisbee",
                                                  "skis",
                                                  "snowboard",
                                                  "sports ball",
                                                  "kite",
                                                  "baseball bat",
                                                  "baseball glove",
                                                  "skateboard",
                                                  "surfboard",
                                                  "tennis racket",
                                                  "bottle",
                                                  "N/A",
                                                  "wine glass",
                                                  "cup",
                                                  "fork",
                                                  "knife",
                                                  "spoon",
                                                  "bowl",
                                                  "banana",
                                                  "apple",
                                                  "sandwich",
                                                  "orange",
                                                  "broccoli",
                                                  "carrot",
                                                  "hot dog",
                                                  "pizza",
                                                  "donut",
                                                  "cake",
                                                  "chair",
                                                  "couch",
                                                  "potted plant",
                                                  "bed",
                                                  "N/A",
                                                  "dining table",
                                                  "N/A",
                                                  "N/A",
                                                  "toilet",
                                                  "N/A",
                                                  "tv",
                                                  "laptop",
                                                  "mouse",
                                                  "remote",
                                                  "keyboard",
                                                  "cell phone",
                                                  "microwave",
                                                  "oven",
                                                  "toaster",
                                                  "sink",
                                                  "refrigerator",
                                                  "N/A",
                                                  "book",
                                                  "clock",
                                                  "vase",
                                                  "scissors",
                                                  "teddy bear",
                                                  "hair drier",
                                                  "toothbrush"};
  return kNames;
}

std::vector<std::string> default_class_names(data::Task task, int num_classes) {
  if (task == data::Task::kDetection && num_classes == 91) return coco_category_names();
  std::vector<std::string> names;
  for (int i = 0; i < num_classes; ++i)
    names.push_back(task == data::Task::kDetection && i == 0 ? std::string(detail::kBackground)
                                                             : fmt::format("class_{}", i));
  return names;
}

int64_t parameter_count(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters(true))
    if (p.defined()) n += p.numel();
  return n;
}

bool is_vigil_model_file(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    throw NotFound(fmt::format("{}: no such model file", to_utf8(file)));
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open for reading", to_utf8(file)));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < kTrailerSize) return false;
  in.seekg(size - kTrailerSize);
  std::string magic(kCheckpointMagic.size(), '\0');
  in.read(magic.data(), static_cast<std::streamsize>(magic.size()));
  return in && magic == kCheckpointMagic;
}

LoadedModel load_model(const std::filesystem::path& file, const LoadModelOptions& options) {
  detail::GlobalRngGuard rng_guard;
  if (is_vigil_model_file(file)) return load_vigil_file(file, options);
  if (options.arch.empty()) {
    throw DataError(
        fmt::format("{}: expected a vigil model file (ending in a {} trailer), got another file; if it is a "
                    "torchvision .pth or TorchScript file, give its architecture (--arch)",
                    to_utf8(file), kCheckpointMagic));
  }
  LoadModelOptions full = options;
  full.partial = PartialLoad::kNone;
  return import_weights(file, full).model;
}

void save_model(const std::filesystem::path& file, const ModelInfo& info, torch::nn::Module& module) {
  VIGIL_CHECK(!info.arch.empty(), "expected a model info naming the architecture, got an empty arch");
  ModelInfo saved = info;
  if (const auto* det = dynamic_cast<const nn::Detector*>(&module)) {
    VIGIL_CHECK(saved.task == data::Task::kDetection, "expected task 'detection' for a detector, got '{}'",
                data::task_name(saved.task));
    VIGIL_CHECK(det->num_classes() == saved.num_classes(),
                "expected {} class names (with '__background__') for a {}-class detector, got {}",
                det->num_classes(), det->num_classes(), saved.num_classes());
    bool counters = false;
    for (const auto& b : module.named_buffers(true))
      counters = counters || (b.key().rfind("backbone.", 0) == 0 && is_bn_counter(b.key()));
    saved.pretrained_backbone = !counters;
  } else if (const auto* cls = dynamic_cast<const nn::Classifier*>(&module)) {
    VIGIL_CHECK(saved.task == data::Task::kClassification,
                "expected task 'classification' for a classifier, got '{}'", data::task_name(saved.task));
    VIGIL_CHECK(cls->num_classes() == saved.num_classes(),
                "expected {} class names for a {}-class classifier, got {}", cls->num_classes(),
                cls->num_classes(), saved.num_classes());
  }
  Checkpoint meta;
  meta.arch = saved.arch;
  meta.class_names = saved.class_names;
  meta.model_json = saved.to_json();
  save_checkpoint(file, meta, module, nullptr);
}

}  // namespace vigil::model
