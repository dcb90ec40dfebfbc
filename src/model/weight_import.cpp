#include "vigil/model/weight_import.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <optional>
#include <string_view>
#include <unordered_set>

#include "model_build.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/model/rng_guard.h"
#include "vigil/nn/zoo.h"

namespace vigil::model {
namespace {

using detail::build_model;
using detail::is_bn_counter;
using detail::kBackground;

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool starts_with_any(const std::string& key, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes)
    if (key.rfind(p, 0) == 0) return true;
  return false;
}

std::string shape_text(c10::IntArrayRef sizes) {
  return fmt::format("[{}]", fmt::join(sizes, ", "));
}

/// The number of classes of the file's head, or nullopt when the file has none the task recognises.
/// Classifiers: the last 2-D `.weight` in file order, which is torchvision's registration order (fc,
/// classifier.N). Detectors: torchvision's box predictor.
std::optional<int> head_classes(const nn::StateDict& dict, data::Task task) {
  if (task == data::Task::kDetection) {
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
  const bool detection = m.info.task == data::Task::kDetection;
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
std::vector<std::string> class_names_for(data::Task task, int n, std::vector<std::string> names) {
  if (names.empty()) return default_class_names(task, n);
  const bool detection = task == data::Task::kDetection;
  if (detection && names.front() != kBackground) names.insert(names.begin(), kBackground);
  VIGIL_CHECK(static_cast<int>(names.size()) == n, "expected {} class names for a {}-class head{}, got {}",
              detection ? n - 1 : n, n, detection ? " (the background is added)" : "",
              detection ? names.size() - 1 : names.size());
  return names;
}

}  // namespace

PartialLoad parse_partial_load(const std::string& name) {
  if (name.empty() || name == "none") return PartialLoad::kNone;
  if (name == "backbone") return PartialLoad::kBackbone;
  if (name == "skip-predictor") return PartialLoad::kSkipPredictor;
  throw InvalidArgument(
      fmt::format("expected a partial load of none, backbone or skip-predictor, got '{}'", name));
}

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

ImportedModel import_weights(const std::filesystem::path& file, const LoadModelOptions& options) {
  VIGIL_CHECK(!options.arch.empty(), "expected the architecture (--arch) of {}, got none", to_utf8(file));
  VIGIL_CHECK(options.num_classes >= 0, "expected num_classes >= 0, got {}", options.num_classes);
  const nn::ModelSpec& spec = nn::find_model(options.arch);
  nn::StateDict dict = nn::read_state_dict(file);
  const bool detection = spec.task == data::Task::kDetection;
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

}  // namespace vigil::model
