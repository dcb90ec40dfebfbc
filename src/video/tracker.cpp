#include "vigil/video/tracker.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "vigil/core/error.h"
#include "vigil/video/assignment.h"

namespace vigil::video {

const char* to_string(TrackState state) {
  switch (state) {
    case TrackState::kTentative:
      return "tentative";
    case TrackState::kConfirmed:
      return "confirmed";
    case TrackState::kLost:
      return "lost";
    case TrackState::kRemoved:
      return "removed";
  }
  return "unknown";
}

void TrackerOptions::validate() const {
  VIGIL_CHECK(low_threshold >= 0 && low_threshold <= 1, "expected low_threshold in [0, 1], got {}",
              low_threshold);
  VIGIL_CHECK(high_threshold >= low_threshold && high_threshold <= 1,
              "expected high_threshold in [low_threshold {}, 1], got {}", low_threshold, high_threshold);
  VIGIL_CHECK(new_track_threshold >= 0 && new_track_threshold <= 1,
              "expected new_track_threshold in [0, 1], got {}", new_track_threshold);
  for (const auto& [name, value] : {std::pair<const char*, double>{"match_iou", match_iou},
                                    {"low_match_iou", low_match_iou},
                                    {"tentative_match_iou", tentative_match_iou},
                                    {"duplicate_iou", duplicate_iou}}) {
    VIGIL_CHECK(value > 0 && value <= 1, "expected {} in (0, 1], got {}", name, value);
  }
  VIGIL_CHECK(min_hits >= 1, "expected min_hits >= 1, got {}", min_hits);
  VIGIL_CHECK(max_lost >= 0, "expected max_lost >= 0 frames, got {}", max_lost);
  VIGIL_CHECK(score_history >= 1, "expected score_history >= 1, got {}", score_history);
  VIGIL_CHECK(std_weight_position > 0 && std_weight_velocity > 0,
              "expected std_weight_position and std_weight_velocity > 0, got {} and {}", std_weight_position,
              std_weight_velocity);
}

namespace {
TrackerOptions validated(TrackerOptions options) {
  options.validate();
  return options;
}
}  // namespace

Tracker::Tracker(TrackerOptions options)
    : options_(validated(std::move(options))),
      filter_(options_.std_weight_position, options_.std_weight_velocity) {}

std::vector<Track> Tracker::update(const std::vector<Detection>& detections) {
  for (size_t i = 0; i < detections.size(); ++i) {
    const Box& b = detections[i].box;
    VIGIL_CHECK(b.valid() && std::isfinite(detections[i].score),
                "expected detection {} to have finite corners with x2 > x1, y2 > y1 and a finite score, got "
                "({}, {}, {}, {}) score {}",
                i, b.x1, b.y1, b.x2, b.y2, detections[i].score);
  }
  ++frame_;
  predict_all();
  Split parts = split(detections);

  // Stage 1: confident detections against every confirmed track, lost ones included (ByteTrack's pool).
  std::vector<int> pool, tentative;
  for (int i = 0; i < static_cast<int>(entries_.size()); ++i)
    (entries_[i].track.state == TrackState::kTentative ? tentative : pool).push_back(i);
  associate(pool, parts.high, detections, options_.match_iou, options_.fuse_score);

  // Stage 2: weak detections only extend tracks that were tracked in the previous frame; a lost track
  // needs a confident detection to come back, so weak clutter does not revive stale tracks.
  std::vector<int> tracked;
  for (int i : pool)
    if (entries_[i].track.state == TrackState::kConfirmed) tracked.push_back(i);
  associate(tracked, parts.low, detections, options_.low_match_iou, false);
  for (int i : tracked) entries_[i].track.state = TrackState::kLost;

  // Tentative tracks get one chance per frame, from the confident detections left over.
  associate(tentative, parts.high, detections, options_.tentative_match_iou, options_.fuse_score);
  for (int i : tentative) entries_[i].track.state = TrackState::kRemoved;

  start_tracks(parts.high, detections);
  for (Entry& e : entries_) {
    if (e.track.state == TrackState::kLost && e.track.time_since_update > options_.max_lost)
      e.track.state = TrackState::kRemoved;
  }
  remove_duplicates();
  return collect_output();
}

Tracker::Split Tracker::split(const std::vector<Detection>& detections) const {
  Split parts;
  for (int i = 0; i < static_cast<int>(detections.size()); ++i) {
    const double s = detections[i].score;
    if (s >= options_.high_threshold) {
      parts.high.push_back(i);
    } else if (s >= options_.low_threshold) {
      parts.low.push_back(i);
    }
  }
  return parts;
}

void Tracker::predict_all() {
  for (Entry& e : entries_) {
    // As ByteTrack: a track that was not matched last frame stops changing size, so a long gap does not
    // shrink or blow up the box it is searched for with.
    if (e.track.state != TrackState::kConfirmed) e.estimate.mean[7] = 0;
    filter_.predict(e.estimate);
    e.track.box = KalmanFilter::to_box(e.estimate.mean);
    ++e.track.age;
    ++e.track.time_since_update;
  }
}

void Tracker::associate(std::vector<int>& tracks, std::vector<int>& dets,
                        const std::vector<Detection>& detections, double min_iou, bool fuse) {
  if (tracks.empty() || dets.empty()) return;
  const double inf = std::numeric_limits<double>::infinity();
  const int rows = static_cast<int>(tracks.size()), cols = static_cast<int>(dets.size());
  std::vector<double> cost(static_cast<size_t>(rows) * cols, inf);
  for (int r = 0; r < rows; ++r) {
    const Track& t = entries_[tracks[r]].track;
    for (int c = 0; c < cols; ++c) {
      const Detection& d = detections[dets[c]];
      if (options_.class_aware && d.class_id != t.class_id) continue;
      const double overlap = iou(t.box, d.box);
      if (overlap < min_iou) continue;  // the IoU gate: never match boxes that barely touch
      cost[static_cast<size_t>(r) * cols + c] = 1.0 - overlap * (fuse ? d.score : 1.0);
    }
  }
  const Assignment a = linear_assignment(cost, rows, cols, 1.0 - min_iou);
  for (const auto& [r, c] : a.matches) apply(entries_[tracks[r]], detections[dets[c]]);
  std::vector<int> left_tracks, left_dets;
  for (int r : a.unmatched_rows) left_tracks.push_back(tracks[r]);
  for (int c : a.unmatched_cols) left_dets.push_back(dets[c]);
  tracks = std::move(left_tracks);
  dets = std::move(left_dets);
}

void Tracker::apply(Entry& entry, const Detection& detection) {
  filter_.update(entry.estimate, KalmanFilter::to_measurement(detection.box));
  Track& t = entry.track;
  t.box = KalmanFilter::to_box(entry.estimate.mean);
  t.detection = detection.box;
  t.score = detection.score;
  t.scores.push_back(detection.score);
  if (t.scores.size() > static_cast<size_t>(options_.score_history)) t.scores.erase(t.scores.begin());
  ++t.hits;
  t.time_since_update = 0;
  // Class-agnostic matching can pair one object's boxes of different classes: report the class with the
  // most summed score so far rather than flickering with each frame.
  auto vote = std::find_if(entry.class_votes.begin(), entry.class_votes.end(),
                           [&](const auto& v) { return v.first == detection.class_id; });
  if (vote == entry.class_votes.end()) vote = entry.class_votes.insert(vote, {detection.class_id, 0.0});
  vote->second += detection.score;
  const auto best = std::max_element(entry.class_votes.begin(), entry.class_votes.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
  if (best->first == detection.class_id) {
    t.class_id = detection.class_id;
    t.label = detection.label;
  }
  if (t.state == TrackState::kLost) t.state = TrackState::kConfirmed;
  if (t.state == TrackState::kTentative && t.hits >= options_.min_hits) {
    t.state = TrackState::kConfirmed;
    t.id = next_id_++;
  }
}

void Tracker::start_tracks(const std::vector<int>& det_ids, const std::vector<Detection>& detections) {
  for (int i : det_ids) {
    const Detection& d = detections[i];
    if (d.score < options_.new_track_threshold) continue;
    Entry e;
    e.estimate = filter_.initiate(KalmanFilter::to_measurement(d.box));
    Track& t = e.track;
    t.class_id = d.class_id;
    t.label = d.label;
    t.box = KalmanFilter::to_box(e.estimate.mean);
    t.detection = d.box;
    t.score = d.score;
    t.scores = {d.score};
    t.start_frame = frame_;
    t.age = 1;
    t.hits = 1;
    e.class_votes = {{d.class_id, d.score}};
    // ByteTrack confirms every track of the first frame at once: there is no earlier frame to have missed
    // them in, and a stream should not start with a blind frame.
    if (frame_ == 1 || options_.min_hits <= 1) {
      t.state = TrackState::kConfirmed;
      t.id = next_id_++;
    }
    entries_.push_back(std::move(e));
  }
}

void Tracker::remove_duplicates() {
  // A track that was lost and a new one started on the same object: keep whichever has lived longer.
  for (Entry& a : entries_) {
    if (a.track.state != TrackState::kConfirmed) continue;
    for (Entry& b : entries_) {
      if (b.track.state != TrackState::kLost) continue;
      if (iou(a.track.box, b.track.box) <= options_.duplicate_iou) continue;
      (a.track.age > b.track.age ? b : a).track.state = TrackState::kRemoved;
      if (a.track.state == TrackState::kRemoved) break;
    }
  }
}

std::vector<Track> Tracker::collect_output() {
  std::vector<Track> out;
  for (const Entry& e : entries_)
    if (e.track.id != 0) out.push_back(e.track);
  std::erase_if(entries_, [](const Entry& e) { return e.track.state == TrackState::kRemoved; });
  std::sort(out.begin(), out.end(), [](const Track& a, const Track& b) { return a.id < b.id; });
  return out;
}

std::vector<Track> Tracker::tracks() const {
  std::vector<Track> out;
  for (const Entry& e : entries_) out.push_back(e.track);
  return out;
}

}  // namespace vigil::video
