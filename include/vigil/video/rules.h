#pragma once
/// The alert rule engine of one camera: Frigate's object semantics over the tracker's tracks.
///
/// Per track and frame: a detection below its label's min_score is ignored (the frame counts as unseen,
/// score 0); the median of the last score_window scores (0 for unseen frames) must reach the label's
/// threshold once for the track to be a true object (and it stays one); zones are entered at the box's
/// bottom centre after `inertia` consecutive frames inside and count after `loitering_time` seconds; a
/// track whose filtered box keeps an IoU above threshold_iou with its resting box for `seconds` is
/// stationary. An event starts when a true, seen, non-stationary object is in an alerting zone (anywhere,
/// when the camera has no zones) and `cooldown` seconds have passed since the track's last start. It ends
/// when the track ends, when the object has been outside every zone for as many frames as the largest
/// inertia of the zones it entered (leaving has the same hysteresis as entering, so a box edge jittering
/// on a zone's border does not end and restart events; walking from one zone into the next does not end
/// it), or when it becomes stationary (alerts.stationary.end_event).
/// Time comes in with each frame; nothing here reads a clock.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vigil/video/camera_rules.h"
#include "vigil/video/events.h"
#include "vigil/video/tracker.h"

namespace vigil::video {

/// What the rules make of one track now (for overlays and the live view).
struct TrackStatus {
  int64_t track_id = 0;
  std::string label;
  bool seen = false;         ///< matched in this frame with a score at or above min_score
  float computed_score = 0;  ///< the median the threshold is tested against
  bool true_object = false;  ///< the median reached the threshold at some point
  bool stationary = false;
  std::vector<std::string> zones;  ///< zones it counts as in (inertia and loitering passed)
  bool in_event = false;
};

/// Turns each frame's tracks into event start, update and end records. Not thread-safe: one camera thread
/// feeds it in frame order.
class RuleEngine {
 public:
  /// Validates the rules (throws InvalidArgument naming the key).
  explicit RuleEngine(CameraRules rules);

  /// One frame: `tracks` is that frame's Tracker::update() output (tentative ones are skipped). A known
  /// track that is missing or kRemoved has ended. Records come out ends of ended tracks first, then by
  /// ascending track id; one track yields at most one record per frame. Frame times must not go back.
  std::vector<EventRecord> update(const FrameRef& frame, const std::vector<Track>& tracks);

  /// Ends every open event (reason kStopped, at frame.time) and forgets every track.
  std::vector<EventRecord> finish(const FrameRef& frame);

  /// The events open now, by track id.
  std::vector<Event> open_events() const;
  /// The status of every track known, by track id.
  std::vector<TrackStatus> statuses() const;
  const CameraRules& rules() const { return rules_; }

 private:
  struct ZonePresence {
    int inside = 0;    ///< consecutive seen frames inside
    double since = 0;  ///< time of the first of them
  };
  struct TrackRules {
    TrackStatus status;
    std::vector<float> scores;           ///< the last score_window scores, oldest first
    std::vector<ZonePresence> presence;  ///< by zone index
    int outside = 0;                     ///< consecutive seen frames outside every zone of its label
    double outside_since = 0;            ///< time of the first of them
    Box rest;                            ///< where it came to rest
    double rest_since = 0;
    bool has_rest = false;
    std::optional<double> last_start;  ///< time of its last event start (for the cooldown)
    double last_record = 0;            ///< time of its event's last record
    std::vector<BoxRecord> history;
    std::optional<Event> event;
  };

  void observe(TrackRules& state, const Track& track, const FrameRef& frame);
  void update_zones(TrackRules& state, const Track& track, const FrameRef& frame);
  void update_rest(TrackRules& state, const Track& track, const FrameRef& frame);
  std::optional<EventRecord> step_event(TrackRules& state, const Track& track, const FrameRef& frame);
  std::optional<EventRecord> try_start(TrackRules& state, const Track& track, const FrameRef& frame);
  EventRecord end_event(TrackRules& state, EndReason reason, double time);

  CameraRules rules_;
  std::map<int64_t, TrackRules> tracks_;
  std::optional<double> last_time_;
};

}  // namespace vigil::video
