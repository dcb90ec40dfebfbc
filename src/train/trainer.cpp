#include "vigil/train/trainer.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include "distributed.h"
#include "observers.h"
#include "trainer_data.h"
#include "trainer_model.h"
#include "vigil/core/clock.h"
#include "vigil/core/config.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/core/interrupt.h"
#include "vigil/core/strings.h"
#include "vigil/model/checkpoint.h"
#include "vigil/model/model_file.h"
#include "vigil/model/rng_guard.h"
#include "vigil/train/early_stopping.h"
#include "vigil/train/ema.h"
#include "vigil/train/observer.h"
#include "vigil/train/optim.h"
#include "vigil/train/schedule.h"
#include "vigil/train/tracking.h"

namespace vigil::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kLastName = detail::CheckpointWriter::kLastName;

/// Options a resumed run may change: none of them alters the arithmetic of training (epochs extends or
/// shortens the run, and with it the cosine schedule).
const std::vector<std::string> kResumeOverridable = {"epochs",  "time",         "device",
                                                     "threads", "data.threads", "data.prefetch_batches"};

/// Iterations of a new or resumed run after which a time budget's schedule is first fitted to the measured
/// step time (before the first validation has been timed).
constexpr int64_t kFirstFitIterations = 10;

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

torch::Device parse_device(const std::string& name) {
  torch::Device device(name);
  if (device.is_cuda()) {
    VIGIL_CHECK(torch::cuda::is_available() && device.index() < static_cast<int>(torch::cuda::device_count()),
                "expected device cpu (no such CUDA device in this build or machine), got '{}'", name);
  }
  return device;
}

/// The saved options of a checkpoint plus the overrides a resume may apply.
TrainOptions resumed_options(const model::Checkpoint& meta, const std::vector<std::string>& overrides,
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

/// What a data-parallel run cannot do (yet), refused before anything starts.
void check_distributed(const TrainOptions& opt, const DistributedOptions& d) {
  if (!d.enabled()) return;
  d.validate();
  VIGIL_CHECK(opt.data.batch_size % d.world_size == 0,
              "expected data.batch_size (the global batch, split over the processes) to be a multiple of "
              "the {} processes, got {}",
              d.world_size, opt.data.batch_size);
  // Each rank measures its own step time: a budget would fit a different schedule on every rank.
  VIGIL_CHECK(
      opt.time.empty(),
      "expected no time budget (time) in a data-parallel run ({} processes), got time: {}; set epochs "
      "instead",
      d.world_size, opt.time);
}

/// Metrics as text lines ("name<TAB>value"): NaN and infinities survive, which JSON would not carry.
std::string encode_metrics(const std::map<std::string, double>& metrics, bool stop) {
  std::string out = fmt::format("stop\t{}\n", stop ? 1 : 0);
  for (const auto& [name, value] : metrics) out += fmt::format("{}\t{:.17g}\n", name, value);
  return out;
}

std::map<std::string, double> decode_metrics(const std::string& text, bool& stop) {
  std::map<std::string, double> out;
  for (const auto& line : split(text, '\n')) {
    const auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    const double v = std::strtod(line.c_str() + tab + 1, nullptr);
    if (line.compare(0, tab, "stop") == 0) {
      stop = v != 0;
    } else {
      out[line.substr(0, tab)] = v;
    }
  }
  return out;
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
  std::optional<PlateauReducer> plateau;  ///< schedule.name plateau: the metric-driven part of the lr
  std::optional<ModelEma> ema;            ///< ema.decay > 0: the weight average validated and handed over
  EarlyStopping stopper;                  ///< early stopping, on early_stopping.metric
  EarlyStopping best;                     ///< best.ckpt, on best_metric (never stops anything)
  model::ModelInfo info;
  data::LoaderOptions train_lo, val_lo;
  int64_t batches_per_epoch = 0;

  int epoch = 0;          ///< the epoch being trained, 0-based (= epochs completed)
  int64_t iteration = 0;  ///< optimizer steps taken
  EpochState state;
  double last_lr = 0;
  fs::path resumed_from;  ///< the checkpoint a resumed run continues, empty for a new run

  // The time budget (TrainOptions::time). Time spent counts from train_all(); a resumed run adds what the
  // checkpoint had spent. The schedule is refitted to the iterations the remaining time allows, measured
  // from this process's own steps and validations (a resume may run on another machine).
  double budget = 0;        ///< seconds, 0 = none
  double spent_before = 0;  ///< seconds spent by earlier processes of this run
  Clock::time_point started = Clock::now();
  double step_seconds = 0;  ///< training time of this process's steps (loader waits included)
  int64_t steps = 0, step_images = 0;
  double last_val_seconds = -1;    ///< the last validation's wall-clock, -1 before the first
  int64_t planned_iterations = 0;  ///< the schedule's length
  double saved_step_seconds = 0;   ///< a resumed run's step time until it has measured its own

  data::Dataset epoch_ds;  ///< balance=resample: this epoch's draws (the train loader reads it)
  std::unique_ptr<detail::RunLoader> train_loader, val_loader;  ///< images, or windows for clip models
  /// The built-in outputs (observers.h, in their fixed order), then those added with add_observer.
  std::vector<std::shared_ptr<TrainObserver>> observers;
  /// Also in `observers`; knows whether best.ckpt was written.
  std::shared_ptr<detail::CheckpointWriter> checkpoints;

  /// Data-parallel runs: this rank's process group (null for a single process). Rank 0 validates and writes
  /// every output; the others train their shard and follow its decisions.
  std::unique_ptr<detail::Distributed> dist;
  bool step_stop = false;   ///< data-parallel: some rank asked to stop at the last step
  bool epoch_stop = false;  ///< data-parallel: rank 0's stop decision at the last epoch's end

  bool main_rank() const { return !dist || dist->is_main(); }
  void join_group();
  double all_reduce_step(std::map<std::string, double>& losses, int64_t& images);
  void setup(bool load_weights);
  void start_ema(const std::vector<torch::Tensor>& trained);
  void create_run_dir();
  std::vector<std::string> columns() const;
  bool stop_requested() const;
  detail::RunLoader& start_train_epoch();
  bool train_epoch();
  void step(const data::Batch& batch);
  std::map<std::string, double> validate();
  EpochReport finish_epoch();
  json extra(bool best_written) const;
  double elapsed() const;
  double mean_step_seconds() const;
  double val_estimate() const;
  bool budget_spent() const;
  void fit_schedule();
  int planned_epochs() const;
  bool restore_extra(const std::string& text, const fs::path& file);
  void save(const fs::path& file, bool with_optimizer, bool best_written);
  RunStart run_start() const;
  TrainResult train_all();
  TrainResult result(const TrainEnd& end, std::map<std::string, double> last_metrics) const;
  std::unique_ptr<TrackedRun> start_tracking(const std::string& resumed_run_id);
  void attach_outputs(std::unique_ptr<TrackedRun> tracked, bool best_written);

  /// Calls `hook` on every observer, in order.
  template <class Record>
  void notify(void (TrainObserver::*hook)(const Record&), const Record& record) {
    for (const auto& o : observers) (o.get()->*hook)(record);
  }
};

// ---- setup ----------------------------------------------------------------------------------------------

void Trainer::Impl::setup(bool load_weights) {
  if (opt.threads > 0) torch::set_num_threads(opt.threads);
  opt.threads = torch::get_num_threads();
  device = parse_device(opt.device);
  spec = &nn::find_model(opt.model.arch);
  input_size = spec->task == data::Task::kClassification ? detail::classifier_input_size(opt, *spec) : 0;

  if (spec->task == data::Task::kDetection) detail::fit_detector_anchors(opt, data.ds.samples, data.train);
  torch::manual_seed(opt.seed);
  model = detail::make_task_model(opt, data.ds.classes, input_size, data.weights, device, load_weights);
  model->frozen_norm_stats = opt.model.batch_norm == "frozen";
  params = model->trainable_parameters();
  VIGIL_CHECK(!params.empty(),
              "expected some trainable parameters, got every one frozen (model.trainable_stages "
              "{} leaves nothing to train)",
              opt.model.trainable_stages);
  optimizer = make_optimizer(params, opt.optimizer);

  train_lo = detail::loader_options(opt, *spec, true, data.train.size());
  val_lo = detail::loader_options(opt, *spec, false, data.val.size());
  const auto& d = control.distributed;
  if (d.enabled()) {
    // data.batch_size is the global batch: each rank takes its share of every batch of the shuffled epoch.
    train_lo.batch_size = opt.data.batch_size / d.world_size;
    train_lo.shard_rank = d.rank;
    train_lo.shard_count = d.world_size;
  }
  const auto n = static_cast<int64_t>(data::shard_size(data.train.size(), train_lo.shard_count)),
             bs = static_cast<int64_t>(train_lo.batch_size);
  batches_per_epoch = train_lo.drop_last ? n / bs : (n + bs - 1) / bs;
  budget = time_budget_seconds(opt.time);
  planned_iterations = opt.epochs * batches_per_epoch;
  schedule =
      std::make_unique<LrSchedule>(opt.schedule, opt.optimizer.lr, planned_iterations, batches_per_epoch);
  stopper =
      EarlyStopping(opt.early_stopping.patience, opt.early_stopping.min_delta, stop_metric_maximize(opt));
  best = EarlyStopping(0, 0.0, metric_maximize(opt));
  if (opt.schedule.name == "plateau")
    plateau.emplace(opt.schedule, opt.optimizer.lr, plateau_metric_maximize(opt));

  info = model::default_model_info(opt.model.arch, data.ds.classes);
  // The model file records what the validation loader feeds the model, so predict and serve reproduce it.
  if (spec->task == data::Task::kClassification) info.preprocess = val_lo.preprocess(false);
  if (data.clips) info.clip_length = opt.data.clips.clip_length;  // windows predict and evaluate cut
  if (spec->task == data::Task::kDetection) {
    info.detector = opt.model.detector;
    info.preprocess = nn::model_preprocess(opt.model.arch, opt.model.detector);
  }
  info.pretrained_backbone = spec->task == data::Task::kDetection && !opt.model.weights.empty();
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

/// Starts the weight average from the module's weights. Resuming, the module holds the checkpoint's model
/// tensors, which are the average, and `trained` the trained weights saved beside them, from which training
/// continues (`ema` cannot change on resume).
void Trainer::Impl::start_ema(const std::vector<torch::Tensor>& trained) {
  if (opt.ema.decay <= 0) return;
  ema.emplace(model->module(), opt.ema);
  if (!trained.empty()) ema->restore(trained);
  spdlog::info("weight EMA (decay {}, tau {} steps): validation, best.ckpt and last.ckpt hold the average",
               opt.ema.decay, opt.ema.tau);
}

/// Data-parallel: joins the process group and starts every rank from rank 0's parameters and buffers (a
/// resumed run's included).
void Trainer::Impl::join_group() {
  const auto& d = control.distributed;
  if (!d.enabled()) return;
  dist = std::make_unique<detail::Distributed>(d);
  std::vector<torch::Tensor> state_tensors = model->module().parameters();
  for (const auto& b : model->module().buffers()) state_tensors.push_back(b);
  dist->broadcast(state_tensors, "broadcasting rank 0's starting weights");
  if (!dist->is_main()) {
    spdlog::info("rank {} of {}: training {} batches of {} per epoch; rank 0 validates and writes the run",
                 d.rank, d.world_size, batches_per_epoch, train_lo.batch_size);
  }
}

/// Data-parallel: averages the gradients over the ranks in one all-reduce that also carries the step's
/// losses, its image count and whether any rank was asked to stop, so every rank takes the same step and
/// stops after the same one. Replaces `losses` and `images` by their global values; returns the mean loss.
double Trainer::Impl::all_reduce_step(std::map<std::string, double>& losses, int64_t& images) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  const auto names = model->loss_names();
  std::vector<double> extras;
  for (const auto& name : names) extras.push_back(losses.count(name) ? losses.at(name) : 0.0);
  const bool stop = interrupt_requested() ||
                    (control.stop_after_iterations >= 0 && iteration + 1 >= control.stop_after_iterations);
  extras.push_back(static_cast<double>(images));
  extras.push_back(stop ? 1.0 : 0.0);
  std::vector<torch::Tensor> parts;
  parts.reserve(grads.size() + 1);
  for (const auto& g : grads) parts.push_back(g.reshape(-1).to(torch::kCPU, torch::kFloat));
  parts.push_back(torch::tensor(extras, torch::kDouble).to(torch::kFloat));
  torch::Tensor flat = torch::cat(parts);
  dist->all_reduce_sum(flat, "the gradient all-reduce");
  const double w = static_cast<double>(dist->world_size());
  int64_t offset = 0;
  {
    torch::NoGradGuard no_grad;
    for (auto& g : grads) {
      const int64_t n = g.numel();
      g.copy_(flat.slice(0, offset, offset + n).view(g.sizes()).div(w));
      offset += n;
    }
  }
  const auto tail = flat.slice(0, offset).to(torch::kDouble);
  const auto* v = tail.data_ptr<double>();
  for (size_t i = 0; i < names.size(); ++i) losses[names[i]] = v[i] / w;
  images = static_cast<int64_t>(std::llround(v[names.size()]));
  step_stop = v[names.size() + 1] > 0;
  return losses.count("loss") ? losses.at("loss") : 0.0;
}

std::vector<std::string> Trainer::Impl::columns() const {
  std::vector<std::string> cols = {"epoch"};
  for (const auto& n : model->loss_names()) cols.push_back("train/" + n);
  for (const auto& n : model->val_names()) cols.push_back(n);
  cols.push_back("lr/pg0");
  return cols;
}

/// The built-in outputs, in the order observers.h explains. `tracked` is null when tracking is off.
void Trainer::Impl::attach_outputs(std::unique_ptr<TrackedRun> tracked, bool best_written) {
  if (control.progress) observers.push_back(std::make_shared<detail::ProgressObserver>());
  observers.push_back(std::make_shared<detail::ResultsCsvObserver>());
  observers.push_back(std::make_shared<detail::CurvesObserver>());  // reads the row just written
  if (tracked) observers.push_back(std::make_shared<detail::TrackingObserver>(std::move(tracked), run_dir));
  observers.push_back(std::make_shared<detail::LogObserver>());
  checkpoints = std::make_shared<detail::CheckpointWriter>(
      run_dir,
      [this](const fs::path& file, bool with_optimizer, bool best) { save(file, with_optimizer, best); },
      best_written);
  observers.push_back(checkpoints);
  observers.push_back(std::make_shared<detail::TensorBoardObserver>());
}

bool Trainer::Impl::stop_requested() const {
  if (dist) return step_stop;  // every rank's request, gathered by the step's all-reduce
  return interrupt_requested() ||
         (control.stop_after_iterations >= 0 && iteration >= control.stop_after_iterations);
}

// ---- checkpoints ----------------------------------------------------------------------------------------

json Trainer::Impl::extra(bool best_written) const {
  return {{"dataset_id", data.version.id},
          {"dataset", data.version.name},
          {"run_name", opt.name},
          {"batch_in_epoch", state.batches_done},
          {"epoch_images", state.images},
          {"epoch_loss_sums", state.loss_sums},
          {"epoch_seconds", state.seconds},
          {"early_stopping", stopper.to_json()},
          {"plateau", plateau ? plateau->to_json() : std::string()},
          {"best", best.to_json()},
          {"best_written", best_written},
          {"last_lr", last_lr},
          {"elapsed_seconds", elapsed()},
          {"val_seconds", last_val_seconds},
          {"step_seconds", mean_step_seconds()}};
}

/// Restores the position and early stopping; returns whether best.ckpt was written (the checkpoint writer's).
bool Trainer::Impl::restore_extra(const std::string& text, const fs::path& file) {
  try {
    const json j = json::parse(text);
    state.batches_done = j.at("batch_in_epoch").get<int64_t>();
    state.images = j.at("epoch_images").get<int64_t>();
    state.loss_sums = j.at("epoch_loss_sums").get<std::map<std::string, double>>();
    state.seconds = j.at("epoch_seconds").get<double>();
    stopper = EarlyStopping::from_json(j.at("early_stopping").get<std::string>());
    // A resumed plateau run keeps its reduced learning rate and its count of bad epochs.
    if (plateau && !j.value("plateau", std::string()).empty())
      plateau = PlateauReducer::from_json(j.at("plateau").get<std::string>());
    // Checkpoints from before best_metric existed kept best.ckpt on the early-stopping metric.
    best = j.contains("best") ? EarlyStopping::from_json(j.at("best").get<std::string>()) : stopper;
    spent_before = j.value("elapsed_seconds", 0.0);
    last_val_seconds = j.value("val_seconds", -1.0);
    saved_step_seconds = j.value("step_seconds", 0.0);
    const bool best_written = j.at("best_written").get<bool>();
    last_lr = j.at("last_lr").get<double>();
    return best_written;
  } catch (const json::exception& e) {
    throw DataError(
        fmt::format("{}: the trainer state in the checkpoint is malformed: {}", to_utf8(file), e.what()));
  }
}

void Trainer::Impl::save(const fs::path& file, bool with_optimizer, bool best_written) {
  model::Checkpoint meta;
  meta.epoch = epoch;
  meta.iteration = iteration;
  meta.arch = opt.model.arch;
  meta.class_names = info.class_names;
  meta.config_yaml = config::to_yaml(opt);
  meta.extra_json = extra(best_written).dump();
  meta.model_json = info.to_json();
  // With an average, the model tensors saved are the average (what predict, evaluate and serve load); a
  // checkpoint to resume from also keeps the trained weights, on which training continues.
  EmaSwap averaged(ema ? &*ema : nullptr);
  if (ema && with_optimizer) meta.extra_tensors = ema->tensors();
  model::save_checkpoint(file, meta, model->module(), with_optimizer ? optimizer.get() : nullptr);
}

// ---- the loop -------------------------------------------------------------------------------------------

detail::RunLoader& Trainer::Impl::start_train_epoch() {
  const auto& d = opt.data;
  if (!data.sample_p.empty()) {
    train_loader.reset();  // it reads epoch_ds, which is replaced
    epoch_ds = detail::resampled_epoch(data, opt.seed, epoch);
    std::vector<int> all(epoch_ds.samples.size());
    std::iota(all.begin(), all.end(), 0);
    train_loader = std::make_unique<detail::RunLoader>(std::make_unique<data::DataLoader>(
        epoch_ds, data.images, std::move(all), train_lo, d.detection_augment, d.classification_augment));
  } else if (!train_loader) {
    train_loader = detail::make_run_loader(data, opt, train_lo, /*train=*/true);
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
  const double lr = schedule->lr_at(iteration) * (plateau ? plateau->scale() : 1.0);
  set_lr(*optimizer, lr);
  optimizer->zero_grad();
  if (dist && !dist->is_main()) {
    // Rank 0 draws dropout from the run's stream (saved in last.ckpt); every other rank from its own stream
    // per step, so its masks differ from rank 0's and a resumed run draws the same ones again.
    torch::manual_seed(splitmix64(splitmix64(opt.seed, static_cast<uint64_t>(dist->rank())),
                                  static_cast<uint64_t>(iteration)));
  }
  auto losses = model->train_losses(batch);
  const torch::Tensor& total = losses.at("loss");
  double value = total.item<double>();
  std::map<std::string, double> loss_values;
  for (const auto& name : model->loss_names()) {
    auto it = losses.find(name);
    if (it != losses.end()) loss_values[name] = it->second.item<double>();
  }
  auto images = static_cast<int64_t>(batch.size());
  // A data-parallel rank checks the loss after the all-reduce: every rank then sees the same mean and fails
  // together instead of leaving the others waiting in the collective.
  if (dist) {
    total.backward();
    value = all_reduce_step(loss_values, images);
  }
  if (!std::isfinite(value)) {
    throw DataError(
        fmt::format("training loss is {} at epoch {}, iteration {}; lower optimizer.lr or set "
                    "grad_clip_norm",
                    value, epoch + 1, iteration + 1));
  }
  if (!dist) total.backward();
  if (opt.grad_clip_norm > 0) clip_grad_norm(params, opt.grad_clip_norm);
  optimizer->step();
  ++iteration;
  if (ema) ema->update(iteration);
  ++state.batches_done;
  state.images += images;
  for (const auto& [name, v] : loss_values) state.loss_sums[name] += v;
  last_lr = lr;

  BatchReport report;
  report.epoch = epoch + 1;
  report.iteration = iteration;
  report.batch = state.batches_done;
  report.batches_per_epoch = batches_per_epoch;
  report.images = images;
  report.loss = value;
  report.lr = lr;
  report.time_left = budget > 0 ? std::max(0.0, budget - elapsed()) : -1;
  for (const auto& name : model->loss_names()) {
    auto it = state.loss_sums.find(name);
    report.mean_losses.emplace_back(name,
                                    it == state.loss_sums.end() ? 0.0 : it->second / state.batches_done);
  }
  notify(&TrainObserver::on_batch_end, report);
}

/// Trains the rest of the current epoch; false when stopped inside it (state holds the position).
bool Trainer::Impl::train_epoch() {
  detail::RunLoader& loader = start_train_epoch();
  model->set_train_mode();
  notify(&TrainObserver::on_epoch_start,
         EpochStart{epoch + 1, planned_epochs(), batches_per_epoch, state.batches_done});
  const auto start = Clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  auto last = Clock::now();
  while (auto batch = loader.next()) {
    const int64_t before = state.images;
    step(*batch);
    const auto now = Clock::now();
    step_seconds += std::chrono::duration<double>(now - last).count();
    last = now;
    ++steps;
    step_images += state.images - before;  // every rank's images in a data-parallel run
    if (budget > 0 && steps == kFirstFitIterations) fit_schedule();
    // The last batch of an epoch is not a stopping point: validation follows, then last.ckpt at the boundary.
    if (state.batches_done < batches_per_epoch && stop_requested()) {
      state.seconds += seconds();
      return false;
    }
    // The budget ends the epoch early, leaving the time its validation is expected to take: the run ends
    // with validated best weights at the budget, not one validation past it.
    if (budget > 0 && elapsed() + val_estimate() >= budget) break;
  }
  state.seconds += seconds();
  return true;
}

double Trainer::Impl::elapsed() const {
  return spent_before + std::chrono::duration<double>(Clock::now() - started).count();
}

/// What the next validation should take: the last one, or before any, the validation images at half the
/// measured cost of a training image (a forward pass without the backward one).
double Trainer::Impl::val_estimate() const {
  if (last_val_seconds >= 0) return last_val_seconds;
  if (step_images == 0) return 0;
  return 0.5 * step_seconds / static_cast<double>(step_images) * static_cast<double>(data.val.size());
}

double Trainer::Impl::mean_step_seconds() const {
  return steps > 0 ? step_seconds / static_cast<double>(steps) : saved_step_seconds;
}

bool Trainer::Impl::budget_spent() const {
  if (budget <= 0) return false;
  // Less left than a validation plus a useful stretch of training (2% of the budget, at least a step):
  // a new epoch, or a resumed process, would spend a whole validation on a few steps.
  return elapsed() + val_estimate() + std::max(mean_step_seconds(), 0.02 * budget) >= budget;
}

/// Lays the schedule over the iterations the remaining budget allows at the measured cost of a step plus
/// each epoch's validation (Ultralytics refits its epoch count the same way after each epoch).
void Trainer::Impl::fit_schedule() {
  if (steps == 0) return;
  const double per_step = step_seconds / static_cast<double>(steps) +
                          val_estimate() / static_cast<double>(std::max<int64_t>(batches_per_epoch, 1));
  const double left = std::max(0.0, budget - elapsed());
  planned_iterations = std::max(iteration + 1, iteration + static_cast<int64_t>(left / per_step));
  schedule =
      std::make_unique<LrSchedule>(opt.schedule, opt.optimizer.lr, planned_iterations, batches_per_epoch);
}

/// Epochs the run trains in all: `epochs`, or with a budget the current fit of it.
int Trainer::Impl::planned_epochs() const {
  if (budget <= 0) return opt.epochs;
  const int64_t bpe = std::max<int64_t>(batches_per_epoch, 1);
  return static_cast<int>(std::max<int64_t>(epoch + 1, (planned_iterations + bpe - 1) / bpe));
}

std::map<std::string, double> Trainer::Impl::validate() {
  // Validation must not move the training random stream: a run's weights do not depend on what it is
  // validated on or whether validation was interrupted.
  model::detail::GlobalRngGuard keep_training_stream;
  EmaSwap averaged(ema ? &*ema : nullptr);  // with an average, it is what is scored (and kept in best.ckpt)
  model->set_eval_mode();
  val_loader->start_epoch(0);
  detail::ValSums sums;
  ValidationProgress progress{epoch + 1, 0, static_cast<int64_t>(val_loader->batches_per_epoch())};
  notify(&TrainObserver::on_validation_start, progress);
  while (auto batch = val_loader->next()) {
    model->validate_batch(*batch, sums);
    ++progress.batch;
    notify(&TrainObserver::on_validation_batch_end, progress);
  }
  return model->val_metrics(sums);
}

/// Validates, moves the position past the epoch (so a checkpoint written now resumes at the next one) and
/// tells the observers, which write the epoch's outputs.
EpochReport Trainer::Impl::finish_epoch() {
  EpochReport r;
  if (dist) {
    // Rank 0's batch-norm statistics are the model's (DDP's broadcast_buffers, once an epoch); only rank 0
    // validates, and every rank takes its metrics and its stop decision, so early stopping and the end of
    // the run agree everywhere.
    dist->broadcast(model->module().buffers(), "broadcasting rank 0's buffers");
  }
  if (main_rank()) {
    const auto val_start = Clock::now();
    r.metrics = validate();
    last_val_seconds = std::chrono::duration<double>(Clock::now() - val_start).count();
  }
  if (dist) {
    const std::string shared = dist->share(fmt::format("epoch/{}", epoch + 1),
                                           encode_metrics(r.metrics, step_stop || interrupt_requested()));
    r.metrics = decode_metrics(shared, epoch_stop);
  }
  r.epoch = epoch + 1;
  r.metrics["epoch"] = r.epoch;
  const double batches = static_cast<double>(std::max<int64_t>(state.batches_done, 1));
  for (const auto& [name, sum] : state.loss_sums) r.metrics["train/" + name] = sum / batches;
  r.metrics["lr/pg0"] = last_lr;
  r.seconds = state.seconds;
  r.images = state.images;
  r.iteration = iteration;

  auto value_of = [&](const std::string& metric) {
    auto it = r.metrics.find(train::metric_column(metric));
    return it == r.metrics.end() ? std::nan("") : it->second;
  };
  r.metric = resolved_metric(opt);
  r.metric_value = value_of(r.metric);
  r.improved = best.update(r.metric_value, r.epoch);
  r.best_metric = best.best();
  r.best_epoch = best.best_epoch();
  r.stop_metric = resolved_stop_metric(opt);
  r.stop_value = value_of(r.stop_metric);
  stopper.update(r.stop_value, r.epoch);
  if (plateau) {
    // Every rank has the same shared metrics, so every rank reduces at the same epoch.
    const std::string watched = plateau_metric(opt);
    if (plateau->step(value_of(watched)))
      spdlog::info("epoch {}: {} has not improved for more than {} epoch(s); learning rate reduced to {:.3g}",
                   r.epoch, watched, opt.schedule.patience, plateau->lr());
  }
  if (budget > 0) fit_schedule();
  r.epochs = planned_epochs();
  ++epoch;
  state = EpochState{};
  notify(&TrainObserver::on_epoch_end, r);
  return r;
}

// ---- public -----------------------------------------------------------------------------------------------

Trainer::Trainer(Workspace ws, TrainOptions options, TrainControl control) : impl_(std::make_unique<Impl>()) {
  options.validate();
  check_distributed(options, control.distributed);
  Impl& m = *impl_;
  m.ws = std::move(ws);
  m.opt = std::move(options);
  m.control = std::move(control);
  m.data = detail::load_run_data(m.ws, m.opt, m.opt.data.dataset);
  m.setup(/*load_weights=*/true);
  m.join_group();
  m.start_ema({});             // from the weights every rank now shares
  if (!m.main_rank()) return;  // rank 0 writes the run folder and tracks the run
  m.create_run_dir();          // after every check: a run that cannot start leaves no folder behind
  config::write_resolved(config::to_yaml(m.opt), m.run_dir);
  m.attach_outputs(m.start_tracking(""), /*best_written=*/false);
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
  const model::Checkpoint meta =
      model::read_checkpoint_meta(file);  // corrupt or foreign files fail here, naming the file
  VIGIL_CHECK(!meta.optimizer.empty(),
              "expected a checkpoint with optimizer state to resume from (a run's weights/{}), got {}, which "
              "holds weights only",
              kLastName, to_utf8(file));
  m->ws = std::move(ws);
  m->opt = resumed_options(meta, overrides, file);
  check_distributed(m->opt, control.distributed);
  m->control = std::move(control);
  json extra;
  try {
    extra = json::parse(meta.extra_json);
    m->data = detail::load_run_data(m->ws, m->opt, extra.at("dataset_id").get<std::string>());
  } catch (const json::exception& e) {
    throw DataError(
        fmt::format("{}: the trainer state in the checkpoint is malformed: {}", to_utf8(file), e.what()));
  }
  m->setup(/*load_weights=*/false);  // the checkpoint holds the weights
  const model::Checkpoint loaded =
      model::load_checkpoint(file, m->model->module(), m->optimizer.get());  // also the torch generator
  try {
    m->start_ema(loaded.extra_tensors);
  } catch (const DataError& e) {
    throw DataError(fmt::format("{}: {}", to_utf8(file), e.what()));
  }
  m->epoch = meta.epoch;
  m->iteration = meta.iteration;
  const bool best_written = m->restore_extra(meta.extra_json, file);
  if (!meta.model_json.empty()) m->info = model::ModelInfo::from_json(meta.model_json);
  m->run_dir = file.parent_path().filename() == "weights" ? file.parent_path().parent_path()
                                                          : m->ws.runs_dir() / m->opt.name;
  m->join_group();  // every rank read the same checkpoint; the broadcast makes sure of it
  m->resumed_from = file;
  if (!m->main_rank()) return std::unique_ptr<Trainer>(new Trainer(std::move(m)));
  ensure_dir(m->run_dir / "weights");
  config::write_resolved(config::to_yaml(m->opt), m->run_dir);
  m->attach_outputs(m->start_tracking(m->info.run_id), best_written);
  return std::unique_ptr<Trainer>(new Trainer(std::move(m)));
}

/// The run in the tracking store (continued when `resumed_run_id` names one), null when tracking is off.
std::unique_ptr<TrackedRun> Trainer::Impl::start_tracking(const std::string& resumed_run_id) {
  if (!control.track) return nullptr;
  auto store = std::make_shared<store::Store>(ws);
  std::unique_ptr<TrackedRun> tracked;
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
    r.tags = {
        {"arch", opt.model.arch}, {"task", data::task_name(spec->task)}, {"dataset", data.version.name}};
    r.code.vigil = control.code_version;
    tracked = std::make_unique<TrackedRun>(store, r);
  }
  info.run_id = tracked->id();
  return tracked;
}

void Trainer::add_observer(std::shared_ptr<TrainObserver> observer) {
  VIGIL_CHECK(observer != nullptr, "expected an observer, got a null pointer");
  impl_->observers.push_back(std::move(observer));
}

TrainResult Trainer::run() {
  Impl& m = *impl_;
  try {
    TrainResult r;
    {
      // Closed before on_finish: the tracking store records train.log as an artifact then.
      std::optional<RunLog> log;
      if (m.main_rank()) log.emplace(m.run_dir / "train.log");
      r = m.train_all();
    }
    m.notify(&TrainObserver::on_finish, r);
    return r;
  } catch (...) {
    for (const auto& o : m.observers) o->on_failure();
    throw;
  }
}

RunStart Trainer::Impl::run_start() const {
  RunStart s;
  s.run_name = opt.name;
  s.run_id = control.track ? info.run_id : "";  // start_tracking set it to the store's id
  s.run_dir = run_dir;
  s.resumed_from = resumed_from;
  s.arch = opt.model.arch;
  s.dataset = fmt::format("{}@{}", data.version.name, data.version.short_id());
  s.split = opt.data.split;
  s.train_samples = data.train.size();
  s.val_samples = data.val.size();
  s.classes = data.ds.classes.size();
  for (const auto& p : model->module().parameters()) {
    s.parameters += p.numel();
    if (p.requires_grad()) s.trainable_parameters += p.numel();
  }
  s.threads = opt.threads;
  s.device = opt.device;
  s.epochs = planned_epochs();
  s.epochs_completed = epoch;
  s.iterations = iteration;
  s.batch_in_epoch = state.batches_done;
  s.batches_per_epoch = batches_per_epoch;
  s.columns = columns();
  s.metric = resolved_metric(opt);
  s.stop_metric = resolved_stop_metric(opt);
  s.time_budget = budget;
  s.time_spent = spent_before;
  return s;
}

TrainResult Trainer::Impl::train_all() {
  if (main_rank()) val_loader = detail::make_run_loader(data, opt, val_lo, /*train=*/false);
  started = Clock::now();
  notify(&TrainObserver::on_train_start, run_start());
  TrainEnd end;
  std::map<std::string, double> last_metrics;
  while (budget > 0 || epoch < opt.epochs) {
    if (budget_spent()) {
      end.time_budget_reached = true;
      break;
    }
    if (!train_epoch()) {
      end.interrupted = end.stopped_inside_epoch = true;  // the checkpoint writer saves the position
      break;
    }
    last_metrics = finish_epoch().metrics;
    if (stopper.should_stop() && (budget > 0 || epoch < opt.epochs)) {
      end.early_stopped = true;
      break;
    }
    if ((budget > 0 || epoch < opt.epochs) && (dist ? epoch_stop : stop_requested())) {
      end.interrupted = true;  // last.ckpt was just written at the epoch boundary
      break;
    }
  }
  end.epochs_completed = epoch;
  end.iterations = iteration;
  end.batch_in_epoch = state.batches_done;
  end.seconds = elapsed();
  end.metric = resolved_metric(opt);
  end.best_metric = best.best();
  end.best_epoch = best.best_epoch();
  end.stop_metric = resolved_stop_metric(opt);
  end.best_stop_value = stopper.best();
  end.best_stop_epoch = stopper.best_epoch();
  end.patience = opt.early_stopping.patience;
  notify(&TrainObserver::on_train_end, end);
  // Rank 0 hosts the rendezvous store: no rank leaves before every other has read the last decision.
  if (dist) dist->barrier();
  train_loader.reset();
  val_loader.reset();
  // The reference profile for drift monitoring, beside the weights handed over (train/run_profile.h).
  if (main_rank() && !end.interrupted && !data.clips && checkpoints) {
    const fs::path best = checkpoints->best_checkpoint();
    detail::write_run_profile(best.empty() ? checkpoints->last_checkpoint() : best, data);
  }
  return result(end, std::move(last_metrics));
}

TrainResult Trainer::Impl::result(const TrainEnd& end, std::map<std::string, double> last_metrics) const {
  TrainResult r;
  r.run_name = opt.name;
  r.run_id = control.track ? info.run_id : "";
  r.run_dir = run_dir;
  if (checkpoints) {  // rank 0 of a data-parallel run or a single process
    r.last_checkpoint = checkpoints->last_checkpoint();
    r.best_checkpoint = checkpoints->best_checkpoint();
  }
  r.interrupted = end.interrupted;
  r.early_stopped = end.early_stopped;
  r.time_budget_reached = end.time_budget_reached;
  r.seconds = end.seconds;
  r.epochs_completed = end.epochs_completed;
  r.iterations = end.iterations;
  r.train_images = step_images;
  r.train_seconds = step_seconds;
  r.batch_in_epoch = end.batch_in_epoch;
  r.metric = end.metric;
  r.best_metric = end.best_metric;
  r.best_epoch = end.best_epoch;
  r.stop_metric = end.stop_metric;
  r.last_metrics = std::move(last_metrics);
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
