#include "vigil/video/rules.h"

#include <algorithm>
#include <cmath>

#include "vigil/core/error.h"

namespace vigil::video {
namespace {

float median(std::vector<float> values) {
  const size_t n = values.size();
  if (n == 0) return 0;
  std::sort(values.begin(), values.end());
  return n % 2 ? values[n / 2] : 0.5f * (values[n / 2 - 1] + values[n / 2]);
}

// Appends and, past `cap`, drops every other record (keeping the first and the newest) so a long event keeps
// its whole path at a coarser step instead of only its end.
void append_thinned(std::vector<BoxRecord>& boxes, const BoxRecord& record, size_t cap) {
  boxes.push_back(record);
  if (boxes.size() <= cap) return;
  size_t kept = 0;
  for (size_t i = 0; i + 1 < boxes.size(); i += 2) boxes[kept++] = boxes[i];
  boxes[kept++] = boxes.back();
  boxes.resize(kept);
}

std::string event_id(const std::string& camera, double time, int64_t track_id) {
  return fmt::format("{}-{}-{}", camera, std::llround(time * 1000), track_id);
}

}  // namespace

const char* to_string(EndReason reason) {
  switch (reason) {
    case EndReason::kNone:
      return "none";
    case EndReason::kTrackEnded:
      return "track_ended";
    case EndReason::kLeftZones:
      return "left_zones";
    case EndReason::kStationary:
      return "stationary";
    case EndReason::kStopped:
      return "stopped";
  }
  return "unknown";
}

const char* to_string(EventKind kind) {
  switch (kind) {
    case EventKind::kStart:
      return "start";
    case EventKind::kUpdate:
      return "update";
    case EventKind::kEnd:
      return "end";
  }
  return "unknown";
}

RuleEngine::RuleEngine(CameraRules rules) : rules_(std::move(rules)) {
  rules_.validate();
}

std::vector<EventRecord> RuleEngine::update(const FrameRef& frame, const std::vector<Track>& tracks) {
  VIGIL_CHECK(std::isfinite(frame.time) && (!last_time_ || frame.time >= *last_time_),
              "expected frame times that never go back, got {} after {}", frame.time,
              last_time_.value_or(frame.time));
  last_time_ = frame.time;
  std::map<int64_t, const Track*> live;
  for (const Track& t : tracks) {
    const bool alive = t.state == TrackState::kConfirmed || t.state == TrackState::kLost;
    if (alive && t.id != 0 && rules_.objects.tracks_label(t.label)) live[t.id] = &t;
  }
  std::vector<EventRecord> records;
  for (auto it = tracks_.begin(); it != tracks_.end();) {
    if (live.count(it->first)) {
      ++it;
      continue;
    }
    TrackRules& gone = it->second;
    if (gone.event) records.push_back(end_event(gone, EndReason::kTrackEnded, gone.event->last.time));
    it = tracks_.erase(it);
  }
  for (const auto& [id, track] : live) {
    TrackRules& state = tracks_[id];
    if (state.status.track_id == 0) {
      state.status.track_id = id;
      state.presence.resize(rules_.zones.size());
    }
    observe(state, *track, frame);
    if (auto record = step_event(state, *track, frame)) records.push_back(std::move(*record));
  }
  return records;
}

void RuleEngine::observe(TrackRules& state, const Track& track, const FrameRef& frame) {
  const ObjectFilter& filter = rules_.objects.filter_for(track.label);
  TrackStatus& status = state.status;
  status.label = track.label;
  // Frigate: a detection under min_score is no detection, and a frame without one scores 0 in the median.
  status.seen = track.matched() && track.score >= static_cast<float>(filter.min_score);
  state.scores.push_back(status.seen ? track.score : 0.0f);
  if (state.scores.size() > static_cast<size_t>(rules_.objects.score_window))
    state.scores.erase(state.scores.begin());
  status.computed_score = median(state.scores);
  // Once a true object, always one (Frigate): a later run of weak frames does not un-alert it.
  if (status.computed_score >= static_cast<float>(filter.threshold)) status.true_object = true;
  if (!status.seen) return;  // where an unseen object is we do not know: zones and rest stay as they were
  update_zones(state, track, frame);
  update_rest(state, track, frame);
  append_thinned(state.history, {frame, track.detection, track.score},
                 static_cast<size_t>(rules_.alerts.max_boxes));
}

void RuleEngine::update_zones(TrackRules& state, const Track& track, const FrameRef& frame) {
  const Point foot = track.detection.bottom_centre();
  state.status.zones.clear();
  bool inside_any = false;
  for (size_t i = 0; i < rules_.zones.size(); ++i) {
    const ZoneConfig& zone = rules_.zones[i];
    ZonePresence& presence = state.presence[i];
    if (!zone.applies_to(track.label) || !zone.contains(foot)) {
      presence = {};
      continue;
    }
    inside_any = true;
    if (presence.inside++ == 0) presence.since = frame.time;
    if (presence.inside >= zone.inertia && frame.time - presence.since >= zone.loitering_time)
      state.status.zones.push_back(zone.name);
  }
  if (inside_any) {
    state.outside = 0;
  } else if (state.outside++ == 0) {
    state.outside_since = frame.time;
  }
}

void RuleEngine::update_rest(TrackRules& state, const Track& track, const FrameRef& frame) {
  // The filtered box: raw detections jitter by a few pixels, which alone would keep a parked car "moving".
  // Comparing with where it came to rest (not with the previous frame) also catches a slow drift.
  const StationaryConfig& still = rules_.alerts.stationary;
  if (!state.has_rest || iou(track.box, state.rest) < static_cast<float>(still.threshold_iou)) {
    state.rest = track.box;
    state.rest_since = frame.time;
    state.has_rest = true;
  }
  state.status.stationary = still.seconds > 0 && frame.time - state.rest_since >= still.seconds;
}

std::optional<EventRecord> RuleEngine::step_event(TrackRules& state, const Track& track,
                                                  const FrameRef& frame) {
  if (!state.event) return try_start(state, track, frame);
  Event& event = *state.event;
  const TrackStatus& status = state.status;
  bool changed = false;
  if (status.seen) {
    const BoxRecord record{frame, track.detection, track.score};
    event.last = frame;
    append_thinned(event.boxes, record, static_cast<size_t>(rules_.alerts.max_boxes));
    if (track.score > event.top_score) {
      event.top_score = track.score;
      event.best = record;
    }
  }
  for (const auto& zone : status.zones) {
    if (std::find(event.zones.begin(), event.zones.end(), zone) != event.zones.end()) continue;
    event.zones.push_back(zone);
    changed = true;
  }
  changed = changed || event.current_zones != status.zones || event.stationary != status.stationary;
  event.current_zones = status.zones;
  event.stationary = status.stationary;
  if (!rules_.zones.empty()) {
    int exit_frames = 1;
    for (const ZoneConfig& zone : rules_.zones) {
      if (std::find(event.zones.begin(), event.zones.end(), zone.name) != event.zones.end())
        exit_frames = std::max(exit_frames, zone.inertia);
    }
    if (state.outside >= exit_frames) return end_event(state, EndReason::kLeftZones, state.outside_since);
  }
  if (status.stationary && rules_.alerts.stationary.end_event)
    return end_event(state, EndReason::kStationary, frame.time);
  if (!changed && frame.time - state.last_record < rules_.alerts.update_interval) return std::nullopt;
  ++event.updates;
  state.last_record = frame.time;
  return EventRecord{EventKind::kUpdate, event};
}

std::optional<EventRecord> RuleEngine::try_start(TrackRules& state, const Track& track,
                                                 const FrameRef& frame) {
  const TrackStatus& status = state.status;
  const bool in_area = rules_.zones.empty() || !status.zones.empty();
  if (!status.true_object || !status.seen || !in_area || status.stationary) return std::nullopt;
  if (state.last_start && frame.time - *state.last_start < rules_.alerts.cooldown) return std::nullopt;
  Event event;
  event.id = event_id(rules_.name, frame.time, track.id);
  event.camera = rules_.name;
  event.label = track.label;
  event.class_id = track.class_id;
  event.track_id = track.id;
  event.zones = status.zones;
  event.current_zones = status.zones;
  event.start = event.last = frame;
  event.top_score = track.score;
  event.best = {frame, track.detection, track.score};
  event.boxes = state.history;
  state.last_start = frame.time;
  state.last_record = frame.time;
  state.status.in_event = true;
  state.event = std::move(event);
  return EventRecord{EventKind::kStart, *state.event};
}

EventRecord RuleEngine::end_event(TrackRules& state, EndReason reason, double time) {
  Event& event = *state.event;
  event.end_time = time;
  event.end_reason = reason;
  if (reason == EndReason::kLeftZones) event.current_zones.clear();
  EventRecord record{EventKind::kEnd, std::move(event)};
  state.event.reset();
  state.status.in_event = false;
  return record;
}

std::vector<EventRecord> RuleEngine::finish(const FrameRef& frame) {
  std::vector<EventRecord> records;
  for (auto& [id, state] : tracks_)
    if (state.event) records.push_back(end_event(state, EndReason::kStopped, frame.time));
  tracks_.clear();
  return records;
}

std::vector<Event> RuleEngine::open_events() const {
  std::vector<Event> out;
  for (const auto& [id, state] : tracks_)
    if (state.event) out.push_back(*state.event);
  return out;
}

std::vector<TrackStatus> RuleEngine::statuses() const {
  std::vector<TrackStatus> out;
  for (const auto& [id, state] : tracks_) out.push_back(state.status);
  return out;
}

}  // namespace vigil::video
