#pragma once
/// Multi-object tracking by detection, ByteTrack-style: a Kalman motion model per track and IoU association
/// in two stages, first the confident detections against every track (tracked and lost), then the weak
/// ones against the tracks still unmatched, so a partly hidden object whose score dips keeps its track.
/// One object -> one track with a stable id; the alert rules (rules.h) work on tracks, not on boxes.

#include <cstdint>
#include <string>
#include <vector>

#include "vigil/video/geometry.h"
#include "vigil/video/kalman_filter.h"

namespace vigil::video {

/// One detector output for one frame, in the frame's pixels.
struct Detection {
  Box box;
  float score = 0;
  int64_t class_id = 0;
  std::string label;
};

/// Where a track is in its life.
enum class TrackState {
  kTentative,  ///< seen, not yet min_hits times in a row; no id yet, not reported
  kConfirmed,  ///< matched in this frame or recently enough
  kLost,       ///< unmatched for 1..max_lost frames; may resume with the same id
  kRemoved,    ///< gone for good (reported once, in the frame it was removed)
};

/// "tentative", "confirmed", "lost" or "removed".
const char* to_string(TrackState state);

/// What the tracker knows about one object.
struct Track {
  int64_t id = 0;  ///< stable and never reused within a Tracker; 0 while tentative
  int64_t class_id = 0;
  std::string label;
  TrackState state = TrackState::kTentative;
  Box box;                    ///< Kalman-filtered box (the prediction when unmatched in this frame)
  Box detection;              ///< the last detection matched to the track
  float score = 0;            ///< that detection's score
  std::vector<float> scores;  ///< matched detections' scores, oldest first, at most score_history of them
  int64_t start_frame = 0;    ///< tracker frame number (1-based) of the first detection
  int age = 0;                ///< frames since the track started (1 in its first frame)
  int hits = 0;               ///< frames with a matched detection
  int time_since_update = 0;  ///< frames since the last match (0: matched in this frame)

  bool matched() const { return time_since_update == 0; }
};

/// How a Tracker associates. Defaults are ByteTrack's MOT17 settings (track_thresh 0.5, match_thresh 0.8,
/// track_buffer 30 at 30 fps), with matching restricted to one class.
struct TrackerOptions {
  double high_threshold = 0.5;       ///< detections at or above it go to the first stage
  double low_threshold = 0.1;        ///< detections in [low, high) go to the second stage; below: dropped
  double new_track_threshold = 0.6;  ///< an unmatched high detection starts a track only from this score
  double match_iou = 0.2;            ///< first stage: IoU (times the score with fuse_score) needed
  double low_match_iou = 0.5;        ///< second stage: IoU needed by a weak detection
  double tentative_match_iou = 0.3;  ///< a tentative track's second detection
  bool fuse_score = true;            ///< first stage cost 1 - IoU * score (prefers confident boxes)
  int min_hits = 2;                  ///< matches before a track is confirmed (all tracks of frame 1 at once)
  int max_lost = 30;                 ///< frames a lost track is kept for before it is removed
  bool class_aware = true;           ///< only match a detection to a track of the same class_id
  int score_history = 30;            ///< scores kept per track
  double duplicate_iou = 0.85;       ///< a tracked and a lost track overlapping more: the younger goes
  double std_weight_position = 1.0 / 20;   ///< Kalman position noise per pixel of box height
  double std_weight_velocity = 1.0 / 160;  ///< Kalman velocity noise per pixel of box height

  template <class V>
  void visit(V& v) {
    v("high_threshold", high_threshold, "detections scoring at least this are matched first");
    v("low_threshold", low_threshold, "weaker detections down to this only extend existing tracks");
    v("new_track_threshold", new_track_threshold, "score an unmatched detection needs to start a track");
    v("match_iou", match_iou, "first-stage IoU (times the score with fuse_score) needed to match");
    v("low_match_iou", low_match_iou, "IoU a weak detection needs to extend a track");
    v("tentative_match_iou", tentative_match_iou, "IoU a new track's next detection needs");
    v("fuse_score", fuse_score, "weigh first-stage IoU by the detection score");
    v("min_hits", min_hits, "matched frames before a track is confirmed and gets an id");
    v("max_lost", max_lost, "frames an unmatched track is kept before it is removed");
    v("class_aware", class_aware, "match detections only to tracks of the same class");
    v("score_history", score_history, "detection scores kept per track");
    v("duplicate_iou", duplicate_iou, "IoU above which a tracked and a lost track are one object");
    v("std_weight_position", std_weight_position, "Kalman position noise per pixel of box height");
    v("std_weight_velocity", std_weight_velocity, "Kalman velocity noise per pixel of box height");
  }
  /// Throws InvalidArgument naming the field.
  void validate() const;
};

/// Tracks the objects of one camera. Not thread-safe: one thread feeds it frames in order.
class Tracker {
 public:
  /// Throws InvalidArgument on bad options.
  explicit Tracker(TrackerOptions options = {});

  /// Advances one frame with its detections (boxes must be valid(): finite, positive size). Returns, by
  /// ascending id, every confirmed track (matched in this frame, or lost: time_since_update says which)
  /// and, once, each confirmed track removed in this frame (state kRemoved).
  std::vector<Track> update(const std::vector<Detection>& detections);

  /// Every live track, tentative ones included (id 0), after the last update().
  std::vector<Track> tracks() const;
  /// Frames processed so far.
  int64_t frame() const { return frame_; }
  const TrackerOptions& options() const { return options_; }

 private:
  struct Entry {
    Track track;
    KalmanFilter::Estimate estimate;
    std::vector<std::pair<int64_t, double>> class_votes;  ///< class_id -> summed score (class-agnostic mode)
  };
  struct Split {
    std::vector<int> high, low;  ///< indices into the frame's detections
  };

  Split split(const std::vector<Detection>& detections) const;
  void predict_all();
  /// Matches entries_[tracks[i]] to detections[dets[j]], applies the matches, and leaves only the
  /// unmatched indices in both lists.
  void associate(std::vector<int>& tracks, std::vector<int>& dets, const std::vector<Detection>& detections,
                 double min_iou, bool fuse);
  void apply(Entry& entry, const Detection& detection);
  void start_tracks(const std::vector<int>& det_ids, const std::vector<Detection>& detections);
  void remove_duplicates();
  std::vector<Track> collect_output();

  TrackerOptions options_;
  KalmanFilter filter_;
  std::vector<Entry> entries_;  ///< live tracks, and removed ones until the end of the frame
  int64_t frame_ = 0;
  int64_t next_id_ = 1;
};

}  // namespace vigil::video
