#include "vigil/video/camera_rules.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "vigil/core/config.h"
#include "vigil/core/error.h"
#include "vigil/core/strings.h"

namespace vigil::video {
namespace {

using config::detail::throw_bad_value;
using config::detail::throw_unknown_key;

// Runs a validate() whose messages start with a key relative to `prefix`, and puts the prefix in front so
// the message names the full dotted key ("cameras.shop." + "zones.counter.inertia: ...").
template <class F>
void with_prefix(const std::string& prefix, F&& validate) {
  try {
    validate();
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(prefix + e.what());
  }
}

bool is_finite_non_negative(double x) {
  return std::isfinite(x) && x >= 0;
}

std::string tracked_list(const ObjectsConfig& objects) {
  return join(objects.track, ", ");
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

const YAML::Node& require_map(const YAML::Node& node, const std::string& key) {
  if (!node.IsMap()) throw_bad_value(key, "a mapping", node);
  return node;
}

std::vector<std::string> read_labels(const YAML::Node& node, const std::string& key) {
  if (!node.IsSequence()) throw_bad_value(key, "a list of labels", node);
  std::vector<std::string> labels;
  for (const auto& item : node) {
    if (!item.IsScalar()) throw_bad_value(key, "a list of labels", node);
    labels.push_back(item.Scalar());
  }
  return labels;
}

void read_objects(const YAML::Node& node, const std::string& prefix, ObjectsConfig& objects) {
  require_map(node, prefix.substr(0, prefix.size() - 1));
  check_keys(node, prefix, {"track", "filters", "score_window"});
  if (const YAML::Node track = node["track"]) objects.track = read_labels(track, prefix + "track");
  if (const YAML::Node window = node["score_window"]) {
    try {
      objects.score_window = window.as<int>();
    } catch (const YAML::Exception&) {
      throw_bad_value(prefix + "score_window", "an integer", window);
    }
  }
  if (const YAML::Node filters = node["filters"]) {
    require_map(filters, prefix + "filters");
    for (const auto& kv : filters) {
      const auto label = kv.first.as<std::string>();
      const std::string key = prefix + "filters." + label;
      ObjectFilter filter;
      config::detail::Reader::read_into(require_map(kv.second, key), filter, key + ".");
      objects.filters[label] = filter;
    }
  }
}

void read_zones(const YAML::Node& node, const std::string& prefix, std::vector<ZoneConfig>& zones) {
  require_map(node, prefix.substr(0, prefix.size() - 1));
  for (const auto& kv : node) {
    ZoneConfig zone;
    zone.name = kv.first.as<std::string>();
    const std::string key = prefix + zone.name;
    config::detail::Reader::read_into(require_map(kv.second, key), zone, key + ".");
    zones.push_back(std::move(zone));
  }
}

}  // namespace

void ObjectFilter::validate() const {
  VIGIL_CHECK(min_score >= 0 && min_score <= 1, "min_score: expected a score in [0, 1], got {}", min_score);
  VIGIL_CHECK(threshold >= 0 && threshold <= 1, "threshold: expected a score in [0, 1], got {}", threshold);
}

bool ObjectsConfig::tracks_label(const std::string& label) const {
  return track.empty() || std::find(track.begin(), track.end(), label) != track.end();
}

const ObjectFilter& ObjectsConfig::filter_for(const std::string& label) const {
  static const ObjectFilter kDefault;
  const auto it = filters.find(label);
  return it == filters.end() ? kDefault : it->second;
}

void ObjectsConfig::validate() const {
  for (const auto& label : track) VIGIL_CHECK(!label.empty(), "track: expected labels, got an empty string");
  VIGIL_CHECK(score_window >= 1, "score_window: expected at least 1 score, got {}", score_window);
  for (const auto& [label, filter] : filters) {
    VIGIL_CHECK(tracks_label(label), "filters.{}: expected a label listed in objects.track ({}), got '{}'",
                label, tracked_list(*this), label);
    with_prefix("filters." + label + ".", [&] { filter.validate(); });
  }
}

void StationaryConfig::validate() const {
  VIGIL_CHECK(threshold_iou > 0 && threshold_iou <= 1, "threshold_iou: expected an IoU in (0, 1], got {}",
              threshold_iou);
  VIGIL_CHECK(is_finite_non_negative(seconds), "seconds: expected seconds >= 0 (0: never), got {}", seconds);
}

void AlertConfig::validate() const {
  VIGIL_CHECK(is_finite_non_negative(cooldown), "cooldown: expected seconds >= 0, got {}", cooldown);
  VIGIL_CHECK(std::isfinite(update_interval) && update_interval > 0,
              "update_interval: expected seconds > 0, got {}", update_interval);
  VIGIL_CHECK(max_boxes >= 2, "max_boxes: expected at least 2, got {}", max_boxes);
  with_prefix("stationary.", [&] { stationary.validate(); });
}

void CameraRules::validate() const {
  const bool good_name = !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-';
  });
  // Camera names go into URLs (/v1/cameras/NAME), file names and event ids.
  VIGIL_CHECK(good_name, "cameras.{}: expected a camera name of letters, digits, '_' and '-', got '{}'", name,
              name);
  const std::string prefix = "cameras." + name + ".";
  with_prefix(prefix + "objects.", [&] { objects.validate(); });
  std::set<std::string> names;
  for (const ZoneConfig& zone : zones) {
    with_prefix(prefix, [&] { zone.validate(); });
    VIGIL_CHECK(names.insert(zone.name).second, "{}zones.{}: expected unique zone names, got it twice",
                prefix, zone.name);
    for (const auto& label : zone.objects) {
      VIGIL_CHECK(objects.tracks_label(label),
                  "{}zones.{}.objects: expected labels listed in objects.track ({}), got '{}'", prefix,
                  zone.name, tracked_list(objects), label);
    }
  }
  with_prefix(prefix + "alerts.", [&] { alerts.validate(); });
}

const std::vector<std::string>& camera_rule_keys() {
  static const std::vector<std::string> kKeys{"objects", "zones", "alerts"};
  return kKeys;
}

CameraRules parse_camera_rules(const std::string& camera, const YAML::Node& section) {
  CameraRules rules;
  rules.name = camera;
  const std::string prefix = "cameras." + camera + ".";
  if (section && !section.IsNull()) {
    require_map(section, "cameras." + camera);
    if (const YAML::Node objects = section["objects"])
      read_objects(objects, prefix + "objects.", rules.objects);
    if (const YAML::Node zones = section["zones"]) read_zones(zones, prefix + "zones.", rules.zones);
    if (const YAML::Node alerts = section["alerts"]) {
      config::detail::Reader::read_into(require_map(alerts, prefix + "alerts"), rules.alerts,
                                        prefix + "alerts.");
    }
  }
  rules.validate();
  return rules;
}

std::vector<CameraRules> parse_cameras(const YAML::Node& root) {
  VIGIL_CHECK(root && root.IsMap() && root["cameras"], "expected a 'cameras:' mapping, got none");
  const YAML::Node cameras = root["cameras"];
  require_map(cameras, "cameras");
  VIGIL_CHECK(cameras.size() > 0, "cameras: expected at least one camera, got none");
  std::vector<CameraRules> out;
  for (const auto& kv : cameras) out.push_back(parse_camera_rules(kv.first.as<std::string>(), kv.second));
  return out;
}

std::vector<CameraRules> load_cameras(const std::filesystem::path& file) {
  config::Source source;
  source.file = file.string();
  return parse_cameras(config::build_tree(source));
}

}  // namespace vigil::video
