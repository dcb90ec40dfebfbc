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
  std::vector<std::string> images;
  const auto params = in.value("parameters", nlohmann::json::object());
  if (params.contains("binary_data_size")) {
    // Triton's binary extension: BYTES elements are each a 4-byte little-endian length, then the bytes.
    const auto size = params["binary_data_size"];
    if (!size.is_number_integer() || size.get<int64_t>() < 0 ||
        static_cast<size_t>(size.get<int64_t>()) > binary.size())
      throw_http(
          400, "bad_request",
          fmt::format("input '{}': binary_data_size {} does not fit the {} bytes after the JSON header", name,
                      size.dump(), binary.size()));
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
  } else {
    if (!in.contains("data") || !in["data"].is_array())
      throw_http(400, "bad_request",
                 fmt::format("input '{}': needs 'data' (base64 strings) or binary data", name));
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
  }
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
  return {
      {"name", model.name},
      {"versions", {model.version}},
      {"platform", "vigil_libtorch"},
      {"inputs", {{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {-1}}}}},
      {"outputs", outputs},
      {"parameters", {{"arch", model.info.arch}, {"task", model.info.task}, {"classes", model.classes()}}}};
}

}  // namespace

void Server::Impl::add_kserve_routes() {
  auto live = [](const httplib::Request&, httplib::Response& res) { send_json(res, {{"live", true}}); };
  auto ready = [this](const httplib::Request&, httplib::Response& res) {
    if (!host) {
      // `vigil ui`: alive and answering, but not ready to predict.
      send_json(res, {{"ready", false}, {"reason", "no model is served (vigil ui)"}}, 503);
      return;
    }
    const bool ok = host->current() != nullptr && !stopping;
    send_json(res, {{"ready", ok}}, ok ? 200 : 503);
  };
  http.Get("/health", guarded(*this, "/health", live));
  http.Get("/v2/health/live", guarded(*this, "/v2/health/live", live));
  http.Get("/ready", guarded(*this, "/ready", ready));
  http.Get("/v2/health/ready", guarded(*this, "/v2/health/ready", ready));

  http.Get("/v2", guarded(*this, "/v2", [](const httplib::Request&, httplib::Response& res) {
             send_json(res, {{"name", "vigil"},
                             {"version", VIGIL_VERSION},
                             {"extensions", {"binary_tensor_data", "model_repository"}}});
           }));

  http.Get(kModelPath,
           guarded(*this, "/v2/models/{name}", [this](const httplib::Request& req, httplib::Response& res) {
             send_json(res, kserve_metadata(*resolve(*this, req)));
           }));

  http.Get(
      std::string(kModelPath) + "/ready",
      guarded(*this, "/v2/models/{name}/ready", [this](const httplib::Request& req, httplib::Response& res) {
        auto model = resolve(*this, req);
        send_json(res, {{"name", model->name}, {"version", model->version}, {"ready", !stopping.load()}},
                  stopping ? 503 : 200);
      }));

  http.Post(
      std::string(kModelPath) + "/infer",
      guarded(*this, "/v2/models/{name}/infer", [this](const httplib::Request& req, httplib::Response& res) {
        const auto start = std::chrono::steady_clock::now();
        check_rate_limit(req);
        auto model = resolve(*this, req);
        std::string_view body = req.body;
        std::string_view binary;
        if (req.has_header("Inference-Header-Content-Length")) {
          const auto len = parse_int(req.get_header_value("Inference-Header-Content-Length"));
          if (!len || *len < 0 || static_cast<size_t>(*len) > body.size())
            throw_http(400, "bad_request",
                       fmt::format("Inference-Header-Content-Length '{}' does not fit the {}-byte body",
                                   req.get_header_value("Inference-Header-Content-Length"), body.size()));
          binary = body.substr(static_cast<size_t>(*len));
          body = body.substr(0, static_cast<size_t>(*len));
        }
        const nlohmann::json header = parse_json(body, "the inference request");
        const auto images = infer_images(header, binary, options.max_batch_images);
        const nlohmann::json params = header.value("parameters", nlohmann::json::object());
        const auto predict_params = params_from(*model, [&](const char* n) -> std::optional<std::string> {
          if (!params.is_object() || !params.contains(n)) return std::nullopt;
          const auto& v = params[n];
          return v.is_string() ? v.get<std::string>() : v.dump();
        });
        std::vector<ImagePart> parts;
        for (size_t i = 0; i < images.size(); ++i) parts.push_back({fmt::format("image[{}]", i), images[i]});
        auto outcomes = predict_images(model, parts, predict_params, false);
        const double total =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        for (const auto& o : outcomes) {
          if (o.error) {
            stats.record_error();
            throw *o.error;  // KServe has no per-element errors: the request fails as a whole
          }
        }
        for (const auto& o : outcomes) {
          stats.record(answer_labels(o.result.prediction), total);
        }
        nlohmann::json out = {{"model_name", model->name},
                              {"model_version", model->version},
                              {"outputs", infer_outputs(*model, outcomes)}};
        if (header.contains("id")) out["id"] = header["id"];
        send_json(res, out);
      }));

  http.Post("/v2/repository/index",
            guarded(*this, "/v2/repository/index", [this](const httplib::Request&, httplib::Response& res) {
              auto model = current_model();
              nlohmann::json list = nlohmann::json::array();
              if (model)
                list.push_back({{"name", model->name}, {"version", model->version}, {"state", "READY"}});
              send_json(res, list);
            }));

  http.Post(
      R"(/v2/repository/models/([^/]+)/load)",
      guarded(*this, "/v2/repository/models/{name}/load",
              [this](const httplib::Request& req, httplib::Response& res) {
                auto model = model_or_503();
                const std::string name = req.matches[1];
                if (name != model->name)
                  throw_http(404, "not_found",
                             fmt::format("unknown model '{}'; this server serves '{}'", name, model->name));
                std::string path;
                if (!req.body.empty()) {
                  const auto body = parse_json(req.body, "the load request");
                  const auto params = body.is_object() ? body.value("parameters", nlohmann::json::object())
                                                       : nlohmann::json::object();
                  if (params.contains("path")) {
                    if (!params["path"].is_string())
                      throw_http(400, "bad_request", "parameters.path must be a string (a model file)");
                    path = params["path"].get<std::string>();
                  }
                }
                try {
                  reload(path);
                } catch (const InternalError& e) {
                  throw;
                } catch (const Error& e) {
                  throw_http(400, "bad_request",
                             fmt::format("load failed, the previous version keeps serving: {}", e.what()));
                }
                auto now = current_model();
                send_json(res, {{"name", now->name},
                                {"version", now->version},
                                {"state", "READY"},
                                {"load_time_ms", now->load_ms}});
              }));
}

}  // namespace vigil::serve
