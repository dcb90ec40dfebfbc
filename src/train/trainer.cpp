#include "vigil/train/trainer.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <ctime>
#include <numeric>
#include <optional>
#include <set>

#include "rng_guard.h"
#include "trainer_data.h"
#include "trainer_model.h"
#include "vigil/core/config.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/interrupt.h"
#include "vigil/core/progress.h"
#include "vigil/core/strings.h"
#include "vigil/train/checkpoint.h"
#include "vigil/train/early_stopping.h"
#include "vigil/train/model_file.h"
#include "vigil/train/optim.h"
#include "vigil/train/results_csv.h"
#include "vigil/train/schedule.h"
#include "vigil/train/tensorboard.h"
#include "vigil/train/tracking.h"

namespace vigil::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kLastName = "last.ckpt";
constexpr const char* kBestName = "best.ckpt";

/// Options a resumed run may change: none of them alters the arithmetic of training (epochs extends or
/// shortens the run, and with it the cosine schedule).
const std::vector<std::string> kResumeOverridable = {"epochs", "device", "threads", "data.threads",
                                                     "data.prefetch_batches"};

/// While alive, the default logger also writes to the run's train.log.
class RunLog {
 public:
  explicit RunLog(const fs::path& file) : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file.string(), /*truncate=*/false);
    sink->set_pattern("%Y-%m-%d %H:%M:%S.%e %l %v");
    sink->set_level(spdlog::level::info);
    std::vector<spdlog::sink_ptr> sinks = previous_->sinks();
    sinks.push_back(sink);
    auto logger = std::make_shared<spdlog::logger>(previous_->name(), sinks.begin(), sinks.end());
    logger->set_level(std::min(previous_->level(), spdlog::level::info));
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~RunLog() { spdlog::set_default_logger(previous_); }
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;

 private:
  std::shared_ptr<spdlog::logger> previous_;
};

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

torch::Device parse_device(const std::string& name) {
  torch::Device device(name);
  if (device.is_cuda()) {
    VIGIL_CHECK(torch::cuda::is_available() && device.index() < static_cast<int>(torch::cuda::device_count()),
                "expected device cpu (no such CUDA device in this build or machine), got '{}'", name);
  }
  return device;
}

/// The saved options of a checkpoint plus the overrides a resume may apply.
TrainOptions resumed_options(const Checkpoint& meta, const std::vector<std::string>& overrides,
                             const fs::path& file) {
  if (meta.config_yaml.empty()) {
    throw DataError(
        fmt::format("{} holds no training options: it is a model file, not a run's checkpoint "
                    "(start a new run with model.weights: {} instead)",
                    to_utf8(file), to_utf8(file)));
  }
  YAML::Node tree;
  try {
    tree = YAML::Load(meta.config_yaml);
  } catch (const YAML::Exception& e) {
    throw DataError(
        fmt::format("{}: the saved training options are unreadable: {}", to_utf8(file), e.what()));
  }
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    VIGIL_CHECK(eq != std::string::npos && eq > 0, "expected an override like a.b=c, got '{}'", o);
    const std::string key(trim(o.substr(0, eq)));
    VIGIL_CHECK(
        std::find(kResumeOverridable.begin(), kResumeOverridable.end(), key) != kResumeOverridable.end(),
        "expected --resume overrides of {} only (a resumed run keeps its options), got '{}'; start a new "
        "run to change it",
        join(kResumeOverridable, ", "), key);
    config::set_path(tree, key, o.substr(eq + 1));
  }
  TrainOptions options;
  config::bind(tree, options);
  return options;
}

}  // namespace

/// The unfinished epoch: what last.ckpt needs to continue it exactly.
struct EpochState {
  int64_t batches_done = 0;
  int64_t images = 0;
  std::map<std::string, double> loss_sums;
  double seconds = 0;
};

struct Trainer::Impl {
  Workspace ws{""};
  TrainOptions opt;
  TrainControl control;
  const nn::ModelSpec* spec = nullptr;
  fs::path run_dir;
  detail::RunData data;
  int input_size = 0;
  torch::Device device{torch::kCPU};
  std::unique_ptr<detail::TaskModel> model;
  std::vector<torch::Tensor> params;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<LrSchedule> schedule;
  EarlyStopping stopper;
  ModelInfo info;
  data::LoaderOptions train_lo, val_lo;
  int64_t batches_per_epoch = 0;

  int epoch = 0;          ///< the epoch being trained, 0-based (= epochs completed)
  int64_t iteration = 0;  ///< optimizer steps taken
  EpochState state;
  bool best_written = false;
  double last_lr = 0;
  fs::path resumed_from;  ///< the checkpoint a resumed run continues, empty for a new run

  data::Dataset epoch_ds;  ///< balance=resample: this epoch's draws (the train loader reads it)
  std::unique_ptr<data::DataLoader> train_loader, val_loader;
  std::unique_ptr<ResultsCsv> csv;
  std::unique_ptr<EventWriter> events;
  std::unique_ptr<TrackedRun> tracked;  ///< null when control.track is off

  void setup(bool load_weights);
  void create_run_dir();
  std::vector<std::string> columns() const;
  void open_outputs();
  bool stop_requested() const;
  data::DataLoader& start_train_epoch();
  bool train_epoch();
  void step(const data::Batch& batch);
  std::map<std::string, double> validate();
  std::map<std::string, double> finish_epoch();
  json extra() const;
  void restore_extra(const std::string& text, const fs::path& file);
  void save(const fs::path& file, bool with_optimizer);
  std::string metric_column() const;
  TrainResult train_all();
  void start_tracking(const std::string& resumed_run_id);
  void finish_tracking(const TrainResult& r);
};

// ---- setup ----------------------------------------------------------------------------------------------

void Trainer::Impl::setup(bool load_weights) {
  if (opt.threads > 0) torch::set_num_threads(opt.threads);
  opt.threads = torch::get_num_threads();
  device = parse_device(opt.device);
  spec = &nn::find_model(opt.model.arch);
  input_size = spec->task == "classification" ? detail::classifier_input_size(opt, *spec) : 0;

  torch::manual_seed(opt.seed);
  model = detail::make_task_model(opt, data.ds.classes, input_size, data.weights, device, load_weights);
  params = model->trainable_parameters();
  VIGIL_CHECK(!params.empty(),
              "expected some trainable parameters, got every one frozen (model.trainable_stages "
              "{} leaves nothing to train)",
              opt.model.trainable_stages);
  optimizer = make_optimizer(params, opt.optimizer);

  train_lo = detail::loader_options(opt, *spec, true, data.train.size());
  val_lo = detail::loader_options(opt, *spec, false, data.val.size());
  const auto n = static_cast<int64_t>(data.train.size()), bs = static_cast<int64_t>(train_lo.batch_size);
  batches_per_epoch = train_lo.drop_last ? n / bs : (n + bs - 1) / bs;
  schedule = std::make_unique<LrSchedule>(opt.schedule, opt.optimizer.lr, opt.epochs * batches_per_epoch,
                                          batches_per_epoch);
  stopper = EarlyStopping(opt.early_stopping.patience, opt.early_stopping.min_delta, metric_maximize(opt));

  info = default_model_info(opt.model.arch, data.ds.classes);
  if (spec->task == "classification") info.input_width = info.input_height = input_size;
  info.pretrained_backbone = spec->task == "detection" && !opt.model.weights.empty();
  info.dataset_id = data.version.id;
  info.source = fmt::format("vigil train: dataset {}@{}, split {}/{}", data.version.name,
                            data.version.short_id(), opt.data.split, opt.data.train);
  info.code_version = control.code_version;
  info.created_at = utc_now();
}

void Trainer::Impl::create_run_dir() {
  ws.ensure();
  ensure_dir(ws.runs_dir());
  if (!opt.name.empty()) {
    run_dir = ws.runs_dir() / opt.name;
    std::error_code ec;
    fs::create_directory(run_dir, ec);
    if (ec) throw IoError(fmt::format("cannot create run folder {}: {}", to_utf8(run_dir), ec.message()));
    if (fs::exists(run_dir / "config.yaml")) {
      throw InvalidArgument(
          fmt::format("expected a new run name, got '{}' whose folder {} holds a run; continue "
                      "it with `vigil train --resume {}` or pick another --name",
                      opt.name, to_utf8(run_dir), to_utf8(run_dir)));
    }
  } else {
    for (int n = 1;; ++n) {
      opt.name = fmt::format("{}-{}", opt.model.arch, n);
      run_dir = ws.runs_dir() / opt.name;
      std::error_code ec;
      if (fs::create_directory(run_dir, ec)) break;  // false when taken: another run, maybe a concurrent one
      if (ec) throw IoError(fmt::format("cannot create run folder {}: {}", to_utf8(run_dir), ec.message()));
    }
  }
  ensure_dir(run_dir / "weights");
  info.run_id = opt.name;
}

std::string Trainer::Impl::metric_column() const {
  return train::metric_column(resolved_metric(opt));
}

std::vector<std::string> Trainer::Impl::columns() const {
  std::vector<std::string> cols = {"epoch"};
  for (const auto& n : model->loss_names()) cols.push_back("train/" + n);
  for (const auto& n : model->val_names()) cols.push_back(n);
  cols.push_back("lr/pg0");
  return cols;
}

void Trainer::Impl::open_outputs() {
  csv = std::make_unique<ResultsCsv>(run_dir / "results.csv", columns());
  csv->truncate_after(static_cast<double>(epoch));  // rows of epochs the checkpoint has not seen end
  events = std::make_unique<EventWriter>(run_dir);
  val_loader = std::make_unique<data::DataLoader>(data.ds, data.images, data.val, val_lo);
}

bool Trainer::Impl::stop_requested() const {
  return interrupt_requested() ||
         (control.stop_after_iterations >= 0 && iteration >= control.stop_after_iterations);
}

// ---- checkpoints ----------------------------------------------------------------------------------------

json Trainer::Impl::extra() const {
  return {{"dataset_id", data.version.id},  {"dataset", data.version.name},
          {"run_name", opt.name},           {"batch_in_epoch", state.batches_done},
          {"epoch_images", state.images},   {"epoch_loss_sums", state.loss_sums},
          {"epoch_seconds", state.seconds}, {"early_stopping", stopper.to_json()},
          {"best_written", best_written},   {"last_lr", last_lr}};
}

void Trainer::Impl::restore_extra(const std::string& text, const fs::path& file) {
  try {
    const json j = json::parse(text);
    state.batches_done = j.at("batch_in_epoch").get<int64_t>();
    state.images = j.at("epoch_images").get<int64_t>();
    state.loss_sums = j.at("epoch_loss_sums").get<std::map<std::string, double>>();
    state.seconds = j.at("epoch_seconds").get<double>();
    stopper = EarlyStopping::from_json(j.at("early_stopping").get<std::string>());
    best_written = j.at("best_written").get<bool>();
    last_lr = j.at("last_lr").get<double>();
  } catch (const json::exception& e) {
    throw DataError(
        fmt::format("{}: the trainer state in the checkpoint is malformed: {}", to_utf8(file), e.what()));
  }
}

void Trainer::Impl::save(const fs::path& file, bool with_optimizer) {
  Checkpoint meta;
  meta.epoch = epoch;
  meta.iteration = iteration;
  meta.arch = opt.model.arch;
  meta.class_names = info.class_names;
  meta.config_yaml = config::to_yaml(opt);
  meta.extra_json = extra().dump();
  meta.model_json = info.to_json();
  save_checkpoint(file, meta, model->module(), with_optimizer ? optimizer.get() : nullptr);
}

// ---- the loop -------------------------------------------------------------------------------------------

data::DataLoader& Trainer::Impl::start_train_epoch() {
  const auto& d = opt.data;
  if (!data.sample_p.empty()) {
    train_loader.reset();  // it reads epoch_ds, which is replaced
    epoch_ds = detail::resampled_epoch(data, opt.seed, epoch);
    std::vector<int> all(epoch_ds.samples.size());
    std::iota(all.begin(), all.end(), 0);
    train_loader = std::make_unique<data::DataLoader>(epoch_ds, data.images, std::move(all), train_lo,
                                                      d.detection_augment, d.classification_augment);
  } else if (!train_loader) {
    train_loader = std::make_unique<data::DataLoader>(data.ds, data.images, data.train, train_lo,
                                                      d.detection_augment, d.classification_augment);
  }
  train_loader->start_epoch(epoch);
  // Resuming inside an epoch: the loader is deterministic per (seed, epoch, sample), so the batches already
  // trained on are drawn again and passed over.
  for (int64_t k = 0; k < state.batches_done; ++k) {
    if (!train_loader->next()) break;
  }
  return *train_loader;
}

void Trainer::Impl::step(const data::Batch& batch) {
  const double lr = schedule->lr_at(iteration);
  set_lr(*optimizer, lr);
  optimizer->zero_grad();
  auto losses = model->train_losses(batch);
  const torch::Tensor& total = losses.at("loss");
  const double value = total.item<double>();
  if (!std::isfinite(value)) {
    throw DataError(
        fmt::format("training loss is {} at epoch {}, iteration {}; lower optimizer.lr or set "
                    "grad_clip_norm",
                    value, epoch + 1, iteration + 1));
  }
  total.backward();
  if (opt.grad_clip_norm > 0) clip_grad_norm(params, opt.grad_clip_norm);
  optimizer->step();
  ++iteration;
  ++state.batches_done;
  state.images += static_cast<int64_t>(batch.size());
  for (const auto& name : model->loss_names()) {
    auto it = losses.find(name);
    if (it != losses.end()) state.loss_sums[name] += it->second.item<double>();
  }
  last_lr = lr;
  events->add_scalar("train/batch_loss", value, iteration);
}

/// Trains the rest of the current epoch; false when stopped inside it (state holds the position).
bool Trainer::Impl::train_epoch() {
  data::DataLoader& loader = start_train_epoch();
  std::optional<Progress> progress;
  if (control.progress) {
    progress.emplace(fmt::format("epoch {}/{}", epoch + 1, opt.epochs),
                     static_cast<size_t>(batches_per_epoch), "batch");
    progress->advance(static_cast<size_t>(state.batches_done));
  }
  model->set_train_mode();
  const auto start = Clock::now();
  int64_t images = 0;
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  while (auto batch = loader.next()) {
    step(*batch);
    images += static_cast<int64_t>(batch->size());
    if (progress) {
      std::string text = fmt::format("loss {:.4f}", state.loss_sums["loss"] / state.batches_done);
      for (const auto& name : model->loss_names()) {
        if (name != "loss")
          text += fmt::format(" {} {:.4f}", name, state.loss_sums[name] / state.batches_done);
      }
      progress->set_postfix(fmt::format("{} lr {:.3g} {:.1f} img/s", text, last_lr, images / elapsed()));
      progress->advance();
    }
    // The last batch of an epoch is not a stopping point: validation follows, then last.ckpt at the boundary.
    if (state.batches_done < batches_per_epoch && stop_requested()) {
      state.seconds += elapsed();
      return false;
    }
  }
  state.seconds += elapsed();
  return true;
}

std::map<std::string, double> Trainer::Impl::validate() {
  // Validation must not move the training random stream: a run's weights do not depend on what it is
  // validated on or whether validation was interrupted.
  detail::GlobalRngGuard keep_training_stream;
  model->set_eval_mode();
  val_loader->start_epoch(0);
  detail::ValSums sums;
  std::optional<Progress> progress;
  if (control.progress) progress.emplace("  validating", val_loader->batches_per_epoch(), "batch");
  while (auto batch = val_loader->next()) {
    model->validate_batch(*batch, sums);
    if (progress) progress->advance();
  }
  return model->val_metrics(sums);
}

std::map<std::string, double> Trainer::Impl::finish_epoch() {
  const auto val = validate();
  std::map<std::string, double> row = val;
  row["epoch"] = epoch + 1;
  const double batches = static_cast<double>(std::max<int64_t>(state.batches_done, 1));
  for (const auto& [name, sum] : state.loss_sums) row["train/" + name] = sum / batches;
  row["lr/pg0"] = last_lr;
  csv->append(row);
  const int64_t step = epoch + 1;
  for (const auto& [key, value] : row) {
    if (key != "epoch") events->add_scalar(key, value, step);
  }
  events->add_scalar("time/epoch_seconds", state.seconds, step);
  if (tracked) {
    auto values = row;
    values.erase("epoch");
    values["time/epoch_seconds"] = state.seconds;
    tracked->log_metrics(values, step);
  }
  if (state.seconds > 0) events->add_scalar("time/images_per_second", state.images / state.seconds, step);

  auto it = row.find(metric_column());
  const double metric = it == row.end() ? std::nan("") : it->second;
  const bool improved = stopper.update(metric, epoch + 1);
  std::string summary;
  for (const auto& c : columns()) {
    if (c != "epoch" && row.count(c)) summary += fmt::format("  {} {:.5g}", c, row.at(c));
  }
  spdlog::info("epoch {}/{}{}  ({:.1f} s){}", epoch + 1, opt.epochs, summary, state.seconds,
               improved ? "  best so far" : "");
  ++epoch;
  state = EpochState{};
  if (improved) {
    // best before last: a kill between the two resumes from the previous last.ckpt and redoes this epoch.
    save(run_dir / "weights" / kBestName, /*with_optimizer=*/false);
    best_written = true;
  }
  save(run_dir / "weights" / kLastName, /*with_optimizer=*/true);
  events->flush();
  return row;
}

// ---- public -----------------------------------------------------------------------------------------------

Trainer::Trainer(Workspace ws, TrainOptions options, TrainControl control) : impl_(std::make_unique<Impl>()) {
  options.validate();
  Impl& m = *impl_;
  m.ws = std::move(ws);
  m.opt = std::move(options);
  m.control = std::move(control);
  m.data = detail::load_run_data(m.ws, m.opt, m.opt.data.dataset);
  m.setup(/*load_weights=*/true);
  m.create_run_dir();  // after every check: a run that cannot start leaves no folder behind
  config::write_resolved(config::to_yaml(m.opt), m.run_dir);
  m.start_tracking("");
}

Trainer::Trainer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Trainer::~Trainer() = default;

std::unique_ptr<Trainer> Trainer::resume(Workspace ws, const fs::path& run_or_checkpoint,
                                         const std::vector<std::string>& overrides, TrainControl control) {
  auto m = std::make_unique<Impl>();
  // A bare run name means the run folder of that name in this workspace.
  std::error_code ec;
  const bool by_name = !fs::exists(run_or_checkpoint, ec) && run_or_checkpoint.has_filename() &&
                       run_or_checkpoint == run_or_checkpoint.filename() &&
                       fs::exists(ws.runs_dir() / run_or_checkpoint, ec);
  const fs::path file =
      resume_checkpoint_path(by_name ? ws.runs_dir() / run_or_checkpoint : run_or_checkpoint);
  const Checkpoint meta = read_checkpoint_meta(file);  // corrupt or foreign files fail here, naming the file
  VIGIL_CHECK(!meta.optimizer.empty(),
              "expected a checkpoint with optimizer state to resume from (a run's weights/{}), got {}, which "
              "holds weights only",
              kLastName, to_utf8(file));
  m->ws = std::move(ws);
  m->opt = resumed_options(meta, overrides, file);
  m->control = std::move(control);
  json extra;
  try {
    extra = json::parse(meta.extra_json);
    m->data = detail::load_run_data(m->ws, m->opt, extra.at("dataset_id").get<std::string>());
  } catch (const json::exception& e) {
    throw DataError(
        fmt::format("{}: the trainer state in the checkpoint is malformed: {}", to_utf8(file), e.what()));
  }
  m->setup(/*load_weights=*/false);                               // the checkpoint holds the weights
  load_checkpoint(file, m->model->module(), m->optimizer.get());  // also the torch generator
  m->epoch = meta.epoch;
  m->iteration = meta.iteration;
  m->restore_extra(meta.extra_json, file);
  if (!meta.model_json.empty()) m->info = ModelInfo::from_json(meta.model_json);
  m->run_dir = file.parent_path().filename() == "weights" ? file.parent_path().parent_path()
                                                          : m->ws.runs_dir() / m->opt.name;
  ensure_dir(m->run_dir / "weights");
  config::write_resolved(config::to_yaml(m->opt), m->run_dir);
  m->resumed_from = file;
  m->start_tracking(m->info.run_id);
  return std::unique_ptr<Trainer>(new Trainer(std::move(m)));
}

void Trainer::Impl::start_tracking(const std::string& resumed_run_id) {
  if (!control.track) return;
  auto store = std::make_shared<store::Store>(ws);
  if (!resumed_run_id.empty()) {
    try {
      // Only an exact id continues a run: checkpoints from before tracking recorded the run's name here.
      if (store->resolve_run(resumed_run_id) == resumed_run_id)
        tracked = std::make_unique<TrackedRun>(store, resumed_run_id);
    } catch (const NotFound&) {
    }
  }
  if (!tracked) {
    store::NewRun r;
    r.name = opt.name;
    r.experiment = opt.experiment;
    r.kind = "train";
    r.dataset_id = data.version.id;
    r.run_dir = to_utf8(fs::absolute(run_dir));
    r.params = flatten_config(config::to_yaml(opt));
    r.tags = {{"arch", opt.model.arch}, {"task", spec->task}, {"dataset", data.version.name}};
    r.code.vigil = control.code_version;
    tracked = std::make_unique<TrackedRun>(store, r);
  }
  info.run_id = tracked->id();
}

void Trainer::Impl::finish_tracking(const TrainResult& r) {
  if (!tracked) return;
  std::vector<store::Artifact> artifacts;
  for (const auto& dir : {run_dir, run_dir / "weights"}) {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.is_regular_file()) artifacts.push_back(make_artifact(e.path(), run_dir, ""));
    }
  }
  tracked->log_artifacts(artifacts);
  tracked->end(r.interrupted ? store::RunStatus::kKilled : store::RunStatus::kFinished);
}

TrainResult Trainer::run() {
  Impl& m = *impl_;
  try {
    auto r = m.train_all();
    if (m.tracked) r.run_id = m.tracked->id();
    m.finish_tracking(r);
    return r;
  } catch (...) {
    if (m.tracked)
      m.tracked->end(interrupt_requested() ? store::RunStatus::kKilled : store::RunStatus::kFailed);
    throw;
  }
}

TrainResult Trainer::Impl::train_all() {
  Impl& m = *this;
  RunLog log(m.run_dir / "train.log");
  m.open_outputs();
  int64_t trainable = 0, frozen = 0;
  for (const auto& p : m.model->module().parameters()) (p.requires_grad() ? trainable : frozen) += p.numel();
  spdlog::info(
      "training {} on {}@{} (split {}: {} train / {} val samples, {} classes): {} parameters ({} "
      "trainable), {} threads, device {}; run folder {}",
      m.opt.model.arch, m.data.version.name, m.data.version.short_id(), m.opt.data.split, m.data.train.size(),
      m.data.val.size(), m.data.ds.classes.size(), trainable + frozen, trainable, m.opt.threads, m.opt.device,
      to_utf8(m.run_dir));

  if (!m.resumed_from.empty()) {
    spdlog::info("resuming from {}: epoch {}, batch {} of {}, iteration {}", to_utf8(m.resumed_from),
                 m.epoch + 1, m.state.batches_done, m.batches_per_epoch, m.iteration);
  }
  TrainResult r;
  r.run_name = m.opt.name;
  r.run_dir = m.run_dir;
  r.last_checkpoint = m.run_dir / "weights" / kLastName;
  r.metric = resolved_metric(m.opt);
  if (m.epoch >= m.opt.epochs)
    spdlog::info("run {} has already trained all {} epochs", m.opt.name, m.opt.epochs);
  while (m.epoch < m.opt.epochs) {
    if (!m.train_epoch()) {
      m.save(r.last_checkpoint, /*with_optimizer=*/true);
      r.interrupted = true;
      break;
    }
    r.last_metrics = m.finish_epoch();
    if (m.stopper.should_stop() && m.epoch < m.opt.epochs) {
      spdlog::info("early stopping: no improvement of {} for {} epochs (best {:.5g} at epoch {})", r.metric,
                   m.opt.early_stopping.patience, m.stopper.best(), m.stopper.best_epoch());
      r.early_stopped = true;
      break;
    }
    if (m.epoch < m.opt.epochs && m.stop_requested()) {
      r.interrupted = true;  // last.ckpt was just written at the epoch boundary
      break;
    }
  }
  if (!r.interrupted && !m.best_written && fs::exists(r.last_checkpoint)) {
    m.save(m.run_dir / "weights" / kBestName, /*with_optimizer=*/false);  // no finite metric: keep the last
    m.best_written = true;
  }
  m.events->flush();
  if (m.best_written) r.best_checkpoint = m.run_dir / "weights" / kBestName;
  r.epochs_completed = m.epoch;
  r.iterations = m.iteration;
  r.batch_in_epoch = m.state.batches_done;
  r.best_metric = m.stopper.best();
  r.best_epoch = m.stopper.best_epoch();
  m.train_loader.reset();
  m.val_loader.reset();
  return r;
}

const TrainOptions& Trainer::options() const {
  return impl_->opt;
}

const fs::path& Trainer::run_dir() const {
  return impl_->run_dir;
}

fs::path resume_checkpoint_path(const fs::path& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  if (fs::is_directory(path, ec)) {
    const fs::path last = path / "weights" / kLastName;
    if (fs::is_regular_file(last, ec)) return last;
    throw NotFound(fmt::format("run folder {} has no weights/{} to resume from", to_utf8(path), kLastName));
  }
  throw NotFound(fmt::format(
      "expected a run folder or a checkpoint to resume, got '{}', which does not exist", to_utf8(path)));
}

}  // namespace vigil::train
