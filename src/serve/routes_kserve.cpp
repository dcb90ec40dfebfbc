// The KServe v2 (Open Inference) protocol that Triton and OpenVINO Model Server speak: health, server and
// model metadata, inference with encoded images as a BYTES input (base64 in JSON, or Triton's binary data
// extension), and the repository load route that hot-reloads the model.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "server_impl.h"
#include "vigil/core/base64.h"
#include "vigil/core/error.h"
#include "vigil/core/strings.h"

namespace vigil::serve {

namespace {

constexpr const char* kModelPath = R"(/v2/models/([^/]+)(?:/versions/([^/]+))?)";
constexpr const char* kLoadPath = R"(/v2/repository/models/([^/]+)/load)";

/// The served model when `name` (and `version`, when given) name it; 404 otherwise.
std::shared_ptr<ServedModel> resolve(const Server::Impl& impl, const httplib::Request& req) {
  auto model = impl.model_or_503();
  const std::string name = req.matches[1];
  const std::string version = req.matches.size() > 2 ? std::string(req.matches[2]) : "";
  if (name != model->name)
    throw_http(404, "not_found",
               fmt::format("unknown model '{}'; this server serves '{}'", name, model->name));
  if (!version.empty() && version != model->version)
    throw_http(404, "not_found",
               fmt::format("model '{}' has no version '{}'; the loaded version is '{}'", name, version,
                           model->version));
  return model;
}

nlohmann::json parse_json(std::string_view text, const char* what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw_http(400, "bad_request", fmt::format("{} is not valid JSON: {}", what, e.what()));
  }
}

/// The number of images an input's shape declares; 400 for a shape that is not [N...] with N >= 1, 413
/// beyond `max_images`.
int64_t image_count(const nlohmann::json& in, const std::string& name, int max_images) {
  if (!in.contains("shape") || !in["shape"].is_array() || in["shape"].empty())
    throw_http(400, "bad_request", fmt::format("input '{}': expected a shape like [N]", name));
  int64_t n = 1;
  for (const auto& d : in["shape"]) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0)
      throw_http(400, "bad_request", fmt::format("input '{}': shape must hold non-negative integers", name));
    n *= d.get<int64_t>();
  }
  if (n < 1)
    throw_http(400, "bad_request", fmt::format("input '{}': no images (shape {})", name, in["shape"].dump()));
  if (n > max_images)
    throw_http(413, "too_large",
               fmt::format("input '{}': {} images; this server takes at most {}", name, n, max_images));
  return n;
}

/// The BYTES elements of Triton's binary extension: each a 4-byte little-endian length, then the bytes.
std::vector<std::string> binary_elements(const nlohmann::json& size, std::string_view binary,
                                         const std::string& name) {
  if (!size.is_number_integer() || size.get<int64_t>() < 0 ||
      static_cast<size_t>(size.get<int64_t>()) > binary.size())
    throw_http(400, "bad_request",
               fmt::format("input '{}': binary_data_size {} does not fit the {} bytes after the JSON header",
                           name, size.dump(), binary.size()));
  std::vector<std::string> images;
  std::string_view data = binary.substr(0, static_cast<size_t>(size.get<int64_t>()));
  while (!data.empty()) {
    if (data.size() < 4)
      throw_http(400, "bad_request", fmt::format("input '{}': truncated BYTES length", name));
    const uint32_t len = static_cast<uint8_t>(data[0]) | (static_cast<uint8_t>(data[1]) << 8) |
                         (static_cast<uint8_t>(data[2]) << 16) |
                         (static_cast<uint32_t>(static_cast<uint8_t>(data[3])) << 24);
    if (len > data.size() - 4)
      throw_http(400, "bad_request",
                 fmt::format("input '{}': element {} claims {} bytes, {} remain", name, images.size(), len,
                             data.size() - 4));
    images.emplace_back(data.substr(4, len));
    data.remove_prefix(4 + len);
  }
  return images;
}

/// The BYTES elements of a JSON input: base64 strings, or {"b64": ...} objects.
std::vector<std::string> base64_elements(const nlohmann::json& in, const std::string& name) {
  if (!in.contains("data") || !in["data"].is_array())
    throw_http(400, "bad_request",
               fmt::format("input '{}': needs 'data' (base64 strings) or binary data", name));
  std::vector<std::string> images;
  for (const auto& item : in["data"]) {
    std::string text;
    if (item.is_string()) {
      text = item.get<std::string>();
    } else if (item.is_object() && item.contains("b64") && item["b64"].is_string()) {
      text = item["b64"].get<std::string>();
    } else {
      throw_http(400, "bad_request",
                 fmt::format("input '{}': element {} must be a base64 string or {{\"b64\": ...}}", name,
                             images.size()));
    }
    auto bytes = base64_decode(text);
    if (!bytes)
      throw_http(400, "bad_request",
                 fmt::format("input '{}': element {} is not valid base64", name, images.size()));
    images.push_back(std::move(*bytes));
  }
  return images;
}

/// Extracts the encoded images of an infer request; `binary` is the part of the body after the JSON header
/// (Triton's binary data extension), empty otherwise.
std::vector<std::string> infer_images(const nlohmann::json& header, std::string_view binary, int max_images) {
  if (!header.is_object() || !header.contains("inputs") || !header["inputs"].is_array())
    throw_http(400, "bad_request", "the request needs an 'inputs' array");
  const auto& inputs = header["inputs"];
  if (inputs.size() != 1)
    throw_http(400, "bad_request",
               fmt::format("expected exactly one input (the encoded images, BYTES), got {}", inputs.size()));
  const auto& in = inputs[0];
  const std::string name = in.value("name", "");
  if (in.value("datatype", "") != "BYTES")
    throw_http(400, "bad_request",
               fmt::format("input '{}': expected datatype BYTES (encoded image bytes), got '{}'", name,
                           in.value("datatype", "")));
  const int64_t n = image_count(in, name, max_images);
  const auto params = in.value("parameters", nlohmann::json::object());
  const std::vector<std::string> images = params.contains("binary_data_size")
                                              ? binary_elements(params["binary_data_size"], binary, name)
                                              : base64_elements(in, name);
  if (static_cast<int64_t>(images.size()) != n)
    throw_http(400, "bad_request",
               fmt::format("input '{}': shape {} says {} images, the data holds {}", name, in["shape"].dump(),
                           n, images.size()));
  return images;
}

nlohmann::json tensor(const std::string& name, const char* datatype, std::vector<int64_t> shape,
                      nlohmann::json data) {
  return {{"name", name}, {"datatype", datatype}, {"shape", std::move(shape)}, {"data", std::move(data)}};
}

/// KServe outputs for a batch: TF object detection API layout for detectors, probabilities for classifiers.
nlohmann::json infer_outputs(const ServedModel& model, const std::vector<ImageOutcome>& outcomes) {
  const int64_t n = static_cast<int64_t>(outcomes.size());
  nlohmann::json outputs = nlohmann::json::array();
  if (model.is_detector()) {
    size_t k = 0;
    for (const auto& o : outcomes) k = std::max(k, o.result.prediction.boxes.size());
    nlohmann::json boxes = nlohmann::json::array(), scores = nlohmann::json::array(),
                   classes = nlohmann::json::array(), counts = nlohmann::json::array();
    for (const auto& o : outcomes) {
      const auto& b = o.result.prediction.boxes;
      for (size_t i = 0; i < k; ++i) {
        const bool real = i < b.size();
        for (float v :
             {real ? b[i].x1 : 0.f, real ? b[i].y1 : 0.f, real ? b[i].x2 : 0.f, real ? b[i].y2 : 0.f})
          boxes.push_back(v);
        scores.push_back(real ? b[i].score : 0.f);
        classes.push_back(real ? b[i].class_id : -1);
      }
      counts.push_back(b.size());
    }
    const auto kk = static_cast<int64_t>(k);
    outputs.push_back(tensor("detection_boxes", "FP32", {n, kk, 4}, std::move(boxes)));
    outputs.push_back(tensor("detection_scores", "FP32", {n, kk}, std::move(scores)));
    outputs.push_back(tensor("detection_classes", "INT64", {n, kk}, std::move(classes)));
    outputs.push_back(tensor("num_detections", "INT32", {n}, std::move(counts)));
    return outputs;
  }
  const int64_t c = static_cast<int64_t>(model.info.class_names.size());
  nlohmann::json probs = nlohmann::json::array(), ids = nlohmann::json::array(),
                 labels = nlohmann::json::array();
  for (const auto& o : outcomes) {
    const auto& p = o.result.prediction;
    for (int64_t i = 0; i < c; ++i)
      probs.push_back(i < static_cast<int64_t>(p.probs.size()) ? p.probs[i] : 0.f);
    ids.push_back(p.class_id);
    labels.push_back(p.label);
  }
  outputs.push_back(tensor("probabilities", "FP32", {n, c}, std::move(probs)));
  outputs.push_back(tensor("class_id", "INT64", {n}, std::move(ids)));
  outputs.push_back(tensor("label", "BYTES", {n}, std::move(labels)));
  return outputs;
}

nlohmann::json kserve_metadata(const ServedModel& model) {
  nlohmann::json outputs;
  if (model.is_detector()) {
    outputs = {{{"name", "detection_boxes"}, {"datatype", "FP32"}, {"shape", {-1, -1, 4}}},
               {{"name", "detection_scores"}, {"datatype", "FP32"}, {"shape", {-1, -1}}},
               {{"name", "detection_classes"}, {"datatype", "INT64"}, {"shape", {-1, -1}}},
               {{"name", "num_detections"}, {"datatype", "INT32"}, {"shape", {-1}}}};
  } else {
    const auto c = static_cast<int64_t>(model.info.class_names.size());
    outputs = {{{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {-1, c}}},
               {{"name", "class_id"}, {"datatype", "INT64"}, {"shape", {-1}}},
               {{"name", "label"}, {"datatype", "BYTES"}, {"shape", {-1}}}};
  }
  return {{"name", model.name},
          {"versions", {model.version}},
          {"platform", "vigil_libtorch"},
          {"inputs", {{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {-1}}}}},
          {"outputs", outputs},
          {"parameters",
           {{"arch", model.info.arch},
            {"task", data::task_name(model.info.task)},
            {"classes", model.classes()}}}};
}

using Req = httplib::Request;
using Res = httplib::Response;

// ---- handlers (the route table, kserve_routes(), is at the end) -------------------------------------------

/// GET /health, /v2/health/live: the process answers.
void live(Server::Impl&, const Req&, Res& res) {
  // "status" is the accident seed's answer, which its clients and load tests read.
  send_json(res, {{"live", true}, {"status", "Model is up and running"}});
}

/// GET /ready, /v2/health/ready: a model is loaded and the server is not stopping.
void ready(Server::Impl& impl, const Req&, Res& res) {
  if (!impl.host) {
    // `vigil ui`: alive and answering, but not ready to predict.
    send_json(res, {{"ready", false}, {"reason", "no model is served (vigil ui)"}}, 503);
    return;
  }
  const bool ok = impl.host->current() != nullptr && !impl.stopping;
  send_json(res, {{"ready", ok}}, ok ? 200 : 503);
}

/// GET /v2: server metadata.
void server_metadata(Server::Impl&, const Req&, Res& res) {
  send_json(res, {{"name", "vigil"},
                  {"version", VIGIL_VERSION},
                  {"extensions", {"binary_tensor_data", "model_repository"}}});
}

/// GET /v2/models/{name}[/versions/{v}]: model metadata.
void model_metadata(Server::Impl& impl, const Req& req, Res& res) {
  send_json(res, kserve_metadata(*resolve(impl, req)));
}

/// GET /v2/models/{name}[/versions/{v}]/ready
void model_ready(Server::Impl& impl, const Req& req, Res& res) {
  auto model = resolve(impl, req);
  const bool stopping = impl.stopping;
  send_json(res, {{"name", model->name}, {"version", model->version}, {"ready", !stopping}},
            stopping ? 503 : 200);
}

/// The JSON header of an infer body and the binary data after it: Triton's binary extension says where the
/// header ends in Inference-Header-Content-Length; without it the whole body is JSON.
std::pair<std::string_view, std::string_view> split_infer_body(const Req& req) {
  const std::string_view body = req.body;
  if (!req.has_header("Inference-Header-Content-Length")) return {body, {}};
  const std::string given = req.get_header_value("Inference-Header-Content-Length");
  const auto len = parse_int(given);
  if (!len || *len < 0 || static_cast<size_t>(*len) > body.size())
    throw_http(400, "bad_request",
               fmt::format("Inference-Header-Content-Length '{}' does not fit the {}-byte body", given,
                           body.size()));
  const auto header_size = static_cast<size_t>(*len);
  return {body.substr(0, header_size), body.substr(header_size)};
}

/// POST /v2/models/{name}[/versions/{v}]/infer: KServe v2 inference on encoded images.
void infer(Server::Impl& impl, const Req& req, Res& res) {
  const auto start = std::chrono::steady_clock::now();
  impl.check_rate_limit(req);
  auto model = resolve(impl, req);
  const auto body = split_infer_body(req);
  const nlohmann::json header = parse_json(body.first, "the inference request");
  const auto images = infer_images(header, body.second, impl.options.max_batch_images);
  const nlohmann::json params = header.value("parameters", nlohmann::json::object());
  const auto predict_params = impl.params_from(*model, [&](const char* n) -> std::optional<std::string> {
    if (!params.is_object() || !params.contains(n)) return std::nullopt;
    const auto& v = params[n];
    return v.is_string() ? v.get<std::string>() : v.dump();
  });
  std::vector<ImagePart> parts;
  for (size_t i = 0; i < images.size(); ++i) parts.push_back({fmt::format("image[{}]", i), images[i]});
  auto outcomes = impl.predict_images(model, parts, predict_params, false);
  const double total =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  for (const auto& o : outcomes) {
    if (o.error) {
      impl.stats.record_error();
      throw *o.error;  // KServe has no per-element errors: the request fails as a whole
    }
  }
  for (const auto& o : outcomes) impl.stats.record(answer_labels(o.result.prediction), total);
  nlohmann::json out = {{"model_name", model->name},
                        {"model_version", model->version},
                        {"outputs", infer_outputs(*model, outcomes)}};
  if (header.contains("id")) out["id"] = header["id"];
  send_json(res, out);
}

/// POST /v2/repository/index: the served model, when one is loaded.
void repository_index(Server::Impl& impl, const Req&, Res& res) {
  auto model = impl.current_model();
  nlohmann::json list = nlohmann::json::array();
  if (model) list.push_back({{"name", model->name}, {"version", model->version}, {"state", "READY"}});
  send_json(res, list);
}

/// The model file a load body names in {"parameters": {"path": ...}}; empty (reload from the source) when
/// there is no body (Triton's documented call sends none) or no path.
std::string load_path(const std::string& body) {
  if (body.empty()) return "";
  const auto j = parse_json(body, "the load request");
  const auto params =
      j.is_object() ? j.value("parameters", nlohmann::json::object()) : nlohmann::json::object();
  if (!params.contains("path")) return "";
  if (!params["path"].is_string())
    throw_http(400, "bad_request", "parameters.path must be a string (a model file)");
  return params["path"].get<std::string>();
}

/// POST /v2/repository/models/{name}/load: loads the model again (from its source, or parameters.path)
/// beside the old one, which keeps serving until the new one is ready, and for good when the load fails.
void load_repository_model(Server::Impl& impl, const Req& req, Res& res) {
  auto model = impl.model_or_503();
  const std::string name = req.matches[1];
  if (name != model->name)
    throw_http(404, "not_found",
               fmt::format("unknown model '{}'; this server serves '{}'", name, model->name));
  const std::string path = load_path(req.body);
  try {
    impl.reload(path);
  } catch (const Error& e) {
    // The same code, so guarded() answers the same status; the message adds that clients see no change.
    throw Error(e.code(), fmt::format("load failed, the previous version keeps serving: {}", e.what()));
  }
  auto now = impl.current_model();
  send_json(
      res,
      {{"name", now->name}, {"version", now->version}, {"state", "READY"}, {"load_time_ms", now->load_ms}});
}

}  // namespace

const std::vector<Route>& kserve_routes() {
  static const std::string model = kModelPath;
  // clang-format off
  static const std::vector<Route> kRoutes = {
      {"GET",  "/health",                         "/health",                           live},
      {"GET",  "/v2/health/live",                 "/v2/health/live",                   live},
      {"GET",  "/ready",                          "/ready",                            ready},
      {"GET",  "/v2/health/ready",                "/v2/health/ready",                  ready},
      {"GET",  "/v2",                             "/v2",                               server_metadata},
      {"GET",  model,                             "/v2/models/{name}",                 model_metadata},
      {"GET",  model + "/ready",                  "/v2/models/{name}/ready",           model_ready},
      {"POST", model + "/infer",                  "/v2/models/{name}/infer",           infer},
      {"POST", "/v2/repository/index",            "/v2/repository/index",              repository_index},
      {"POST", kLoadPath,                         "/v2/repository/models/{name}/load", load_repository_model},
  };
  // clang-format on
  return kRoutes;
}

}  // namespace vigil::serve
