#include "vigil/video/watch_config.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "vigil/core/config.h"
#include "vigil/core/error.h"
#include "vigil/core/strings.h"
#include "vigil/nn/precision.h"

namespace vigil::video {
namespace {

using config::detail::Reader;
using config::detail::throw_bad_value;
using config::detail::throw_unknown_key;

/// SourceOptions through config::bind (source.h keeps its struct free of the config machinery).
struct SourceSection {
  SourceOptions& o;
  template <class V>
  void visit(V& v) {
    v("url", o.url, "video file, frame folder, rtsp:// http(s):// URL, /dev/videoN or device index");
    v("loop", o.loop, "files and folders: start again at the end");
    v("fps", o.fps, "files and folders: read at this rate (0: the file's own)");
    v("realtime", o.realtime,
      "files and folders: false processes every sampled frame as fast as detection allows (no pacing, no "
      "drops)");
    v("stall_seconds", o.stall_seconds, "no frame for this long means the source stalled");
    v("reconnect_initial", o.reconnect_initial, "seconds before the first reconnect (doubles)");
    v("reconnect_max", o.reconnect_max, "reconnect back-off ceiling in seconds");
    v("max_reconnects", o.max_reconnects, "failed reconnects in a row before giving up (-1: never)");
  }
};

/// Runs a validate() whose message starts with a key relative to `prefix`, and puts the prefix in front.
template <class F>
void with_prefix(const std::string& prefix, F&& validate) {
  try {
    validate();
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(prefix + e.what());
  }
}

const YAML::Node& require_map(const YAML::Node& node, const std::string& key) {
  if (!node.IsMap()) throw_bad_value(key, "a mapping", node);
  return node;
}

void check_keys(const YAML::Node& node, const std::string& prefix, const std::vector<std::string>& valid) {
  for (const auto& kv : node) {
    const auto key = kv.first.as<std::string>();
    if (std::find(valid.begin(), valid.end(), key) != valid.end()) continue;
    std::vector<std::string> full;
    for (const auto& v : valid) full.push_back(prefix + v);
    throw_unknown_key(prefix + key, full);
  }
}

/// A copy of a mapping without some keys (those a caller reads by hand).
YAML::Node without(const YAML::Node& node, const std::vector<std::string>& keys) {
  YAML::Node out(YAML::NodeType::Map);
  for (const auto& kv : node) {
    const auto key = kv.first.as<std::string>();
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) out[key] = kv.second;
  }
  return out;
}

bool finite_positive(double x) {
  return std::isfinite(x) && x > 0;
}

void read_source(const YAML::Node& node, const std::string& key, SourceOptions& source) {
  if (node.IsScalar()) {  // `source: clip.mp4` is short for `source: {url: clip.mp4}`
    source.url = node.Scalar();
    return;
  }
  SourceSection section{source};
  Reader::read_into(require_map(node, key), section, key + ".");
}

CameraConfig parse_camera(const std::string& name, const YAML::Node& section) {
  const std::string prefix = "cameras." + name + ".";
  if (!section || section.IsNull() || !section.IsMap())
    throw_bad_value("cameras." + name, "a camera section (a mapping with source and detect)", section);
  check_keys(section, prefix, camera_keys());
  CameraConfig c;
  c.name = name;
  c.source.name = name;
  c.rules = parse_camera_rules(name, section);
  if (const YAML::Node n = section["source"]) read_source(n, prefix + "source", c.source);
  if (const YAML::Node n = section["detect"])
    Reader::read_into(require_map(n, prefix + "detect"), c.detect, prefix + "detect.");
  if (const YAML::Node n = section["classify"])
    Reader::read_into(require_map(n, prefix + "classify"), c.classify, prefix + "classify.");
  // A cascade's label is the classifier's verdict, which may flip between frames: the tracker then follows
  // the box whatever its class and votes the track's label (unless the file says otherwise).
  if (c.classify.enabled()) c.tracker.class_aware = false;
  if (const YAML::Node n = section["tracker"])
    Reader::read_into(require_map(n, prefix + "tracker"), c.tracker, prefix + "tracker.");
  if (const YAML::Node n = section["annotate"])
    Reader::read_into(require_map(n, prefix + "annotate"), c.annotate, prefix + "annotate.");
  if (const YAML::Node n = section["clips"]) {
    // `clips: true` is short for `clips: {enabled: true}`.
    if (n.IsScalar()) {
      try {
        c.clips.enabled = n.as<bool>();
      } catch (const YAML::Exception&) {
        throw_bad_value(prefix + "clips", "true, false or a mapping", n);
      }
    } else {
      c.clips.enabled = true;  // a clips section asks for clips unless it says enabled: false
      Reader::read_into(require_map(n, prefix + "clips"), c.clips, prefix + "clips.");
    }
  }
  c.validate();
  return c;
}

WebhookConfig parse_webhook(const YAML::Node& node, const std::string& key) {
  WebhookConfig w;
  if (node.IsScalar()) {
    w.url = node.Scalar();
  } else {
    Reader::read_into(require_map(node, key), w, key + ".");
  }
  with_prefix(key + ".", [&] { w.validate(); });
  return w;
}

}  // namespace

void OpenCvCascadeConfig::validate() const {
  VIGIL_CHECK(std::isfinite(scale_factor) && scale_factor > 1 && scale_factor <= 2,
              "scale_factor: expected a pyramid step in (1, 2], got {}", scale_factor);
  VIGIL_CHECK(min_neighbors >= 0, "min_neighbors: expected >= 0, got {}", min_neighbors);
  VIGIL_CHECK(min_size >= 1, "min_size: expected a side of at least 1 pixel, got {}", min_size);
}

void FaceApiConfig::validate() const {
  VIGIL_CHECK(input_size < 0 || (input_size >= 32 && input_size <= 1024 && input_size % 32 == 0),
              "input_size: expected a multiple of 32 in [32, 1024] (< 0: 416), got {}", input_size);
  VIGIL_CHECK(!label.empty(), "label: expected a label for the boxes, got none");
}

void DetectConfig::validate() const {
  VIGIL_CHECK(!model.empty(),
              "model: expected a vigil model file, a registered model (NAME@alias), faceapi:<net> or "
              "opencv:<cascade>, "
              "got none");
  VIGIL_CHECK(finite_positive(fps) && fps <= 100, "fps: expected detections per second in (0, 100], got {}",
              fps);
  VIGIL_CHECK(score_threshold >= 0 && score_threshold <= 1, "score_threshold: expected [0, 1], got {}",
              score_threshold);
  VIGIL_CHECK(
      nn::parse_precision(precision) != nn::Precision::kInt8,
      "precision: expected fp32 or bf16 when watching, got int8 (int8 needs a calibration set: use it "
      "with vigil predict, evaluate or serve)");
  VIGIL_CHECK(nms_iou < 0 || nms_iou <= 1, "nms_iou: expected an IoU in [0, 1] (< 0: the model's), got {}",
              nms_iou);
  with_prefix("opencv.", [&] { opencv.validate(); });
  with_prefix("faceapi.", [&] { faceapi.validate(); });
}

void ClassifyConfig::validate() const {
  VIGIL_CHECK(std::isfinite(margin) && margin >= 0 && margin <= 2,
              "margin: expected a fraction of the box in [0, 2], got {}", margin);
  VIGIL_CHECK(max_crops >= 1 && max_crops <= 1024, "max_crops: expected 1..1024, got {}", max_crops);
  VIGIL_CHECK(
      nn::parse_precision(precision) != nn::Precision::kInt8,
      "precision: expected fp32 or bf16 when watching, got int8 (int8 needs a calibration set: use it "
      "with vigil predict, evaluate or serve)");
  VIGIL_CHECK(
      !starts_with(model, "opencv:") && !starts_with(model, "faceapi:"),
      "model: expected a vigil classifier, got '{}' (OpenCV cascades and face-api.js are detectors: use "
      "detect.model)",
      model);
}

void CameraConfig::validate() const {
  const std::string prefix = "cameras." + name + ".";
  rules.validate();  // also checks the camera's name
  try {
    source.validate();
  } catch (const InvalidArgument& e) {
    // SourceOptions names the camera itself; point at the section too.
    throw InvalidArgument(fmt::format("{}source: {}", prefix, e.what()));
  }
  with_prefix(prefix + "detect.", [&] { detect.validate(); });
  with_prefix(prefix + "classify.", [&] { classify.validate(); });
  with_prefix(prefix + "tracker.", [&] { tracker.validate(); });
  const std::string ext = to_lower(std::filesystem::path(annotate.video).extension().string());
  VIGIL_CHECK(annotate.video.empty() || ext == ".mp4" || ext == ".avi",
              "{}annotate.video: expected a .mp4 or .avi file, got '{}'", prefix, annotate.video);
  with_prefix(prefix + "clips.", [&] { clips.validate(); });
}

void ClipsConfig::validate() const {
  VIGIL_CHECK(std::isfinite(pre_capture) && pre_capture >= 0 && pre_capture <= 60,
              "pre_capture: expected seconds in [0, 60], got {}", pre_capture);
  VIGIL_CHECK(std::isfinite(post_capture) && post_capture >= 0 && post_capture <= 600,
              "post_capture: expected seconds in [0, 600], got {}", post_capture);
  VIGIL_CHECK(finite_positive(max_seconds), "max_seconds: expected seconds > 0, got {}", max_seconds);
  VIGIL_CHECK(quality >= 1 && quality <= 100, "quality: expected 1..100, got {}", quality);
  VIGIL_CHECK(buffer_mb >= 1 && buffer_mb <= 4096, "buffer_mb: expected 1..4096, got {}", buffer_mb);
}

std::string WebhookConfig::resolved_secret() const {
  if (secret_env.empty()) return secret;
  const char* value = std::getenv(secret_env.c_str());
  VIGIL_CHECK(value != nullptr, "secret_env: expected the environment variable {} to be set, got it unset",
              secret_env);
  return value;
}

void WebhookConfig::validate() const {
  VIGIL_CHECK(starts_with(url, "http://") || starts_with(url, "https://"),
              "url: expected an http:// or https:// URL, got '{}'", url);
  VIGIL_CHECK(secret.empty() || secret_env.empty(), "secret: expected secret or secret_env, got both");
  for (const auto& k : kinds)
    VIGIL_CHECK(k == "start" || k == "update" || k == "end",
                "kinds: expected record kinds among start, update, end, got '{}'", k);
  VIGIL_CHECK(finite_positive(timeout), "timeout: expected seconds > 0, got {}", timeout);
  VIGIL_CHECK(max_attempts >= 1, "max_attempts: expected at least 1, got {}", max_attempts);
  VIGIL_CHECK(finite_positive(retry_initial) && std::isfinite(retry_max) && retry_max >= retry_initial,
              "retry_initial: expected 0 < retry_initial <= retry_max, got {} and {}", retry_initial,
              retry_max);
  VIGIL_CHECK(queue_capacity >= 1, "queue_capacity: expected at least 1, got {}", queue_capacity);
  (void)resolved_secret();
}

void OutputsConfig::validate() const {
  for (size_t i = 0; i < webhooks.size(); ++i)
    with_prefix(fmt::format("webhooks[{}].", i), [&] { webhooks[i].validate(); });
}

void WatchConfig::validate() const {
  VIGIL_CHECK(!cameras.empty(), "cameras: expected at least one camera, got none");
  std::set<std::string> names;
  for (const auto& c : cameras) {
    c.validate();
    VIGIL_CHECK(names.insert(c.name).second, "cameras.{}: expected unique camera names, got it twice",
                c.name);
  }
  with_prefix("outputs.", [&] { outputs.validate(); });
}

const std::vector<std::string>& camera_keys() {
  static const std::vector<std::string> kKeys = [] {
    std::vector<std::string> keys{"source", "detect", "classify", "tracker", "annotate", "clips"};
    for (const auto& k : camera_rule_keys()) keys.push_back(k);
    return keys;
  }();
  return kKeys;
}

WatchConfig parse_watch_config(const YAML::Node& root) {
  VIGIL_CHECK(root && root.IsMap() && root["cameras"], "expected a 'cameras:' mapping, got none");
  check_keys(root, "", {"cameras", "outputs"});
  WatchConfig config;
  const YAML::Node cameras = require_map(root["cameras"], "cameras");
  VIGIL_CHECK(cameras.size() > 0, "cameras: expected at least one camera, got none");
  for (const auto& kv : cameras)
    config.cameras.push_back(parse_camera(kv.first.as<std::string>(), kv.second));
  if (const YAML::Node outputs = root["outputs"]) {
    require_map(outputs, "outputs");
    Reader::read_into(without(outputs, {"webhooks"}), config.outputs, "outputs.");
    if (const YAML::Node hooks = outputs["webhooks"]) {
      if (!hooks.IsSequence()) throw_bad_value("outputs.webhooks", "a list of webhooks", hooks);
      for (size_t i = 0; i < hooks.size(); ++i)
        config.outputs.webhooks.push_back(parse_webhook(hooks[i], fmt::format("outputs.webhooks[{}]", i)));
    }
  }
  config.validate();
  return config;
}

WatchConfig load_watch_config(const std::filesystem::path& file) {
  config::Source source;
  source.file = file.string();
  return parse_watch_config(config::build_tree(source));
}

}  // namespace vigil::video
