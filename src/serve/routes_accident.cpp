// Route table: the accident-detection seed's API (a FastAPI app: POST /predict with the frames of one
// sequence, /prediction-stats, /prediction-history, /retrain, /upload, /training-data-sources), answered with
// the seed's keys by vigil's own parts: the frames go through the batcher like /v1/predict and land in the
// prediction log (so the statistics and the history are read from the log and survive restarts), /retrain is
// a job of the retrain queue, /upload is a new content-addressed version of a dataset, and the data sources
// are the served model's training dataset in the dataset store. GET /health is kserve_routes()' (it carries
// the seed's "status"). docs/serve-api.md is the contract.

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "router.h"
#include "server_impl.h"
#include "upload_parts.h"
#include "vigil/core/clock.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/data/store.h"
#include "vigil/data/task.h"
#include "vigil/serve/event_query.h"

namespace vigil::serve {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Req = httplib::Request;
using Res = httplib::Response;
using Clock = std::chrono::steady_clock;

/// The seed's decision threshold on the positive probability.
constexpr double kDecision = 0.5;
/// Log rows read for the statistics and the history at most (as /v1/stats?scope=all reads).
constexpr int kMaxLogRows = 200000;
/// The route label the frames' log rows carry (the table's row below).
constexpr const char* kPredictRoute = "/predict";

double round6(double v) {
  return std::round(v * 1e6) / 1e6;
}

/// Lower case without '_', ' ' and '-': "Non_Accident", "non accident" and "NonAccident" are one name.
std::string class_key(std::string_view name) {
  std::string key;
  for (char c : name)
    if (c != '_' && c != ' ' && c != '-')
      key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return key;
}

/// The class whose probability /predict answers; 409 when the served model cannot answer one.
int positive_class(const Server::Impl& impl, const ServedModel& m) {
  if (m.is_detector())
    throw_http(
        409, "conflict",
        fmt::format("POST /predict answers a class probability for a sequence of frames; the served model "
                    "'{}' ({}) is a detector: serve an image classifier (e.g. one trained on "
                    "Accident / Non Accident folders)",
                    m.name, m.info.arch));
  const std::string wanted = impl.options.positive_class.empty() ? "Accident" : impl.options.positive_class;
  const std::vector<std::string> names = m.classes();
  for (size_t c = 0; c < names.size(); ++c)
    if (class_key(names[c]) == class_key(wanted)) return static_cast<int>(c);
  throw_http(409, "conflict",
             fmt::format("the served model '{}' has no class named like '{}' (its classes: {}); set "
                         "positive_class (--positive-class) to the class /predict answers",
                         m.name, wanted, join(names, ", ")));
}

/// The other class of a two-class model, else "not <positive>": what a probability under 0.5 means.
std::string negative_label(const ServedModel& m, int positive) {
  const std::vector<std::string> names = m.classes();
  if (names.size() == 2) return names[positive == 0 ? 1 : 0];
  return "not " + names[static_cast<size_t>(positive)];
}

/// The frames of a /predict request: every part of field 'files'; 400 without, 413 past max_batch_images,
/// 415 for a part that is no image, before any frame is inferred (a refused sequence leaves no log rows).
std::vector<ImagePart> sequence_frames(const Server::Impl& impl, const Req& req) {
  if (!req.is_multipart_form_data() || !req.has_file("files"))
    throw_http(400, "bad_request",
               "files: expected the frames of one sequence as multipart field 'files' (one or more images, "
               "e.g. -F files=@frame1.jpg -F files=@frame2.jpg)");
  std::vector<ImagePart> parts = image_parts(req, "files");
  if (static_cast<int>(parts.size()) > impl.options.max_batch_images)
    throw_http(
        413, "too_large",
        fmt::format("files: {} frames in one sequence; this server takes at most {} (max_batch_images)",
                    parts.size(), impl.options.max_batch_images));
  for (const auto& p : parts)
    if (image::sniff_type(p.bytes) == image::ImageType::kUnknown)
      throw_http(415, "unsupported_media_type",
                 fmt::format("files: '{}' is not an image (JPEG, PNG, BMP, WebP or TIFF, recognised by their "
                             "first bytes)",
                             p.filename));
  return parts;
}

/// POST /predict: the frames of one sequence, each answered by the served image classifier; the sequence's
/// probability is the mean of the frames' positive-class probabilities.
void accident_predict(Server::Impl& impl, const Req& req, Res& res) {
  const auto start = Clock::now();
  impl.check_rate_limit(req);
  auto model = impl.model_or_503();
  PredictParams params;
  params.post = model->defaults;
  params.positive_class = positive_class(impl, *model);
  const std::vector<ImagePart> parts = sequence_frames(impl, req);
  params.sequence = new_request_id();
  const std::vector<ImageOutcome> outcomes = impl.predict_images(model, parts, params, false);
  for (const auto& o : outcomes) {
    if (!o.error) continue;
    impl.stats.record_error();
    throw *o.error;
  }
  const auto pc = static_cast<size_t>(params.positive_class);
  double sum = 0;
  int kept = 0;
  json frames = json::array(), ids = json::array();
  const double total_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  for (const auto& o : outcomes) {
    const model::Prediction& p = o.result.prediction;
    const double positive = pc < p.probs.size() ? p.probs[pc] : 0.0;
    sum += positive;
    if (!o.id.empty() && impl.recorder->keeps_image(o.id)) ++kept;
    if (!o.id.empty()) ids.push_back(o.id);
    frames.push_back({{"filename", o.filename},
                      {"prediction_id", o.id.empty() ? json(nullptr) : json(o.id)},
                      {"label", p.label},
                      {"score", round6(p.score)},
                      {"probability", round6(positive)}});
    impl.stats.record(answer_labels(p), total_ms);
  }
  const double prediction = sum / static_cast<double>(outcomes.size());
  const bool positive = prediction >= kDecision;
  const std::string positive_name = model->classes()[pc];
  send_json(res, {{"prediction", round6(prediction)},
                  {"stored_in_mongodb", false},
                  {"images_stored", kept},
                  {"accident_detected", positive},
                  {"label", positive ? positive_name : negative_label(*model, params.positive_class)},
                  {"confidence", round6(positive ? prediction : 1 - prediction)},
                  {"positive_class", positive_name},
                  {"sequence_id", impl.recorder ? json(params.sequence) : json(nullptr)},
                  {"prediction_ids", ids},
                  {"frames", frames},
                  {"model", {{"name", model->name}, {"version", model->version}}},
                  {"request_id", request_context().id},
                  {"timings_ms", {{"total", std::round(total_ms * 1000) / 1000}}}});
}

/// A log row's place in the order the log is read in (newest first, ties by id). The sums below are taken in
/// this order, so an index read in pieces adds the same doubles in the same order as one full read.
struct LogKey {
  int64_t time_ms = 0;
  std::string id;
  bool operator<(const LogKey& o) const { return time_ms != o.time_ms ? time_ms > o.time_ms : id < o.id; }
};

/// One frame's row of a /predict request.
struct LoggedFrame {
  std::string sequence;
  int index = 0;  ///< the frame's place in its request
  double positive = 0;
  bool kept = false;  ///< its image is kept
  double latency_ms = 0;
  std::string model, version;
};

/// One /predict request as the prediction log holds it: its frames' rows, grouped by their sequence id.
struct LoggedSequence {
  std::set<LogKey> rows;  ///< its frames' rows, in log order
  // What derive() computes from the rows:
  std::string id;
  LogKey newest;  ///< its first row in log order: its place among the sequences
  double positive_sum = 0;
  std::vector<std::pair<int, std::string>> frames;  ///< (frame index in the request, prediction id)
  int images_kept = 0;
  std::string model, version;
  double latency_ms = 0;
  double prediction() const { return positive_sum / static_cast<double>(frames.size()); }
  std::vector<std::string> frame_ids() const {
    std::vector<std::string> ids;
    for (const auto& f : frames) ids.push_back(f.second);
    return ids;
  }
};

/// Sequences in a full read's order (by their newest row: newest first).
using Sequences = std::map<LogKey, const LoggedSequence*>;

/// Every sequence of the prediction log (the rows of POST /predict among its newest kMaxLogRows rows), kept
/// up to date by reading only the rows at or after a watermark: replicas share the log and write in
/// batches, so a row can land late with an older time; the overlap reads those again and the frames are
/// told apart by their row ids. The first refresh reads the whole window, and so does one after the log
/// shrank or lost a row this index holds (retention pruning).
class SequenceIndex {
 public:
  /// Brings the index up to the log's rows.
  void refresh(store::PredictionLog& log);
  const Sequences& newest_first() const { return order_; }

 private:
  /// How far before the watermark each read starts: a replica's batch written that late is still counted.
  static constexpr int64_t kOverlapMs = 60000;

  void clear() { *this = SequenceIndex(); }
  bool holds_rows_of(store::PredictionLog& log) const;
  void add(const store::PredictionRow& row, std::set<std::string>& touched);
  void trim(const LogKey& oldest_kept, std::set<std::string>& touched);
  void derive(const std::string& id);

  std::map<LogKey, LoggedFrame> frames_;  ///< every frame held, in log order
  std::unordered_map<std::string, LoggedSequence> sequences_;
  Sequences order_;
  std::string anchor_;     ///< the newest row read (any route): gone = another log; "" = none read yet
  int64_t total_ = 0;      ///< the log's rows at the last refresh
  int64_t watermark_ = 0;  ///< the next read starts kOverlapMs before this (Unix ms)
};

bool SequenceIndex::holds_rows_of(store::PredictionLog& log) const {
  try {
    log.get(anchor_);
    if (!frames_.empty()) log.get(frames_.rbegin()->first.id);  // pruning takes the oldest rows first
    return true;
  } catch (const NotFound&) {
    return false;
  }
}

void SequenceIndex::refresh(store::PredictionLog& log) {
  try {
    bool full = anchor_.empty();
    int64_t total = 0;
    if (!full) {
      store::PredictionFilter head;
      head.limit = 1;
      total = log.search(head).total;
      full = total < total_ || !holds_rows_of(log);
    }
    const int64_t now = unix_now_ms();
    store::PredictionFilter f;
    f.limit = kMaxLogRows;
    store::PredictionPage page;
    while (true) {
      if (full) clear();
      f.since_ms = full ? 0 : std::max<int64_t>(0, watermark_ - kOverlapMs);
      page = log.search(f);
      if (full || page.total <= static_cast<int64_t>(page.rows.size())) break;
      full = true;  // more new rows than the window holds: the window is among them
    }
    if (full) total = page.total;
    std::set<std::string> touched;
    for (const auto& row : page.rows) add(row, touched);
    // Past kMaxLogRows rows a full read sees only the newest ones: drop what has slid out of that window.
    if (!full && total + static_cast<int64_t>(page.rows.size()) > kMaxLogRows) {
      store::PredictionFilter last;
      last.limit = 1;
      last.offset = kMaxLogRows - 1;
      const store::PredictionPage edge = log.search(last);
      if (!edge.rows.empty()) trim({edge.rows.front().time_ms, edge.rows.front().id}, touched);
    }
    for (const auto& id : touched) derive(id);
    if (!page.rows.empty()) {  // the newest row of the log: every read is a prefix of the log order
      anchor_ = page.rows.front().id;
      // A replica's clock ahead of ours must not push the start past rows ours has yet to write.
      watermark_ = std::min(page.rows.front().time_ms, now);
    }
    total_ = total;
  } catch (...) {
    clear();  // half a read is no index: the next call reads the window again
    throw;
  }
}

void SequenceIndex::add(const store::PredictionRow& row, std::set<std::string>& touched) {
  if (row.route != kPredictRoute) return;
  LogKey key{row.time_ms, row.id};
  if (frames_.count(key) > 0) return;  // read again by the overlap
  const json out = json::parse(row.output_json, nullptr, false);
  if (!out.is_object() || !out.contains("sequence") || !out["sequence"].is_object()) return;
  const json& sequence = out["sequence"];
  std::string id = sequence.value("id", "");
  if (id.empty()) return;
  LoggedFrame frame{id,
                    sequence.value("frame", 0),
                    sequence.value("positive", 0.0),
                    !row.image.empty(),
                    row.latency_ms,
                    row.model,
                    row.version};
  sequences_[id].rows.insert(key);
  frames_.emplace(std::move(key), std::move(frame));
  touched.insert(std::move(id));
}

void SequenceIndex::trim(const LogKey& oldest_kept, std::set<std::string>& touched) {
  while (!frames_.empty() && oldest_kept < frames_.rbegin()->first) {
    const auto last = std::prev(frames_.end());
    sequences_.at(last->second.sequence).rows.erase(last->first);
    touched.insert(last->second.sequence);
    frames_.erase(last);
  }
}

/// Recomputes a sequence from its rows, in log order as a full read adds them, and its place in order_.
void SequenceIndex::derive(const std::string& id) {
  const auto it = sequences_.find(id);
  if (it == sequences_.end()) return;
  LoggedSequence& s = it->second;
  order_.erase(s.newest);
  if (s.rows.empty()) {
    sequences_.erase(it);
    return;
  }
  s.id = id;
  s.newest = *s.rows.begin();
  const LoggedFrame& first = frames_.at(s.newest);
  s.model = first.model;
  s.version = first.version;
  s.positive_sum = 0;
  s.frames.clear();
  s.images_kept = 0;
  s.latency_ms = 0;
  for (const LogKey& key : s.rows) {
    const LoggedFrame& f = frames_.at(key);
    s.positive_sum += f.positive;
    s.frames.emplace_back(f.index, key.id);
    if (f.kept) ++s.images_kept;
    s.latency_ms = std::max(s.latency_ms, f.latency_ms);
  }
  std::sort(s.frames.begin(), s.frames.end());
  order_.emplace(s.newest, &s);
}

}  // namespace

struct AccidentSequences {
  std::mutex mutex;
  SequenceIndex index;
};

namespace {

/// Runs `fn` on this server's sequences, brought up to date with the prediction log. 503 without a log.
/// httplib runs handlers concurrently: the index is read and refreshed under its own lock.
void with_sequences(Server::Impl& impl, const std::function<void(const Sequences&)>& fn) {
  if (!impl.recorder)
    throw_http(503, "unavailable",
               "the prediction statistics are read from the prediction log, which this server does not keep "
               "(it needs a model and a workspace; prediction_log is on by default)");
  impl.recorder->flush();  // what was just answered is counted
  std::call_once(impl.accident_sequences_once,
                 [&impl] { impl.accident_sequences = std::make_shared<AccidentSequences>(); });
  AccidentSequences& cached = *impl.accident_sequences;
  std::lock_guard lock(cached.mutex);
  cached.index.refresh(impl.recorder->log());
  fn(cached.index.newest_first());
}

/// GET /prediction-stats: the seed's figures over every logged sequence.
void prediction_stats(Server::Impl& impl, const Req&, Res& res) {
  int64_t n = 0, positive = 0, frames = 0;
  double confidence = 0, prediction = 0;
  with_sequences(impl, [&](const Sequences& sequences) {
    for (const auto& [key, s] : sequences) {
      const double p = s->prediction();
      positive += p >= kDecision ? 1 : 0;
      confidence += p >= kDecision ? p : 1 - p;
      prediction += p;
      frames += static_cast<int64_t>(s->frames.size());
    }
    n = static_cast<int64_t>(sequences.size());
  });
  send_json(res, {{"total_predictions", n},
                  {"accident_predictions", positive},
                  {"no_accident_predictions", n - positive},
                  {"accident_rate", n > 0 ? round6(100.0 * static_cast<double>(positive) / n) : 0.0},
                  {"average_confidence", n > 0 ? round6(confidence / n) : 0.0},
                  {"average_prediction", n > 0 ? round6(prediction / n) : 0.0},
                  {"total_frames", frames},
                  {"source", "prediction_log"}});
}

/// GET /prediction-history?limit=50: the newest sequences, each as the seed's record plus its frames' ids.
void prediction_history(Server::Impl& impl, const Req& req, Res& res) {
  const auto limit = static_cast<size_t>(int_query(query_of(req), "limit", 50, 1, 10000));
  json records = json::array();
  size_t total = 0;
  with_sequences(impl, [&](const Sequences& sequences) {
    total = sequences.size();
    for (auto it = sequences.begin(); it != sequences.end() && records.size() < limit; ++it) {
      const LoggedSequence& s = *it->second;
      const double p = s.prediction();
      records.push_back({{"prediction_id", s.id},
                         {"prediction_result", round6(p)},
                         {"confidence", round6(p >= kDecision ? p : 1 - p)},
                         {"accident_detected", p >= kDecision},
                         {"timestamp", format_utc_ms(s.newest.time_ms)},
                         {"image_count", s.frames.size()},
                         {"images_stored", s.images_kept},
                         {"prediction_ids", s.frame_ids()},
                         {"model", {{"name", s.model}, {"version", s.version}}},
                         {"latency_ms", std::round(s.latency_ms * 1000) / 1000}});
    }
  });
  const size_t shown = records.size();
  send_json(
      res,
      {{"prediction_history", std::move(records)}, {"total_records", shown}, {"total_sequences", total}});
}

/// A run's per-epoch rows (RetrainJobs::get's "progress") as Keras' History: one list per column, and the
/// Keras names (loss, val_loss, accuracy, val_accuracy) beside vigil's where a column means the same.
json keras_history(const json& progress) {
  json history = json::object();
  if (!progress.is_array()) return history;
  for (const auto& row : progress)
    for (const auto& [key, value] : row.items()) history[key].push_back(value);
  static const std::vector<std::pair<const char*, std::vector<const char*>>> kAliases = {
      {"loss", {"train/loss"}},
      {"val_loss", {"val/loss", "val_loss"}},
      {"accuracy", {"train/accuracy"}},
      {"val_accuracy", {"val/accuracy", "val_accuracy", "metrics/accuracy", "metrics/accuracy_top1"}}};
  for (const auto& [keras, names] : kAliases) {
    if (history.contains(keras)) continue;
    for (const char* name : names)
      if (history.contains(name)) {
        history[keras] = history[name];
        break;
      }
  }
  return history;
}

/// The job without what only a poller needs (its log tail and the progress rows, answered as "history").
json job_summary(json job) {
  job.erase("log_tail");
  job.erase("progress");
  return job;
}

/// POST /retrain: a job of the retrain queue with the server's retrain_config -> 202; ?wait=true blocks until
/// it ends and answers the seed's {"status", "history"} with the champion/challenger decision.
void accident_retrain(Server::Impl& impl, const Req& req, Res& res) {
  if (!impl.retrain_jobs)
    throw_http(409, "conflict",
               "retraining is not configured: start the server with --set retrain_config=TRAIN.yaml (or "
               "VIGIL_RETRAIN_CONFIG) and serve a registered model NAME@alias (or set retrain_model)");
  const bool wait = bool_query(query_of(req), "wait", false);
  RetrainJobs& jobs = *impl.retrain_jobs;
  const std::string id = jobs.start(RetrainRequest{});  // a full queue is Unavailable: 503 + Retry-After
  res.set_header("Location", "/v1/jobs/" + id);
  if (!wait) {
    send_json(
        res,
        {{"status", "Retraining started"}, {"job", job_summary(jobs.get(id))}, {"url", "/v1/jobs/" + id}},
        202);
    return;
  }
  json job = jobs.get(id);
  while (job.value("state", "") == "queued" || job.value("state", "") == "running") {
    if (impl.stopping) throw Unavailable(fmt::format("the server is stopping; retrain job {} goes on", id));
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    job = jobs.get(id);
  }
  const std::string state = job.value("state", "failed");
  const char* status = state == "promoted" || state == "kept" ? "Retraining completed"
                       : state == "cancelled"                 ? "Retraining cancelled"
                                                              : "Retraining failed";
  json decision = {{"state", state}};
  for (const char* key : {"champion", "challenger", "metric", "reason", "error", "exit_code"})
    if (job.contains(key)) decision[key] = job[key];
  send_json(res, {{"status", status},
                  {"history", keras_history(job["progress"])},
                  {"decision", decision},
                  {"job", job_summary(job)},
                  {"url", "/v1/jobs/" + id}});
}

/// The served model's training dataset version, by its lineage; nullopt when it has none in this store.
std::optional<data::DatasetVersion> served_dataset(const Server::Impl& impl,
                                                   const data::DatasetStore& store) {
  const auto model = impl.current_model();
  if (!model || model->info.dataset_id.size() < 6) return std::nullopt;
  try {
    return store.resolve(model->info.dataset_id);
  } catch (const NotFound&) {
    return std::nullopt;  // trained in another workspace
  }
}

/// Images per split and per class of a version: the split folders the files came from, else its stored split
/// ("default" first), else all of them as "unsplit". Versions never change, so each is counted once.
json split_counts(const data::DatasetStore& store, const data::DatasetVersion& v) {
  static std::mutex mutex;
  static std::map<std::string, json> cache;
  std::lock_guard lock(mutex);
  if (auto it = cache.find(v.id); it != cache.end()) return it->second;
  const data::Dataset ds = store.load(v);
  std::unordered_map<std::string, std::string> split_of;
  std::string source = "none";
  if (std::any_of(ds.samples.begin(), ds.samples.end(), [](const auto& s) { return !s.split.empty(); })) {
    source = "folders";
    for (const auto& s : ds.samples) split_of[s.file] = s.split.empty() ? "unsplit" : s.split;
  } else if (auto names = store.split_names(v); !names.empty()) {
    const std::string name =
        std::find(names.begin(), names.end(), "default") != names.end() ? "default" : names.front();
    source = "split:" + name;
    const data::SplitFiles f = store.load_split(v, name);
    for (const auto& [split, files] : {std::pair{"train", &f.train}, {"val", &f.val}, {"test", &f.test}})
      for (const auto& file : *files) split_of[file] = split;
  }
  json counts = {{"train", 0}, {"test", 0}, {"val", 0}};
  json classes = json::object();
  for (const auto& s : ds.samples) {
    const auto it = split_of.find(s.file);
    const std::string split = it == split_of.end() ? "unsplit" : it->second;
    counts[split] = counts.value(split, 0) + 1;
    const std::string cls = s.label >= 0 && s.label < static_cast<int>(ds.classes.size())
                                ? ds.classes[static_cast<size_t>(s.label)]
                                : "(unlabelled)";
    json& per_class = classes[split];
    if (!per_class.is_object()) per_class = json::object();
    per_class[cls] = per_class.value(cls, 0) + 1;
  }
  json out = {{"counts", counts}, {"classes", classes}, {"split_source", source}};
  cache.emplace(v.id, out);
  return out;
}

json version_brief(const data::DatasetVersion& v) {
  return {{"name", v.name},           {"id", v.id},
          {"short_id", v.short_id()}, {"task", data::task_name(v.task)},
          {"images", v.images},       {"classes", v.classes},
          {"created", v.created}};
}

/// GET /training-data-sources: the seed's "file_based" split counts of the served model's training dataset,
/// its images per class and split, and every dataset version of the workspace.
void training_data_sources(Server::Impl& impl, const Req&, Res& res) {
  const data::DatasetStore store(workspace_of(impl));
  json body = {{"mongodb", {{"connected", false}, {"train", 0}, {"test", 0}, {"val", 0}}}};
  const auto served = served_dataset(impl, store);
  if (served) {
    const json counts = split_counts(store, *served);
    body["file_based"] = counts["counts"];
    body["classes"] = counts["classes"];
    body["split_source"] = counts["split_source"];
    body["dataset"] = version_brief(*served);
  } else {
    body["file_based"] = {{"train", 0}, {"test", 0}, {"val", 0}};
    body["classes"] = json::object();
    body["dataset"] = nullptr;  // no model, or one without a training dataset in this workspace
  }
  json versions = json::array();
  for (const auto& v : store.list()) versions.push_back(version_brief(v));
  body["datasets"] = std::move(versions);
  body["upload_dataset"] = impl.options.upload_dataset;
  send_json(res, body);
}

/// The form field 'label' as a class folder name; 400 naming the field when absent or unusable.
std::string upload_label(const Server::Impl& impl, const Req& req) {
  const std::string label = req.has_file("label") ? req.get_file_value("label").content : "";
  if (label.empty())
    throw_http(400, "bad_request",
               "label: expected the class of the files as form field 'label', e.g. -F label=Accident");
  const bool control =
      std::any_of(label.begin(), label.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
  if (label.size() > 128 || control || label == "." || label == ".." ||
      label.find_first_of("/\\") != std::string::npos || trim(label) != label)
    throw_http(400, "bad_request",
               fmt::format("label: expected a class name (at most 128 characters, no '/', '\\', control "
                           "characters or surrounding spaces), got '{}'",
                           label.substr(0, 200)));
  // A typo would otherwise become a new class of the training data.
  if (const auto model = impl.current_model(); model && !model->is_detector()) {
    const std::vector<std::string> names = model->classes();
    if (std::find(names.begin(), names.end(), label) == names.end())
      throw_http(400, "bad_request",
                 fmt::format("label: expected one of the served model's classes ({}), got '{}'",
                             join(names, ", "), label));
  }
  return label;
}

/// POST /upload: multipart 'files' + form field 'label' -> a new version of the upload dataset holding the
/// files under class folder `label` (the same version `vigil data ingest` makes of that folder). Each upload
/// is its own version, so the training dataset a retrain config names is never changed under it.
void accident_upload(Server::Impl& impl, const Req& req, Res& res) {
  if (!req.is_multipart_form_data())
    throw_http(400, "bad_request", "expected multipart/form-data with fields 'files' (images) and 'label'");
  const std::string label = upload_label(impl, req);
  const Workspace ws = workspace_of(impl);
  data::DatasetStore store(ws);
  data::IngestOptions o;
  o.name = impl.options.upload_dataset;
  const ScratchDir scratch(ws.root() / "tmp", "upload");
  const fs::path source = scratch.path() / "files";
  UploadPartsOptions parts;
  parts.field = "files";
  parts.plain_names_because = "the class folder comes from label";
  const size_t written = write_upload_parts(req, source / label, parts);
  std::lock_guard lock(dataset_ingest_mutex());          // the same lock as POST /v1/datasets/{name}/upload
  const data::IngestResult r = store.ingest(source, o);  // DataError (422) naming the file
  send_json(res,
            {{"status", "Files uploaded successfully"},
             {"saved_to_disk", true},
             {"saved_to_mongodb", false},
             {"files_count", written},
             {"label", label},
             {"dataset", r.version.name},
             {"version", r.version.id},
             {"short_id", r.version.short_id()},
             {"images", r.version.images},
             {"unchanged", r.unchanged},
             {"issues_total", r.issues.size()}},
            200);
}

}  // namespace

const std::vector<Route>& accident_routes() {
  // clang-format off
  static const std::vector<Route> kRoutes = {
      {"POST", kPredictRoute,           kPredictRoute,            accident_predict},
      {"GET",  "/prediction-stats",      "/prediction-stats",      prediction_stats},
      {"GET",  "/prediction-history",    "/prediction-history",    prediction_history},
      {"POST", "/retrain",               "/retrain",               accident_retrain},
      {"GET",  "/training-data-sources", "/training-data-sources", training_data_sources},
      {"POST", "/upload",                "/upload",                accident_upload},
  };
  // clang-format on
  return kRoutes;
}

}  // namespace vigil::serve
