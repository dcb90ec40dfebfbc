// The guns seed's routes (GET /, POST /predict/), the JSON API under /v1 and /metrics, and the shared
// decode -> queue -> answer path every predict route (KServe's included) goes through.

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "server_impl.h"
#include "vigil/core/error.h"
#include "vigil/core/strings.h"
#include "vigil/image/decode.h"
#include "vigil/model/embedding.h"
#include "vigil/monitor/image_stats.h"

namespace vigil::serve {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

double round3(double v) {
  return std::round(v * 1000) / 1000;
}

/// A decode failure as the HTTP answer it deserves.
HttpError decode_error(const std::string& filename, const image::DecodeError& e) {
  const std::string what = fmt::format("{}: {}: {}", filename, e.kind_name(), e.detail);
  if (e.kind == image::DecodeErrorKind::kNotAnImage)
    return {415, "unsupported_media_type",
            what + " (JPEG, PNG, BMP, WebP or TIFF, recognised by their first bytes, not the file name)"};
  if (e.kind == image::DecodeErrorKind::kTooLarge) return {413, "too_large", what};
  return {400, "bad_request", what};
}

std::optional<std::string> query(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) return std::nullopt;
  return req.get_param_value(name);
}

std::string server_timing(const ImageOutcome& o, double encode_ms, double total_ms) {
  return fmt::format(
      "decode;dur={:.2f}, queue;dur={:.2f}, inference;dur={:.2f}, encode;dur={:.2f}, total;dur={:.2f}",
      o.decode_ms, o.result.queue_ms, o.result.inference_ms, encode_ms, total_ms);
}

}  // namespace

std::vector<std::pair<std::string, float>> answer_labels(const model::Prediction& p) {
  std::vector<std::pair<std::string, float>> labels;
  if (p.class_id >= 0) labels.emplace_back(p.label, p.score);
  for (const auto& b : p.boxes) labels.emplace_back(b.label, b.score);
  return labels;
}

std::vector<ImagePart> image_parts(const httplib::Request& req, const std::string& field) {
  std::vector<ImagePart> parts;
  if (req.is_multipart_form_data()) {
    for (const auto& [name, file] : req.files) {
      if (!field.empty() && name != field) continue;
      // Plain form fields (no file name, a text type) are parameters, not images.
      const bool is_file = !file.filename.empty() || starts_with(file.content_type, "image/") ||
                           file.content_type == "application/octet-stream";
      if (!field.empty() || is_file)
        parts.push_back({file.filename.empty() ? name : file.filename, file.content});
    }
    if (parts.empty()) {
      throw_http(400, "bad_request",
                 field.empty()
                     ? "the multipart body has no file part"
                     : fmt::format("the multipart body has no field '{}' (send the image as {}=@FILE)", field,
                                   field));
    }
    return parts;
  }
  if (req.body.empty())
    throw_http(
        400, "bad_request",
        "no image: send it as multipart field 'file' or as the raw request body with an image content type");
  parts.push_back({"body", req.body});
  return parts;
}

PredictParams Server::Impl::params_from(
    const ServedModel& model, const std::function<std::optional<std::string>(const char*)>& get) const {
  PredictParams p;
  p.post = model.defaults;
  auto number = [&](const char* name, double lo, double hi) -> std::optional<double> {
    const auto text = get(name);
    if (!text) return std::nullopt;
    const auto v = parse_double(*text);
    if (!v || !(*v >= lo && *v <= hi))
      throw_http(400, "bad_request",
                 fmt::format("{} must be a number in {}..{}, got '{}'", name, lo, hi, *text));
    return v;
  };
  if (auto v = number("score_threshold", 0, 1)) p.post.score_threshold = *v;
  if (auto v = number("nms_iou", 0, 1)) p.post.nms_iou = *v;
  if (auto text = get("max_detections")) {
    const auto v = parse_int(*text);
    if (!v || *v < 1 || *v > options.max_detections_limit)
      throw_http(400, "bad_request",
                 fmt::format("max_detections must be an integer in 1..{}, got '{}'",
                             options.max_detections_limit, *text));
    p.post.max_detections = *v;
  }
  return p;
}

std::vector<ImageOutcome> Server::Impl::predict_images(const std::shared_ptr<ServedModel>& model,
                                                       const std::vector<ImagePart>& parts,
                                                       const PredictParams& params, bool keep_images) {
  std::vector<ImageOutcome> outcomes(parts.size());
  // The batcher waits for images being decoded; whatever is not submitted is withdrawn, even on a throw.
  batcher->announce(parts.size());
  struct Withdraw {
    Batcher& b;
    size_t pending;
    ~Withdraw() {
      if (pending) b.withdraw(pending);
    }
  } announced{*batcher, parts.size()};
  std::vector<InferenceRequest> requests;
  std::vector<size_t> queued;
  image::DecodeOptions decode_options;
  decode_options.max_pixels = options.max_pixels;
  for (size_t i = 0; i < parts.size(); ++i) {
    ImageOutcome& o = outcomes[i];
    o.filename = parts[i].filename;
    const auto t0 = Clock::now();
    image::Decoded decoded = image::decode(parts[i].bytes, decode_options);
    if (!decoded.ok()) {
      o.error = decode_error(o.filename, decoded.error);
      metrics.rejected.inc({decoded.error.kind_name()});
      batcher->withdraw(1);
      --announced.pending;
      continue;
    }
    o.type = decoded.type;
    if (recorder) {
      o.id = new_request_id();  // the client may reuse its X-Request-Id; the log's key must be unique
      o.input_json = monitor::to_json(monitor::image_stats(decoded.bgr)).dump();
      if (recorder->keeps_image(o.id)) o.sample = decoded.bgr;  // shares the pixels
    }
    InferenceRequest r;
    r.model = model;
    r.width = decoded.bgr.cols;
    r.height = decoded.bgr.rows;
    r.post = params.post;
    r.input = model->predictor->preprocess(decoded.bgr);
    if (keep_images) o.bgr = std::move(decoded.bgr);
    o.decode_ms = ms_since(t0);
    metrics.stage_seconds.observe(o.decode_ms / 1000, {"decode"});
    requests.push_back(std::move(r));
    queued.push_back(i);
  }
  if (requests.empty()) return outcomes;
  announced.pending = 0;  // submit() withdraws them, accepted or not
  auto futures = batcher->submit(std::move(requests));
  if (!futures) {
    metrics.rejected.inc({"queue_full"});
    throw_http(
        503, "overloaded",
        fmt::format("the inference queue is full ({} images waiting); retry shortly", batcher->depth()), 1);
  }
  for (size_t k = 0; k < queued.size(); ++k) {
    ImageOutcome& o = outcomes[queued[k]];
    o.result = (*futures)[k].get();
    if (!o.result.error.empty()) {
      o.error = HttpError{500, "internal", "inference failed: " + o.result.error};
      continue;
    }
    for (const auto& [label, score] : answer_labels(o.result.prediction)) metrics.predictions.inc({label});
    if (recorder) log_prediction(*model, o, params, queued[k]);
  }
  return outcomes;
}

void Server::Impl::log_prediction(const ServedModel& model, ImageOutcome& o, const PredictParams& params,
                                  size_t index) {
  const RequestContext& ctx = request_context();
  store::PredictionRow row;
  row.id = o.id;
  row.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  row.model = model.name;
  row.version = model.version;
  row.request_id = ctx.id;
  row.route = ctx.route;
  row.client = ctx.client;
  row.latency_ms = ms_since(ctx.start);
  row.input_json = std::move(o.input_json);
  const model::Prediction& p = o.result.prediction;
  nlohmann::json out;
  if (model.is_detector()) {
    nlohmann::json boxes = nlohmann::json::array();
    for (const auto& b : p.boxes)
      boxes.push_back({{"label", b.label},
                       {"score", std::round(b.score * 1e4) / 1e4},
                       {"box", {round3(b.x1), round3(b.y1), round3(b.x2), round3(b.y2)}}});
    out["boxes"] = std::move(boxes);
  } else {
    out["label"] = p.label;
    out["score"] = std::round(p.score * 1e4) / 1e4;
    if (!params.sequence.empty() && params.positive_class >= 0 &&
        static_cast<size_t>(params.positive_class) < p.probs.size())
      out["sequence"] = {
          {"id", params.sequence},
          {"frame", index},
          {"positive", std::round(p.probs[static_cast<size_t>(params.positive_class)] * 1e6) / 1e6}};
  }
  if (!p.embedding.empty()) out["embedding"] = model::stored_embedding(p.embedding);
  row.output_json = out.dump();
  recorder->record(std::move(row), o.sample);  // a full queue drops the row (counted), never the request
  o.sample.release();
}

ImageOutcome Server::Impl::predict_one(const std::shared_ptr<ServedModel>& model, const ImagePart& part,
                                       const PredictParams& params, bool keep_image) {
  auto outcomes = predict_images(model, {part}, params, keep_image);
  if (outcomes[0].error) {
    stats.record_error();
    throw *outcomes[0].error;
  }
  return std::move(outcomes[0]);
}

std::pair<double, double> Server::Impl::finish_one(httplib::Response& res, const ImageOutcome& outcome,
                                                   const model::Prediction& shown, Clock::time_point start,
                                                   Clock::time_point encode_start) {
  const double encode_ms = ms_since(encode_start);
  metrics.stage_seconds.observe(encode_ms / 1000, {"encode"});
  const double total = ms_since(start);
  stats.record(answer_labels(shown), total);
  res.set_header("Server-Timing", server_timing(outcome, encode_ms, total));
  return {encode_ms, total};
}

nlohmann::json Server::Impl::outcome_json(const ServedModel& model, const ImageOutcome& o) const {
  nlohmann::json j;
  j["request_id"] = request_context().id;
  if (!o.id.empty()) j["prediction_id"] = o.id;  // for POST /v1/predictions/{id}/feedback
  j["model"] = {{"name", model.name},
                {"version", model.version},
                {"arch", model.info.arch},
                {"task", data::task_name(model.info.task)}};
  const model::Prediction& p = o.result.prediction;
  j["image"] = {{"width", p.width}, {"height", p.height}, {"type", image::type_name(o.type)}};
  if (model.is_detector()) {
    nlohmann::json dets = nlohmann::json::array();
    for (const auto& b : p.boxes) {
      dets.push_back({{"box", {round3(b.x1), round3(b.y1), round3(b.x2), round3(b.y2)}},
                      {"class_id", b.class_id},
                      {"label", b.label},
                      {"score", std::round(b.score * 1e6) / 1e6}});
    }
    j["detections"] = std::move(dets);
  } else {
    nlohmann::json probs = nlohmann::json::object();
    const auto& names = model.info.class_names;
    for (size_t c = 0; c < p.probs.size(); ++c)
      probs[c < names.size() ? names[c] : fmt::format("class_{}", c)] = std::round(p.probs[c] * 1e6) / 1e6;
    j["classification"] = {{"class_id", p.class_id},
                           {"label", p.label},
                           {"score", std::round(p.score * 1e6) / 1e6},
                           {"probs", std::move(probs)}};
  }
  j["timings_ms"] = {{"decode", round3(o.decode_ms)},
                     {"queue", round3(o.result.queue_ms)},
                     {"inference", round3(o.result.inference_ms)}};
  j["batch_size"] = o.result.batch_size;
  return j;
}

nlohmann::json Server::Impl::model_json(const ServedModel& m) const {
  const auto& info = m.info;
  // Detectors resize inside (torchvision's min_size / max_size); classifiers take a fixed size.
  nlohmann::json input = nlohmann::json::object();
  if (m.is_detector()) {
    input["min_size"] = info.preprocess.min_size;
    input["max_size"] = info.preprocess.max_size;
  } else {
    input["width"] = info.preprocess.width;
    input["height"] = info.preprocess.height;
  }
  nlohmann::json j = {{"name", m.name},
                      {"version", m.version},
                      {"arch", info.arch},
                      {"task", data::task_name(info.task)},
                      {"classes", m.classes()},
                      {"input", input},
                      {"normalization", {{"mean", info.preprocess.mean}, {"std", info.preprocess.std}}},
                      {"source", m.source},
                      {"loaded_at", m.loaded_at},
                      {"load_time_ms", round3(m.load_ms)},
                      {"parameters", m.parameters},
                      {"precision", m.predictor->options().precision},
                      {"blas",
                       {{"threads", m.blas.threads},
                        {"timed", m.blas.timed},
                        {"ms_one_thread", round3(m.blas.ms_one)},
                        {"ms_start_threads", round3(m.blas.ms_many)}}},
                      {"lineage",
                       {{"run_id", info.run_id},
                        {"dataset_id", info.dataset_id},
                        {"code_version", info.code_version},
                        {"created_at", info.created_at},
                        {"weights_source", info.source}}},
                      {"limits",
                       {{"max_batch", options.max_batch},
                        {"max_queue_delay_ms", options.max_queue_delay_ms},
                        {"queue_capacity", options.queue_capacity},
                        {"max_body_bytes", static_cast<int64_t>(options.max_body_mb * 1024 * 1024)},
                        {"max_pixels", options.max_pixels},
                        {"max_batch_images", options.max_batch_images},
                        {"max_detections_limit", options.max_detections_limit}}}};
  nlohmann::json thresholds = {{"seed_route_score", options.score_threshold}};
  if (m.is_detector()) {
    thresholds["score"] = m.defaults.score_threshold;
    thresholds["nms_iou"] = m.defaults.nms_iou;
    thresholds["max_detections"] = m.defaults.max_detections;
  }
  j["thresholds"] = thresholds;
  return j;
}

namespace {

using Req = httplib::Request;
using Res = httplib::Response;

// ---- handlers (the route table, predict_routes(), is at the end) ------------------------------------------

/// GET /: the guns seed's greeting; a browser asking for the root gets the UI instead.
void seed_root(Server::Impl&, const Req& req, Res& res) {
  if (req.get_header_value("Accept").find("text/html") != std::string::npos) {
    res.set_redirect("/ui/");
    return;
  }
  send_json(res, {{"message", "Welcome to the Guns Object Detection API!"}});
}

/// POST /predict/: the guns seed's route, answering the image as PNG with what scores above
/// --score-threshold drawn on it.
void seed_predict(Server::Impl& impl, const Req& req, Res& res) {
  const auto start = Clock::now();
  impl.check_rate_limit(req);
  auto model = impl.model_or_503();
  const auto parts = image_parts(req, "file");
  if (parts.size() != 1)
    throw_http(400, "bad_request", fmt::format("expected one field 'file', got {}", parts.size()));
  const auto no_params = [](const char*) { return std::optional<std::string>(); };
  ImageOutcome o = impl.predict_one(model, parts[0], impl.params_from(*model, no_params), true);
  const auto t_encode = Clock::now();
  model::Prediction shown = o.result.prediction;
  std::erase_if(shown.boxes, [&](const auto& b) { return b.score <= impl.options.score_threshold; });
  model::draw_prediction(o.bgr, shown);
  std::string png = image::encode(o.bgr, "png");
  impl.finish_one(res, o, shown, start, t_encode);
  res.set_content(std::move(png), "image/png");
}

/// POST /v1/predict: one image, answered as JSON, or as the drawn image with ?annotate=png|jpeg.
void predict(Server::Impl& impl, const Req& req, Res& res) {
  const auto start = Clock::now();
  impl.check_rate_limit(req);
  auto model = impl.model_or_503();
  const std::string annotate = req.has_param("annotate") ? req.get_param_value("annotate") : "";
  if (!annotate.empty() && annotate != "png" && annotate != "jpeg" && annotate != "jpg")
    throw_http(400, "bad_request", fmt::format("annotate must be png or jpeg, got '{}'", annotate));
  const auto params = impl.params_from(*model, [&](const char* n) { return query(req, n); });
  auto parts = image_parts(req, req.has_file("file") ? "file" : "");
  if (parts.size() != 1)
    throw_http(400, "bad_request",
               fmt::format("expected one image, got {}; send several to /v1/predict/batch", parts.size()));
  ImageOutcome o = impl.predict_one(model, parts[0], params, !annotate.empty());
  const auto t_encode = Clock::now();
  if (!annotate.empty()) {
    model::draw_prediction(o.bgr, o.result.prediction);
    std::string bytes = image::encode(o.bgr, annotate == "png" ? "png" : "jpg", 90);
    impl.finish_one(res, o, o.result.prediction, start, t_encode);
    res.set_content(std::move(bytes), annotate == "png" ? "image/png" : "image/jpeg");
    return;
  }
  nlohmann::json body = impl.outcome_json(*model, o);
  const auto [encode_ms, total] = impl.finish_one(res, o, o.result.prediction, start, t_encode);
  body["timings_ms"]["encode"] = round3(encode_ms);
  body["timings_ms"]["total"] = round3(total);
  send_json(res, body);
}

/// The "results" of a batch answer, one per image in order (a failed image carries its error), and the
/// summed decode time and the longest queue + inference time of the answered ones.
nlohmann::json batch_results(Server::Impl& impl, const ServedModel& model,
                             const std::vector<ImageOutcome>& outcomes, double& decode, double& inference) {
  nlohmann::json results = nlohmann::json::array();
  for (const auto& o : outcomes) {
    if (o.error) {
      impl.stats.record_error();
      results.push_back({{"filename", o.filename},
                         {"error", o.error->message},
                         {"code", o.error->code},
                         {"status", o.error->status}});
      continue;
    }
    nlohmann::json item = impl.outcome_json(model, o);
    item["filename"] = o.filename;
    item.erase("request_id");
    results.push_back(std::move(item));
    decode += o.decode_ms;
    inference = std::max(inference, o.result.queue_ms + o.result.inference_ms);
  }
  return results;
}

/// POST /v1/predict/batch: several images as multipart file parts, one result each.
void predict_batch(Server::Impl& impl, const Req& req, Res& res) {
  const auto start = Clock::now();
  impl.check_rate_limit(req);
  auto model = impl.model_or_503();
  const auto params = impl.params_from(*model, [&](const char* n) { return query(req, n); });
  if (!req.is_multipart_form_data())
    throw_http(400, "bad_request", "send the images as multipart file parts (e.g. -F files=@a.jpg)");
  const auto parts = image_parts(req);
  if (static_cast<int>(parts.size()) > impl.options.max_batch_images)
    throw_http(413, "too_large",
               fmt::format("{} images in one request; this server takes at most {}", parts.size(),
                           impl.options.max_batch_images));
  const auto outcomes = impl.predict_images(model, parts, params, false);
  const auto t_encode = Clock::now();
  double decode = 0, inference = 0;
  nlohmann::json results = batch_results(impl, *model, outcomes, decode, inference);
  const double total = ms_since(start);
  for (const auto& o : outcomes)
    if (!o.error) impl.stats.record(answer_labels(o.result.prediction), total);
  send_json(res, {{"request_id", request_context().id},
                  {"model", {{"name", model->name}, {"version", model->version}}},
                  {"results", std::move(results)},
                  {"timings_ms",
                   {{"decode", round3(decode)},
                    {"queue_and_inference", round3(inference)},
                    {"encode", round3(ms_since(t_encode))},
                    {"total", round3(total)}}}});
}

/// GET /v1/models: the served model; none for `vigil ui`.
void list_models(Server::Impl& impl, const Req&, Res& res) {
  if (!impl.host) {
    send_json(res, {{"models", nlohmann::json::array()}});
    return;
  }
  auto model = impl.model_or_503();
  send_json(res, {{"models", {impl.model_json(*model)}}});
}

/// GET /v1/stats: prediction statistics, the queue and the batches. ?scope=all: the statistics of every
/// replica that shares this server's store, from the prediction log (the queue and batches stay this
/// replica's).
void get_stats(Server::Impl& impl, const Req& req, Res& res) {
  const std::string scope = req.has_param("scope") ? req.get_param_value("scope") : "replica";
  if (scope != "replica" && scope != "all")
    throw_http(400, "bad_request", fmt::format("expected scope 'replica' or 'all', got '{}'", scope));
  nlohmann::json j;
  if (scope == "all") {
    if (!impl.recorder)
      throw_http(400, "bad_request",
                 "scope=all reads the prediction log, which this server does not keep (no workspace or "
                 "prediction_log off)");
    impl.recorder->flush();  // this replica's own answers are in the log before it is read
    PredictionStats all;
    impl.replay_log(all);
    j = all.to_json();
    j.erase("started_at");
    j.erase("uptime_s");
  } else {
    j = impl.stats.to_json();
  }
  j["scope"] = scope;
  j["queue"] = {{"depth", impl.batcher->depth()}, {"capacity", impl.options.queue_capacity}};
  j["batches"] = {{"executions", static_cast<int64_t>(impl.metrics.executions.value())},
                  {"inferences", static_cast<int64_t>(impl.metrics.inferences.value())}};
  send_json(res, j);
}

/// GET /metrics: Prometheus text format.
void get_metrics(Server::Impl& impl, const Req&, Res& res) {
  res.set_content(impl.render_metrics(), "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace

const std::vector<Route>& predict_routes() {
  // clang-format off
  static const std::vector<Route> kRoutes = {
      {"GET",  "/",                 "/",                 seed_root},
      {"POST", "/predict/",         "/predict/",         seed_predict},
      {"POST", "/v1/predict",       "/v1/predict",       predict},
      {"POST", "/v1/predict/batch", "/v1/predict/batch", predict_batch},
      {"GET",  "/v1/models",        "/v1/models",        list_models},
      {"GET",  "/v1/stats",         "/v1/stats",         get_stats},
      {"GET",  "/metrics",          "/metrics",          get_metrics},
  };
  // clang-format on
  return kRoutes;
}

}  // namespace vigil::serve
