#include "vigil/train/model_file.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <optional>
#include <unordered_set>

#include "rng_guard.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/nn/zoo.h"
#include "vigil/train/checkpoint.h"

namespace vigil::train {
namespace {

using nlohmann::json;

constexpr const char* kInfoFormat = "vigil.model_info";
constexpr int kInfoVersion = 1;
constexpr const char* kBackground = "__background__";
// The checkpoint trailer documented in train/checkpoint.h: "VGLCKPT1" + 64 hex digits.
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
  if (info.task != "classification" && info.task != "detection") {
    throw DataError(fmt::format(
        "model info: field 'task': expected 'classification' or 'detection', got '{}'", info.task));
  }
  if (info.arch.empty()) throw DataError("model info: field 'arch': expected a model name, got ''");
  for (const auto* field : {"mean", "std"}) {
    const auto& v = std::string(field) == "mean" ? info.mean : info.std;
    if (!v.empty() && v.size() != 3)
      throw DataError(
          fmt::format("model info: field '{}': expected 3 values (RGB), got {}", field, v.size()));
  }
  for (double s : info.std) {
    if (!(s > 0)) throw DataError(fmt::format("model info: field 'std': expected values > 0, got {}", s));
  }
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool starts_with_any(const std::string& key, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes)
    if (key.rfind(p, 0) == 0) return true;
  return false;
}

bool is_bn_counter(const std::string& key) {
  return ends_with(key, "num_batches_tracked");
}

std::string shape_text(c10::IntArrayRef sizes) {
  return fmt::format("[{}]", fmt::join(sizes, ", "));
}

/// Builds `info.arch` with info's classes, seeded so fresh layers are the same on every run.
LoadedModel build_model(const ModelInfo& info, uint64_t seed) {
  nn::ModelArgs args;
  args.num_classes = info.num_classes();
  args.pretrained_backbone = info.pretrained_backbone;
  torch::manual_seed(seed);
  LoadedModel m;
  m.info = info;
  m.module = nn::make_model(info.arch, args);
  if (info.task == "classification") {
    m.classifier = std::dynamic_pointer_cast<nn::Classifier>(m.module);
    VIGIL_ASSERT(m.classifier, "zoo model '{}' (classification) is not an nn::Classifier", info.arch);
  } else {
    m.detector = std::dynamic_pointer_cast<nn::Detector>(m.module);
    VIGIL_ASSERT(m.detector, "zoo model '{}' (detection) is not an nn::Detector", info.arch);
    m.detector->set_postprocess(info.postprocess);
  }
  return m;
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
    if (info.task != "detection") throw;
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

/// The number of classes of the file's head, or nullopt when the file has none the task recognises.
/// Classifiers: the last 2-D `.weight` in file order, which is torchvision's registration order (fc,
/// classifier.N). Detectors: torchvision's box predictor.
std::optional<int> head_classes(const nn::StateDict& dict, const std::string& task) {
  if (task == "detection") {
    const torch::Tensor* w = dict.find("roi_heads.box_predictor.cls_score.weight");
    if (w != nullptr && w->dim() == 2) return static_cast<int>(w->size(0));
    return std::nullopt;
  }
  std::optional<int> found;
  for (const auto& item : dict) {
    if (item.value().dim() == 2 && ends_with(item.key(), ".weight"))
      found = static_cast<int>(item.value().size(0));
  }
  return found;
}

/// The module prefix of a classifier's last Linear layer ("fc.", "classifier.3."): its last 2-D weight.
std::string classifier_head_prefix(const torch::nn::Module& module) {
  std::string prefix;
  for (const auto& p : module.named_parameters(true)) {
    if (p.value().dim() == 2 && ends_with(p.key(), ".weight"))
      prefix = p.key().substr(0, p.key().size() - std::string_view("weight").size());
  }
  VIGIL_ASSERT(!prefix.empty(), "classifier has no Linear head");
  return prefix;
}

struct MismatchScan {
  std::optional<std::string> first;  ///< the first offending key with the reason
  size_t matched = 0, module_keys = 0;
};

/// Walks the module's keys in load_state_dict's order (parameters, then buffers) and names the first key that
/// is missing from the file or has another shape, else the first file key the module lacks.
MismatchScan scan_mismatches(const torch::nn::Module& module, const nn::StateDict& dict,
                             const nn::LoadOptions& lo) {
  auto filtered = [&](const std::string& key) {
    return starts_with_any(key, lo.skip_prefixes) ||
           (!lo.only_prefixes.empty() && !starts_with_any(key, lo.only_prefixes));
  };
  MismatchScan scan;
  std::unordered_set<std::string> module_keys;
  auto visit = [&](const std::string& key, const torch::Tensor& t) {
    module_keys.insert(key);
    if (filtered(key) || is_bn_counter(key)) return;
    ++scan.module_keys;
    const torch::Tensor* src = dict.find(key);
    if (src == nullptr) {
      if (!scan.first) scan.first = fmt::format("'{}' (in the model, missing from the file)", key);
    } else if (src->sizes() != t.sizes()) {
      if (!scan.first)
        scan.first = fmt::format("'{}' (expected shape {}, got {})", key, shape_text(t.sizes()),
                                 shape_text(src->sizes()));
    } else {
      ++scan.matched;
    }
  };
  for (const auto& p : module.named_parameters(true)) visit(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) visit(b.key(), b.value());
  if (scan.first) return scan;
  for (const auto& item : dict) {
    const auto& key = item.key();
    if (!module_keys.count(key) && !filtered(key) && !is_bn_counter(key)) {
      scan.first = fmt::format("'{}' (in the file, not in the model)", key);
      break;
    }
  }
  return scan;
}

nn::LoadOptions load_options_for(PartialLoad partial, const LoadedModel& m) {
  nn::LoadOptions lo;
  const bool detection = m.info.task == "detection";
  if (partial == PartialLoad::kBackbone) {
    if (detection) {
      lo.only_prefixes = {"backbone."};
    } else {
      lo.skip_prefixes = {"fc.", "classifier."};
    }
  } else if (partial == PartialLoad::kSkipPredictor) {
    lo.skip_prefixes = {detection ? std::string("roi_heads.box_predictor.")
                                  : classifier_head_prefix(*m.module)};
  }
  return lo;
}

/// Class names for a head of `n` outputs: the user's (detection: background put in front when absent) or
/// the defaults.
std::vector<std::string> class_names_for(const std::string& task, int n, std::vector<std::string> names) {
  if (names.empty()) return default_class_names(task, n);
  if (task == "detection" && names.front() != kBackground) names.insert(names.begin(), kBackground);
  VIGIL_CHECK(static_cast<int>(names.size()) == n, "expected {} class names for a {}-class head{}, got {}",
              task == "detection" ? n - 1 : n, n, task == "detection" ? " (the background is added)" : "",
              task == "detection" ? names.size() - 1 : names.size());
  return names;
}

}  // namespace

bool has_key_prefix(const nn::StateDict& dict, const std::string& prefix) {
  for (const auto& item : dict) {
    if (item.key().rfind(prefix, 0) == 0) return true;
  }
  return false;
}

nn::StateDict classifier_to_detector_backbone(const nn::StateDict& dict) {
  nn::StateDict out;
  for (const auto& item : dict) {
    std::string key = item.key();
    if (key.rfind("fc.", 0) == 0 || key.rfind("classifier.", 0) == 0) continue;
    if (key.rfind("features.", 0) == 0) key = key.substr(std::string_view("features.").size());
    out.insert("backbone.body." + key, item.value());
  }
  return out;
}

std::string ModelInfo::to_json() const {
  const json j = {{"format", kInfoFormat},
                  {"version", kInfoVersion},
                  {"arch", arch},
                  {"task", task},
                  {"class_names", class_names},
                  {"input_width", input_width},
                  {"input_height", input_height},
                  {"mean", mean},
                  {"std", std},
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
  read_field(j, "", "task", info.task, true);
  read_field(j, "", "class_names", info.class_names, true);
  read_field(j, "", "input_width", info.input_width);
  read_field(j, "", "input_height", info.input_height);
  read_field(j, "", "mean", info.mean);
  read_field(j, "", "std", info.std);
  read_field(j, "", "pretrained_backbone", info.pretrained_backbone);
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

PartialLoad parse_partial_load(const std::string& name) {
  if (name.empty() || name == "none") return PartialLoad::kNone;
  if (name == "backbone") return PartialLoad::kBackbone;
  if (name == "skip-predictor") return PartialLoad::kSkipPredictor;
  throw InvalidArgument(
      fmt::format("expected a partial load of none, backbone or skip-predictor, got '{}'", name));
}

ModelInfo default_model_info(const std::string& arch, const std::vector<std::string>& class_names) {
  const nn::ModelSpec& spec = nn::find_model(arch);
  ModelInfo info;
  info.arch = spec.name;
  info.task = spec.task;
  info.class_names = class_names;
  if (spec.task == "detection" && (class_names.empty() || class_names.front() != kBackground))
    info.class_names.insert(info.class_names.begin(), kBackground);
  info.input_width = spec.input_width;
  info.input_height = spec.input_height;
  info.mean = spec.mean;
  info.std = spec.std;
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

std::vector<std::string> default_class_names(const std::string& task, int num_classes) {
  if (task == "detection" && num_classes == 91) return coco_category_names();
  std::vector<std::string> names;
  for (int i = 0; i < num_classes; ++i)
    names.push_back(task == "detection" && i == 0 ? std::string(kBackground) : fmt::format("class_{}", i));
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

ImportedModel import_weights(const std::filesystem::path& file, const LoadModelOptions& options) {
  VIGIL_CHECK(!options.arch.empty(), "expected the architecture (--arch) of {}, got none", to_utf8(file));
  VIGIL_CHECK(options.num_classes >= 0, "expected num_classes >= 0, got {}", options.num_classes);
  const nn::ModelSpec& spec = nn::find_model(options.arch);
  nn::StateDict dict = nn::read_state_dict(file);
  const bool detection = spec.task == "detection";
  bool from_classifier = false;
  if (detection && options.partial == PartialLoad::kBackbone && !has_key_prefix(dict, "backbone.")) {
    dict = classifier_to_detector_backbone(dict);
    from_classifier = true;
  }
  int n = options.num_classes;
  if (n == 0 && !options.class_names.empty())
    n = static_cast<int>(options.class_names.size()) +
        (detection && options.class_names.front() != kBackground);
  if (n == 0) n = head_classes(dict, spec.task).value_or(detection ? 91 : 1000);

  ModelInfo info = default_model_info(spec.name, class_names_for(spec.task, n, options.class_names));
  info.source = to_utf8(file);
  if (detection) {
    // torchvision builds detectors with FrozenBatchNorm2d when they start from trained weights (no
    // num_batches_tracked buffers), BatchNorm2d otherwise: build what the file was saved from.
    bool counters = false;
    for (const auto& item : dict)
      counters = counters || (item.key().rfind("backbone.", 0) == 0 && is_bn_counter(item.key()));
    info.pretrained_backbone = from_classifier || !counters;
  }

  detail::GlobalRngGuard rng_guard;
  ImportedModel out;
  out.model = build_model(info, options.seed);
  nn::LoadOptions lo = load_options_for(options.partial, out.model);
  if (from_classifier) lo.only_prefixes = {"backbone.body."};  // the FPN is not in a classifier's file
  const MismatchScan scan = scan_mismatches(*out.model.module, dict, lo);
  if (scan.first) {
    std::string why = fmt::format(
        "{}: expected weights of architecture '{}' with {} classes, but the first "
        "mismatching key is {}; {} of {} model keys match",
        to_utf8(file), spec.name, n, *scan.first, scan.matched, scan.module_keys);
    if (scan.module_keys > 0 && scan.matched * 10 < scan.module_keys)
      why += " (the file looks like another architecture)";
    else if (options.partial == PartialLoad::kNone)
      why += " (--partial skip-predictor or backbone loads the rest)";
    throw InvalidArgument(why);
  }
  out.report = nn::load_state_dict(*out.model.module, dict, lo);
  out.model.module->eval();
  spdlog::debug("import_weights {}: {}", to_utf8(file), out.report.to_text());
  return out;
}

void save_model(const std::filesystem::path& file, const ModelInfo& info, torch::nn::Module& module) {
  VIGIL_CHECK(!info.arch.empty(), "expected a model info naming the architecture, got an empty arch");
  ModelInfo saved = info;
  if (const auto* det = dynamic_cast<const nn::Detector*>(&module)) {
    VIGIL_CHECK(saved.task == "detection", "expected task 'detection' for a detector, got '{}'", saved.task);
    VIGIL_CHECK(det->num_classes() == saved.num_classes(),
                "expected {} class names (with '__background__') for a {}-class detector, got {}",
                det->num_classes(), det->num_classes(), saved.num_classes());
    bool counters = false;
    for (const auto& b : module.named_buffers(true))
      counters = counters || (b.key().rfind("backbone.", 0) == 0 && is_bn_counter(b.key()));
    saved.pretrained_backbone = !counters;
  } else if (const auto* cls = dynamic_cast<const nn::Classifier*>(&module)) {
    VIGIL_CHECK(saved.task == "classification", "expected task 'classification' for a classifier, got '{}'",
                saved.task);
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

}  // namespace vigil::train
