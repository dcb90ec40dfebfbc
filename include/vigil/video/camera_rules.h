#pragma once
/// A camera's alert rules as configured: which labels matter and with what scores (Frigate's `objects`),
/// its zones (zones.h) and the alert timing (`alerts`). Read from the `cameras.<name>` section of a YAML
/// file such as
///
///   cameras:
///     shop:
///       objects: {track: [person, gun], filters: {gun: {min_score: 0.5, threshold: 0.7}}}
///       zones:
///         counter: {coordinates: [[0,300],[640,300],[640,480],[0,480]], inertia: 3, objects: [gun]}
///       alerts: {cooldown: 30, stationary: {threshold_iou: 0.95, seconds: 60}}
///
/// Every error names the dotted key, e.g. "cameras.shop.zones.counter.coordinates: expected ...".

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "vigil/video/zones.h"

namespace vigil::video {

/// Per-label score rules (Frigate's FilterConfig, same defaults).
struct ObjectFilter {
  double min_score = 0.5;  ///< a detection below this is ignored: the track counts as unseen that frame
  double threshold = 0.7;  ///< median of the track's last scores needed before it is a true object

  template <class V>
  void visit(V& v) {
    v("min_score", min_score, "detections scoring below this are ignored");
    v("threshold", threshold, "median of the track's recent scores needed to count as a true object");
  }
  /// Throws InvalidArgument naming the field.
  void validate() const;
};

/// The `objects` section.
struct ObjectsConfig {
  std::vector<std::string> track;               ///< labels that can raise events; empty: every label
  std::map<std::string, ObjectFilter> filters;  ///< by label; a label without one gets the defaults
  int score_window = 10;                        ///< scores the median is taken over (Frigate keeps 10)

  /// Whether tracks of this label are considered at all.
  bool tracks_label(const std::string& label) const;
  /// The label's filter, or the default one.
  const ObjectFilter& filter_for(const std::string& label) const;
  /// Throws InvalidArgument naming the field (filters of labels not in `track` are errors: a typo there
  /// would silently leave the real label on defaults).
  void validate() const;
};

/// `alerts.stationary`: an object whose box stays put stops raising alerts (a parked car is news once).
struct StationaryConfig {
  double threshold_iou = 0.95;  ///< IoU with the box where it came to rest above which it has not moved
  double seconds = 60;          ///< at rest this long -> stationary (0: never)
  bool end_event = true;        ///< end its open event then, as Frigate ends review items of still objects

  template <class V>
  void visit(V& v) {
    v("threshold_iou", threshold_iou, "IoU with its resting box above which an object has not moved");
    v("seconds", seconds, "seconds at rest before an object is stationary (0: never)");
    v("end_event", end_event, "end an open event when its object becomes stationary");
  }
  /// Throws InvalidArgument naming the field.
  void validate() const;
};

/// The `alerts` section.
struct AlertConfig {
  double cooldown = 30;         ///< seconds after an event starts before the same track may start another
  double update_interval = 60;  ///< an open event gets an update record at least this often (seconds)
  int max_boxes = 1000;         ///< box history kept per event; longer histories are thinned evenly
  StationaryConfig stationary;

  template <class V>
  void visit(V& v) {
    v("cooldown", cooldown, "seconds before the same track may raise another alert");
    v("update_interval", update_interval, "seconds between update records of an open event");
    v("max_boxes", max_boxes, "boxes kept per event (longer histories are thinned)");
    v("stationary", stationary, "stationary-object suppression");
  }
  /// Throws InvalidArgument naming the field.
  void validate() const;
};

/// Everything the rule engine needs for one camera.
struct CameraRules {
  std::string name;  ///< the camera's key under `cameras:`
  ObjectsConfig objects;
  std::vector<ZoneConfig> zones;  ///< in file order
  AlertConfig alerts;

  /// Validates every part; the message starts with the dotted key ("cameras.<name>.zones.<zone>.inertia:").
  void validate() const;
};

/// The keys of a camera section this file reads. The camera config that also holds the source, detector
/// and outputs owns the unknown-key check for the whole section and should accept these.
const std::vector<std::string>& camera_rule_keys();

/// Reads `objects`, `zones` and `alerts` of one camera section (other keys are left to their owners) and
/// validates. Throws InvalidArgument naming cameras.<camera>.<section>[.<zone>].<field>.
CameraRules parse_camera_rules(const std::string& camera, const YAML::Node& section);

/// Every camera of a document's `cameras:` mapping, in file order.
std::vector<CameraRules> parse_cameras(const YAML::Node& root);

/// parse_cameras() of a YAML file; syntax errors name the file and line.
std::vector<CameraRules> load_cameras(const std::filesystem::path& file);

}  // namespace vigil::video
