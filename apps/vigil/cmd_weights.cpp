// `vigil weights ...`: bring torchvision weight files in as vigil model files (local files, or published ones
// by name: torchvision:ARCH/WEIGHTS, fetched into torch.hub's cache), and look inside weight and model files.

#include <fmt/core.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <ctime>

#include "cli.h"
#include "table.h"
#include "vigil/core/clock.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/core/strings.h"
#include "vigil/model/model_file.h"
#include "vigil/model/published_weights.h"
#include "vigil/model/weight_import.h"
#include "vigil/nn/weights.h"

namespace vigil::cli {

namespace {

struct WeightsArgs {
  std::string ref;  ///< the file argument as given: a path, torchvision:ARCH/WEIGHTS or a URL
  std::string file, arch, class_names, classes_file, partial = "none", output;
  int num_classes = 0;
  uint64_t seed = 0;
};

std::vector<std::string> class_names_arg(const WeightsArgs& a) {
  std::vector<std::string> names;
  if (!a.class_names.empty()) {
    for (const auto& n : split(a.class_names, ',')) names.emplace_back(trim(n));
  } else if (!a.classes_file.empty()) {
    for (const auto& line : split(read_file(a.classes_file), '\n')) {
      const std::string name(trim(line));
      if (!name.empty()) names.push_back(name);
    }
  }
  for (const auto& n : names)
    VIGIL_CHECK(!n.empty(), "expected non-empty class names, got an empty one in '{}'", a.class_names);
  return names;
}

/// models/<arch>-<12 hex>.vgm in the workspace, the hash covering the source bytes and everything that shapes
/// the result, so importing the same thing twice gives the same file.
std::filesystem::path default_output(const Context& ctx, const WeightsArgs& a,
                                     const std::vector<std::string>& names) {
  const std::string key = fmt::format("{}\n{}\n{}\n{}\n{}\n{}", hash_file(a.file), a.arch, a.num_classes,
                                      join(names, ","), a.partial, a.seed);
  return ctx.workspace().root() / "models" / fmt::format("{}-{}.vgm", a.arch, hash_bytes(key).substr(0, 12));
}

/// Resolves the file argument (published weights are fetched) and, for torchvision:ARCH/WEIGHTS without
/// --arch, takes ARCH as the architecture.
WeightsArgs resolved(WeightsArgs a) {
  a.ref = a.file;
  if (a.arch.empty() && model::is_published_weights_ref(a.file))
    a.arch = std::string(model::find_published_weights(a.file).arch);
  a.file = model::resolve_weights(a.file);
  return a;
}

int run_import(const Context& ctx, WeightsArgs a) {
  a = resolved(std::move(a));
  model::LoadModelOptions o;
  o.arch = a.arch;
  o.num_classes = a.num_classes;
  o.class_names = class_names_arg(a);
  o.partial = model::parse_partial_load(a.partial);
  o.seed = a.seed;
  auto imported = model::import_weights(a.file, o);
  model::ModelInfo& info = imported.model.info;
  info.source = a.ref;  // the name or URL says more than a cache path
  info.created_at = utc_now();
  info.code_version = VIGIL_VERSION;
  const std::filesystem::path out =
      a.output.empty() ? default_output(ctx, a, o.class_names) : std::filesystem::path(a.output);
  model::save_model(out, info, *imported.model.module);
  fmt::print("{}", imported.report.to_text());
  fmt::print("imported {} as {} ({}, {} classes, {} parameters{})\n", a.ref, info.arch,
             data::task_name(info.task), info.num_classes(), model::parameter_count(*imported.model.module),
             o.partial == model::PartialLoad::kNone ? "" : "; partial load: " + a.partial);
  fmt::print("wrote {}\n", to_utf8(out));
  return 0;
}

/// "min_size [240], anchor_sizes [32, 64], ..." for the fields a model file sets.
std::string describe_detector_args(const nn::DetectorArgs& d) {
  std::vector<std::string> parts;
  d.for_each_set([&](const char* key, const auto& value) {
    if constexpr (requires { value.begin(); }) {
      parts.push_back(fmt::format("{} [{}]", key, fmt::join(value, ", ")));
    } else {
      parts.push_back(fmt::format("{} {}", key, value));
    }
  });
  return join(parts, ", ");
}

int run_show(WeightsArgs a) {
  a = resolved(std::move(a));
  model::LoadModelOptions o;
  o.arch = a.arch;
  const auto m = model::load_model(a.file, o);
  const auto& i = m.info;
  fmt::print("file        {}\narch        {}\ntask        {}\n", a.file, i.arch, data::task_name(i.task));
  fmt::print("classes     {}: {}\n", i.num_classes(), join(i.class_names, ", "));
  if (i.task == data::Task::kDetection) {
    fmt::print("resize      min_size {}, max_size {}\n", i.preprocess.min_size, i.preprocess.max_size);
    fmt::print("postprocess score_threshold {}, nms_iou {}, max_detections {}\n",
               i.postprocess.score_threshold, i.postprocess.nms_iou, i.postprocess.max_detections);
    fmt::print("backbone    {}\n",
               i.pretrained_backbone ? "FrozenBatchNorm2d (from pretrained weights)" : "BatchNorm2d");
    if (!i.detector.empty()) fmt::print("detector    {}\n", describe_detector_args(i.detector));
  } else {
    fmt::print("input       {}x{}\n", i.preprocess.width, i.preprocess.height);
  }
  fmt::print("mean        [{}]\nstd         [{}]\n", fmt::join(i.preprocess.mean, ", "),
             fmt::join(i.preprocess.std, ", "));
  fmt::print("parameters  {}\n", model::parameter_count(*m.module));
  const std::pair<const char*, std::string> lineage[] = {{"source", i.source},
                                                         {"run", i.run_id},
                                                         {"dataset", i.dataset_id},
                                                         {"created", i.created_at},
                                                         {"code", i.code_version}};
  for (const auto& [key, value] : lineage) {
    if (!value.empty()) fmt::print("{:<11} {}\n", key, value);
  }
  return 0;
}

int run_inspect(WeightsArgs a) {
  a = resolved(std::move(a));
  fmt::print("{}", nn::describe_state_dict(nn::read_state_dict(a.file)));
  return 0;
}

int run_pull(const WeightsArgs& a) {
  VIGIL_CHECK(model::is_published_weights_ref(a.file) || model::is_weights_url(a.file),
              "expected {}ARCH/WEIGHTS or an http(s) URL, got '{}' (vigil weights published lists the names)",
              model::kTorchvisionPrefix, a.file);
  fmt::print("{}\n", model::resolve_weights(a.file));
  return 0;
}

int run_published(const WeightsArgs& a) {
  const std::filesystem::path cache = model::weights_cache_dir();
  Table table({"weights", "default", "file", "cache"});
  for (const auto& w : model::published_weights()) {
    if (!a.arch.empty() && w.arch != a.arch) continue;
    std::error_code ec;
    const bool cached = std::filesystem::exists(model::cached_weights_path(w), ec);
    table.add({model::published_weights_ref(w), w.is_default ? "DEFAULT" : "", std::string(w.file),
               cached ? "cached" : "-"});
  }
  if (table.empty()) {
    std::vector<std::string> archs;
    for (const auto& w : model::published_weights()) {
      if (archs.empty() || archs.back() != w.arch) archs.emplace_back(w.arch);
    }
    throw InvalidArgument(fmt::format("expected --arch with published weights (one of {}), got '{}'",
                                      join(archs, ", "), a.arch));
  }
  fmt::print("{}", table.str());
  fmt::print("cache {}\nfrom  {}\n", to_utf8(cache), model::weights_base_url());
  return 0;
}

int run_export(const WeightsArgs& a) {
  VIGIL_CHECK(!a.output.empty(), "expected --output FILE.pth, got none");
  model::LoadModelOptions o;
  o.arch = a.arch;
  const auto m = model::load_model(a.file, o);
  nn::StateDict dict;
  for (const auto& p : m.module->named_parameters(true)) dict.insert(p.key(), p.value());
  for (const auto& b : m.module->named_buffers(true)) dict.insert(b.key(), b.value());
  nn::save_state_dict(dict, a.output);
  fmt::print("wrote {} ({} tensors, torchvision names; load with torch.load + load_state_dict)\n", a.output,
             dict.size());
  if (!m.info.detector.empty()) {
    // Anchors and sizes are not in a state dict: torchvision's builder must be given the same ones.
    fmt::print(
        "note: built with {}; pass the same to torchvision's builder (anchor sizes and ratios through "
        "rpn_anchor_generator=AnchorGenerator(...)) before load_state_dict\n",
        describe_detector_args(m.info.detector));
  }
  return 0;
}

}  // namespace

void register_weights(CLI::App& app, Context& ctx) {
  static WeightsArgs a;
  auto* weights = app.add_subcommand(
      "weights", "weight files: import torchvision .pth, show, inspect, export, pull published");
  weights->require_subcommand(1);

  auto* imp =
      weights->add_subcommand("import", "check a torchvision .pth / TorchScript file and write a model file");
  imp->add_option("file", a.file, "weights file (.pth, TorchScript), torchvision:ARCH/WEIGHTS or a URL")
      ->required();
  imp->add_option("--arch", a.arch, "model zoo architecture (default: ARCH of torchvision:ARCH/WEIGHTS)");
  imp->add_option("--num-classes", a.num_classes, "classes of the model (default: the file's head)")
      ->check(CLI::NonNegativeNumber);
  auto* names =
      imp->add_option("--class-names", a.class_names, "comma-separated class names, in label order");
  imp->add_option("--classes-file", a.classes_file, "file with one class name per line")->excludes(names);
  imp->add_option(
         "--partial", a.partial,
         "none; backbone (only the backbone); skip-predictor (all but the class-specific head, which "
         "stays freshly initialised: fine-tuning to other classes)")
      ->capture_default_str();
  imp->add_option("--seed", a.seed, "seed of the freshly initialised layers of a partial load")
      ->capture_default_str();
  imp->add_option("--output,-o", a.output, "model file to write (default: WORKSPACE/models/ARCH-HASH.vgm)");
  imp->callback([&ctx] {
    ctx.uses_workspace = true;
    ctx.action = [&ctx] { return run_import(ctx, a); };
  });

  auto* show =
      weights->add_subcommand("show", "describe a model file: classes, input, normalisation, lineage");
  show->add_option("file", a.file, "model file (or a .pth with --arch, or torchvision:ARCH/WEIGHTS)")
      ->required();
  show->add_option("--arch", a.arch, "architecture of a torchvision .pth file");
  show->callback([&ctx] { ctx.action = [] { return run_show(a); }; });

  auto* inspect = weights->add_subcommand("inspect", "list the tensors of a PyTorch weight file");
  inspect->add_option("file", a.file, "weights file (.pth, TorchScript), torchvision:ARCH/WEIGHTS or a URL")
      ->required();
  inspect->callback([&ctx] { ctx.action = [] { return run_inspect(a); }; });

  auto* exp = weights->add_subcommand("export", "write a model file's weights as a torchvision .pth");
  exp->add_option("file", a.file, "model file")->required();
  exp->add_option("--arch", a.arch, "architecture, when FILE is itself a .pth");
  exp->add_option("--output,-o", a.output, "the .pth to write")->required();
  exp->callback([&ctx] { ctx.action = [] { return run_export(a); }; });

  auto* pull = weights->add_subcommand(
      "pull", "download published weights into the cache (checked against the hash in the file name)");
  pull->add_option("name", a.file, "torchvision:ARCH/WEIGHTS (e.g. torchvision:resnet50/DEFAULT) or a URL")
      ->required();
  pull->callback([&ctx] { ctx.action = [] { return run_pull(a); }; });

  auto* published = weights->add_subcommand("published", "the published weights vigil knows, cached or not");
  published->add_option("--arch", a.arch, "only this architecture");
  published->callback([&ctx] { ctx.action = [] { return run_published(a); }; });
}

}  // namespace vigil::cli
