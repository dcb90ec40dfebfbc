#pragma once
/// Alert events: what the rule engine (rules.h) reports about a track that matters. An event starts when a
/// true object is in an alerting zone (and past its loitering time, cooldown and stationary checks), gets
/// updates while it stays, and ends when the track ends, leaves every alerting zone or comes to rest.
/// The pixels of the best snapshot are the caller's: an event only names the frame.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vigil/video/geometry.h"

namespace vigil::video {

/// A frame by its position in the stream and its timestamp.
struct FrameRef {
  int64_t index = 0;  ///< frame number in the caller's numbering
  double time = 0;    ///< seconds (stream time or wall clock; only differences matter)
};

/// One observed box of a track.
struct BoxRecord {
  FrameRef frame;
  Box box;  ///< the detection's box
  float score = 0;
};

/// Why an event ended.
enum class EndReason {
  kNone,        ///< still open
  kTrackEnded,  ///< the tracker removed the track (gone for max_lost frames)
  kLeftZones,   ///< seen outside every alerting zone
  kStationary,  ///< at rest for alerts.stationary.seconds (with stationary.end_event)
  kStopped,     ///< RuleEngine::finish(): the camera stopped
};

/// "none", "track_ended", "left_zones", "stationary", "stopped".
const char* to_string(EndReason reason);

/// One alert episode of one track.
struct Event {
  std::string id;  ///< "<camera>-<start time in ms>-<track id>": stable, no clock or randomness
  std::string camera;
  std::string label;
  int64_t class_id = 0;
  int64_t track_id = 0;
  std::vector<std::string> zones;          ///< zones entered during the event, in order of entry
  std::vector<std::string> current_zones;  ///< zones the object counts as in now
  FrameRef start;
  FrameRef last;                   ///< the latest frame the object was seen in while the event was open
  std::optional<double> end_time;  ///< set when ended
  EndReason end_reason = EndReason::kNone;
  int updates = 0;      ///< update records issued so far
  float top_score = 0;  ///< highest detection score while open
  BoxRecord best;       ///< the best snapshot: the frame with that score
  bool stationary = false;
  std::vector<BoxRecord> boxes;  ///< the track's boxes from its first frame, thinned past alerts.max_boxes

  bool ended() const { return end_time.has_value(); }
};

/// What happened to an event in a frame.
enum class EventKind { kStart, kUpdate, kEnd };

/// "start", "update", "end".
const char* to_string(EventKind kind);

/// One record for sinks (store, JSONL, webhooks, server-sent events): the event as it is after the change.
struct EventRecord {
  EventKind kind = EventKind::kStart;
  Event event;
};

}  // namespace vigil::video
