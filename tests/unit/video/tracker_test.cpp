#include "vigil/video/tracker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "vigil/core/error.h"
#include "vigil/video/assignment.h"
#include "vigil/video/kalman_filter.h"

namespace vigil::video {
namespace {

// A detection centred at (cx, cy).
Detection det(float cx, float cy, float w, float h, float score = 0.9f, int64_t class_id = 1) {
  return {
      {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2}, score, class_id, class_id == 1 ? "person" : "gun"};
}

bool same_box(const Box& a, const Box& b) {
  return a.x1 == b.x1 && a.y1 == b.y1 && a.x2 == b.x2 && a.y2 == b.y2;
}

// The id of the output track matched to this detection in this frame, or 0.
int64_t id_of(const std::vector<Track>& tracks, const Detection& d) {
  for (const Track& t : tracks)
    if (t.matched() && same_box(t.detection, d.box)) return t.id;
  return 0;
}

const Track* find_id(const std::vector<Track>& tracks, int64_t id) {
  for (const Track& t : tracks)
    if (t.id == id) return &t;
  return nullptr;
}

TEST(Tracker, CrossingObjectsKeepTheirIds) {
  // Two people of one class walk through each other; without the motion model the stale boxes would be
  // matched to the wrong person at the crossing (IoU with the other's box is then the higher one).
  Tracker tracker;
  int64_t id_a = 0, id_b = 0;
  for (int f = 0; f < 50; ++f) {
    const Detection a = det(50.0f + 8 * f, 200, 40, 100);
    const Detection b = det(450.0f - 8 * f, 215, 40, 100);
    const auto tracks = tracker.update({a, b});
    const int64_t ia = id_of(tracks, a), ib = id_of(tracks, b);
    ASSERT_NE(ia, 0) << "frame " << f;
    ASSERT_NE(ib, 0) << "frame " << f;
    if (f == 0) {
      id_a = ia;
      id_b = ib;
      EXPECT_NE(id_a, id_b);
    }
    EXPECT_EQ(ia, id_a) << "frame " << f;
    EXPECT_EQ(ib, id_b) << "frame " << f;
  }
}

TEST(Tracker, HiddenObjectResumesItsIdAndItsPredictionKeepsMoving) {
  Tracker tracker;  // max_lost 30
  int64_t id = 0;
  float x_at_last_sighting = 0;
  for (int f = 0; f < 30; ++f) {
    const bool hidden = f >= 10 && f < 15;
    const Detection d = det(100.0f + 6 * f, 200, 40, 100);
    const auto tracks = tracker.update(hidden ? std::vector<Detection>{} : std::vector<Detection>{d});
    ASSERT_EQ(tracks.size(), 1u) << "frame " << f;
    const Track& t = tracks[0];
    if (f == 0) id = t.id;
    EXPECT_EQ(t.id, id) << "frame " << f;
    if (f == 9) x_at_last_sighting = t.box.x1;
    if (hidden) {
      EXPECT_EQ(t.state, TrackState::kLost) << "frame " << f;
      EXPECT_EQ(t.time_since_update, f - 9);
      // The prediction follows the motion (30 px in 5 frames, the velocity estimate still settling), so the
      // reappearing box still overlaps it.
      EXPECT_NEAR(t.box.x1 - x_at_last_sighting, 6.0f * (f - 9), 4.0f) << "frame " << f;
    } else {
      EXPECT_EQ(t.state, TrackState::kConfirmed) << "frame " << f;
      EXPECT_TRUE(t.matched());
    }
  }
}

// Scores 0.9 for frames 0-4, 0.3 (a partly hidden object) for frames 5-19, 0.9 again afterwards.
std::vector<int64_t> ids_through_a_weak_stretch(TrackerOptions options) {
  Tracker tracker(options);
  std::vector<int64_t> ids;
  for (int f = 0; f < 30; ++f) {
    const float score = f >= 5 && f < 20 ? 0.3f : 0.9f;
    const Detection d = det(100.0f + 4 * f, 200, 40, 100, score);
    const auto tracks = tracker.update({d});
    ids.push_back(id_of(tracks, d));
  }
  return ids;
}

TEST(Tracker, LowScoreDetectionsKeepATrackAliveInTheSecondStage) {
  TrackerOptions byte;
  byte.max_lost = 5;
  const auto ids = ids_through_a_weak_stretch(byte);
  for (size_t f = 0; f < ids.size(); ++f) EXPECT_EQ(ids[f], ids[0]) << "frame " << f;
  EXPECT_NE(ids[0], 0);

  // The same detections through a tracker that only takes confident boxes (no second stage): the track is
  // lost at frame 5, removed after max_lost, and the object comes back under a new id.
  TrackerOptions high_only = byte;
  high_only.low_threshold = high_only.high_threshold;
  const auto ids2 = ids_through_a_weak_stretch(high_only);
  EXPECT_EQ(ids2[10], 0);  // the weak detection matched nothing
  EXPECT_NE(ids2[25], 0);
  EXPECT_NE(ids2[25], ids2[0]);
}

TEST(Tracker, IdsAreNeverReused) {
  // Object k is seen in frames [8k, 8k + 4), always at the same place; gaps of 4 frames exceed max_lost 2,
  // so each is a new track, and must get a new id even though its box is where the last one died.
  TrackerOptions options;
  options.max_lost = 2;
  Tracker tracker(options);
  std::vector<int64_t> ids;
  std::set<int64_t> removed;
  for (int f = 0; f < 80; ++f) {
    const bool visible = f % 8 < 4;
    const auto tracks =
        tracker.update(visible ? std::vector<Detection>{det(300, 200, 40, 100)} : std::vector<Detection>{});
    for (const Track& t : tracks) {
      EXPECT_EQ(removed.count(t.id), 0u) << "id " << t.id << " came back after removal, frame " << f;
      if (t.state == TrackState::kRemoved) removed.insert(t.id);
      if (ids.empty() || ids.back() != t.id) ids.push_back(t.id);
    }
  }
  ASSERT_EQ(ids.size(), 10u);
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_GT(ids[i], ids[i - 1]);
  EXPECT_EQ(removed.size(), 10u);
}

TEST(Tracker, JitteryDetectionsGiveASmootherBoxThanTheRawOnes) {
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.0f, 4.0f);
  Tracker tracker;
  double raw_error = 0, filtered_error = 0;
  int n = 0;
  for (int f = 0; f < 120; ++f) {
    const Box truth{100.0f + 3 * f, 150.0f + f, 160.0f + 3 * f, 270.0f + f};
    Detection d{{truth.x1 + noise(rng), truth.y1 + noise(rng), truth.x2 + noise(rng), truth.y2 + noise(rng)},
                0.9f,
                1,
                "person"};
    const auto tracks = tracker.update({d});
    ASSERT_EQ(tracks.size(), 1u);
    if (f < 20) continue;  // let the velocity estimate settle
    auto err = [&](const Box& b) {
      return std::abs(b.x1 - truth.x1) + std::abs(b.y1 - truth.y1) + std::abs(b.x2 - truth.x2) +
             std::abs(b.y2 - truth.y2);
    };
    raw_error += err(d.box);
    filtered_error += err(tracks[0].box);
    ++n;
  }
  raw_error /= n;
  filtered_error /= n;
  std::printf("mean corner error: raw %.2f px, filtered %.2f px\n", raw_error, filtered_error);
  EXPECT_LT(filtered_error, 0.8 * raw_error) << "raw " << raw_error << " filtered " << filtered_error;
}

TEST(Tracker, FirstFrameTracksAreConfirmedAtOnceLaterOnesAfterMinHits) {
  Tracker tracker;  // min_hits 2
  auto out = tracker.update({det(100, 200, 40, 100)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 1);
  out = tracker.update({det(100, 200, 40, 100), det(400, 200, 40, 100)});
  EXPECT_EQ(out.size(), 1u);  // the newcomer is tentative: not reported, no id yet
  ASSERT_EQ(tracker.tracks().size(), 2u);
  EXPECT_EQ(tracker.tracks()[1].state, TrackState::kTentative);
  EXPECT_EQ(tracker.tracks()[1].id, 0);
  out = tracker.update({det(100, 200, 40, 100), det(402, 200, 40, 100)});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].id, 2);
  EXPECT_EQ(out[1].hits, 2);
  // A tentative track missed once is dropped without ever taking an id.
  tracker.update({det(100, 200, 40, 100), det(250, 300, 40, 100)});
  out = tracker.update({det(100, 200, 40, 100)});
  EXPECT_EQ(tracker.tracks().size(), 2u);  // the person at 100 and the lost one at 402
  out = tracker.update({det(100, 200, 40, 100), det(600, 50, 40, 100)});
  out = tracker.update({det(100, 200, 40, 100), det(600, 50, 40, 100)});
  EXPECT_NE(find_id(out, 3), nullptr);  // the next confirmed track is 3: the dropped one took no id
}

TEST(Tracker, MatchesOnlyTheSameClassUnlessToldOtherwise) {
  auto run = [](bool class_aware) {
    TrackerOptions options;
    options.class_aware = class_aware;
    Tracker tracker(options);
    tracker.update({det(100, 200, 40, 100, 0.9f, 1)});
    return tracker.update({det(102, 200, 40, 100, 0.9f, 2)});
  };
  const auto aware = run(true);
  ASSERT_EQ(aware.size(), 1u);
  EXPECT_EQ(aware[0].state, TrackState::kLost);  // the class-2 box did not feed the class-1 track
  const auto agnostic = run(false);
  ASSERT_EQ(agnostic.size(), 1u);
  EXPECT_TRUE(agnostic[0].matched());
  EXPECT_EQ(agnostic[0].id, 1);
  EXPECT_EQ(agnostic[0].class_id, 1);  // one vote each, the first (earlier) class keeps the lead
}

TEST(Tracker, RejectsBadOptionsAndBoxesNamingTheField) {
  TrackerOptions options;
  options.low_threshold = 0.6;  // above high_threshold 0.5
  try {
    Tracker t(options);
    FAIL() << "accepted low_threshold above high_threshold";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("high_threshold"), std::string::npos) << e.what();
  }
  options = {};
  options.max_lost = -1;
  EXPECT_THROW(Tracker{options}, InvalidArgument);
  Tracker tracker;
  EXPECT_THROW(tracker.update({{{10, 10, 5, 20}, 0.9f, 1, "person"}}), InvalidArgument);
  EXPECT_THROW(tracker.update({{{0, 0, 10, 10}, std::nanf(""), 1, "person"}}), InvalidArgument);
}

TEST(KalmanFilter, LearnsAConstantVelocity) {
  KalmanFilter kf;
  auto e = kf.initiate({100, 200, 0.5, 100});
  for (int f = 1; f <= 30; ++f) {
    kf.predict(e);
    kf.update(e, {100.0 + 5 * f, 200.0 - 2 * f, 0.5, 100});
  }
  EXPECT_NEAR(e.mean[4], 5.0, 0.1);
  EXPECT_NEAR(e.mean[5], -2.0, 0.1);
  kf.predict(e);
  EXPECT_NEAR(e.mean[0], 100.0 + 5 * 31, 0.5);
  const Box b = KalmanFilter::to_box(e.mean);
  EXPECT_NEAR(b.width(), 50.0f, 0.1f);
  EXPECT_NEAR(b.height(), 100.0f, 0.1f);
}

// Every matching of rows to columns, each row possibly unmatched at limit / 2 (and each leftover column too).
double brute_force(const std::vector<double>& cost, int rows, int cols, double limit) {
  double best = std::numeric_limits<double>::infinity();
  std::vector<int> pick(rows, -1);
  std::function<void(int, std::vector<char>&, double)> go = [&](int r, std::vector<char>& used, double sum) {
    if (r == rows) {
      const int matched = static_cast<int>(std::count(used.begin(), used.end(), 1));
      best = std::min(best, sum + (cols - matched) * limit / 2);
      return;
    }
    go(r + 1, used, sum + limit / 2);
    for (int c = 0; c < cols; ++c) {
      const double x = cost[static_cast<size_t>(r) * cols + c];
      if (used[c] || !std::isfinite(x) || x > limit) continue;
      used[c] = 1;
      go(r + 1, used, sum + x);
      used[c] = 0;
    }
  };
  std::vector<char> used(cols, 0);
  go(0, used, 0);
  return best;
}

TEST(LinearAssignment, FindsTheOptimumWhereGreedyFails) {
  // Greedy takes (0,0) = 0.1 first and is left with (1,1) = 0.9; the optimum crosses for 0.35.
  const auto a = linear_assignment({0.1, 0.2, 0.15, 0.9}, 2, 2, 1.0);
  ASSERT_EQ(a.matches.size(), 2u);
  EXPECT_EQ(a.matches[0], std::make_pair(0, 1));
  EXPECT_EQ(a.matches[1], std::make_pair(1, 0));
  // A pair above the limit is never matched, forbidden ones neither.
  const double inf = std::numeric_limits<double>::infinity();
  const auto b = linear_assignment({0.9, inf, inf, 0.1}, 2, 2, 0.5);
  EXPECT_EQ(b.matches, (std::vector<std::pair<int, int>>{{1, 1}}));
  EXPECT_EQ(b.unmatched_rows, std::vector<int>{0});
  EXPECT_EQ(b.unmatched_cols, std::vector<int>{0});
  const auto empty = linear_assignment({}, 0, 3, 0.5);
  EXPECT_EQ(empty.unmatched_cols.size(), 3u);
}

TEST(LinearAssignment, MatchesBruteForceOnRandomMatrices) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(0, 1);
  for (int trial = 0; trial < 300; ++trial) {
    const int rows = 1 + trial % 5, cols = 1 + (trial / 5) % 5;
    const double limit = 0.3 + 0.7 * u(rng);
    std::vector<double> cost(static_cast<size_t>(rows) * cols);
    for (double& x : cost) x = u(rng) < 0.2 ? std::numeric_limits<double>::infinity() : u(rng);
    const Assignment a = linear_assignment(cost, rows, cols, limit);
    double total = (a.unmatched_rows.size() + a.unmatched_cols.size()) * limit / 2;
    for (const auto& [r, c] : a.matches) {
      const double x = cost[static_cast<size_t>(r) * cols + c];
      ASSERT_LE(x, limit);
      total += x;
    }
    EXPECT_EQ(a.matches.size() + a.unmatched_rows.size(), static_cast<size_t>(rows));
    EXPECT_EQ(a.matches.size() + a.unmatched_cols.size(), static_cast<size_t>(cols));
    EXPECT_NEAR(total, brute_force(cost, rows, cols, limit), 1e-9) << "trial " << trial;
  }
}

}  // namespace
}  // namespace vigil::video
