#include "vigil/video/rules.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests_util.h"
#include "vigil/core/error.h"

namespace vigil::video {
namespace {

// A box of size w x h standing at (x, y): its bottom centre, the point zones are tested at.
Box standing_at(float x, float y, float w = 40, float h = 100) {
  return {x - w / 2, y - h, x + w / 2, y};
}

Track track(int64_t id, const Box& box, float score = 0.9f, const std::string& label = "gun") {
  Track t;
  t.id = id;
  t.label = label;
  t.class_id = label == "gun" ? 2 : 1;
  t.state = TrackState::kConfirmed;
  t.box = t.detection = box;
  t.score = score;
  return t;
}

Track unseen(Track t) {
  t.state = TrackState::kLost;
  t.time_since_update = 1;
  return t;
}

// The brief's shop camera: a counter zone over the bottom of a 640x480 frame, for guns only.
CameraRules shop() {
  CameraRules rules;
  rules.name = "shop";
  rules.objects.track = {"person", "gun"};
  rules.objects.filters["gun"] = {0.5, 0.7};
  ZoneConfig counter;
  counter.name = "counter";
  counter.coordinates = {{0, 300}, {640, 300}, {640, 480}, {0, 480}};
  counter.inertia = 3;
  counter.objects = {"gun"};
  rules.zones = {counter};
  return rules;
}

// Feeds one track per frame (frame i at time i * dt) and returns every record.
std::vector<EventRecord> run(RuleEngine& engine, const std::vector<Track>& frames, double dt = 1.0,
                             int64_t first = 0) {
  std::vector<EventRecord> out;
  for (size_t i = 0; i < frames.size(); ++i) {
    const int64_t index = first + static_cast<int64_t>(i);
    for (auto& r : engine.update({index, index * dt}, {frames[i]})) out.push_back(std::move(r));
  }
  return out;
}

std::vector<EventRecord> of_kind(const std::vector<EventRecord>& records, EventKind kind) {
  std::vector<EventRecord> out;
  for (const auto& r : records)
    if (r.kind == kind) out.push_back(r);
  return out;
}

TEST(Zones, PointInPolygonCountsEdgesAndHandlesConcaveShapes) {
  // An L shape: the notch at the top right is outside.
  const std::vector<Point> l{{0, 0}, {100, 0}, {100, 50}, {50, 50}, {50, 100}, {0, 100}};
  EXPECT_TRUE(point_in_polygon({25, 75}, l));
  EXPECT_TRUE(point_in_polygon({75, 25}, l));
  EXPECT_FALSE(point_in_polygon({75, 75}, l));
  EXPECT_TRUE(point_in_polygon({100, 25}, l));  // on an edge
  EXPECT_TRUE(point_in_polygon({50, 50}, l));   // on the inner vertex
  EXPECT_FALSE(point_in_polygon({101, 25}, l));
  EXPECT_FALSE(point_in_polygon({-1, 0}, l));  // on the ray through a vertex, outside
  EXPECT_FALSE(point_in_polygon({5, 5}, {{0, 0}, {10, 10}}));
}

TEST(Rules, ZoneEntryIsTestedAtTheBottomCentreOfTheBox) {
  CameraRules rules = shop();
  rules.zones[0].coordinates = {{100, 200}, {500, 200}, {500, 300}, {100, 300}};  // a band across the middle
  RuleEngine top_inside(rules);
  // Top edge (y = 250) inside the band, feet (y = 350) below it: not in the zone.
  const auto none = run(top_inside, std::vector<Track>(10, track(1, {280, 250, 320, 350})));
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(top_inside.statuses().at(0).zones.empty());
  RuleEngine feet_inside(rules);
  // Top (y = 150) above the band, feet (y = 280) in it: in the zone from the third frame (inertia 3).
  const auto some = run(feet_inside, std::vector<Track>(10, track(1, {280, 150, 320, 280})));
  ASSERT_EQ(some.size(), 1u);
  EXPECT_EQ(some[0].kind, EventKind::kStart);
  EXPECT_EQ(some[0].event.start.index, 2);
  EXPECT_EQ(some[0].event.zones, std::vector<std::string>{"counter"});
}

TEST(Rules, InertiaNeedsConsecutiveFramesInside) {
  const Track in = track(1, standing_at(320, 400)), out = track(1, standing_at(320, 200));
  RuleEngine engine(shop());  // inertia 3
  // Twice in, out, twice in, out...: never three in a row, never an entry.
  std::vector<Track> frames;
  for (int k = 0; k < 5; ++k) frames.insert(frames.end(), {in, in, out});
  EXPECT_TRUE(run(engine, frames).empty());
  // Then three in a row: the entry is on the third.
  const auto records = run(engine, {in, in, in}, 1.0, 15);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].kind, EventKind::kStart);
  EXPECT_EQ(records[0].event.start.index, 17);
}

TEST(Rules, LoiteringAlertsOnlyAfterTheTimeInTheZone) {
  CameraRules rules = shop();
  rules.zones[0].inertia = 1;
  rules.zones[0].loitering_time = 5;
  const Track in = track(1, standing_at(320, 400)), out = track(1, standing_at(320, 200));
  RuleEngine engine(rules);
  // 2 frames a second. In for 4.5 s (t = 0 .. 4.5), out, back: the clock restarts at t = 5.5.
  std::vector<Track> frames(10, in);
  frames.push_back(out);
  frames.insert(frames.end(), 20, in);
  const auto records = run(engine, frames, 0.5);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].kind, EventKind::kStart);
  EXPECT_DOUBLE_EQ(records[0].event.start.time, 5.5 + 5.0);
}

TEST(Rules, CooldownHoldsBackASecondAlertOfTheSameTrack) {
  CameraRules rules = shop();
  rules.zones[0].inertia = 1;
  rules.alerts.cooldown = 10;
  const Track in = track(1, standing_at(320, 400)), out = track(1, standing_at(320, 200));
  RuleEngine engine(rules);
  // In at t = 0-1, out at t = 2-3, back in from t = 4 on.
  std::vector<Track> frames{in, in, out, out};
  frames.insert(frames.end(), 10, in);
  const auto records = run(engine, frames);
  const auto starts = of_kind(records, EventKind::kStart);
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_DOUBLE_EQ(starts[0].event.start.time, 0);
  EXPECT_DOUBLE_EQ(starts[1].event.start.time, 10);  // back at t = 4, but held back until 0 + 10
  const auto ends = of_kind(records, EventKind::kEnd);
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0].event.end_reason, EndReason::kLeftZones);
  EXPECT_DOUBLE_EQ(*ends[0].event.end_time, 2);
  // The cooldown is per track: another track entering meanwhile alerts at once.
  RuleEngine two(rules);
  two.update({0, 0}, {track(1, standing_at(320, 400))});
  two.update({1, 1}, {track(1, standing_at(320, 200))});
  const auto other = two.update({2, 2}, {track(1, standing_at(320, 200)), track(2, standing_at(100, 400))});
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].kind, EventKind::kStart);
  EXPECT_EQ(other[0].event.track_id, 2);
}

TEST(Rules, MedianThresholdIgnoresOneHighScoreButNotASustainedRun) {
  CameraRules rules = shop();
  rules.zones[0].inertia = 1;
  RuleEngine engine(rules);  // gun: threshold 0.7 on the median of the last 10 scores
  std::vector<Track> frames;
  for (int i = 0; i < 20; ++i) frames.push_back(track(1, standing_at(320, 400), i == 2 ? 0.95f : 0.55f));
  EXPECT_TRUE(run(engine, frames).empty());
  EXPECT_FALSE(engine.statuses().at(0).true_object);
  // A run of 0.9: with 10 scores the median is the mean of the 5th and 6th, so the 5th high score makes it
  // (0.55 + 0.9) / 2 = 0.725.
  frames.assign(10, track(1, standing_at(320, 400), 0.9f));
  const auto records = run(engine, frames, 1.0, 20);
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records[0].kind, EventKind::kStart);
  EXPECT_EQ(records[0].event.start.index, 24);
  // Once a true object, always one: weak frames afterwards do not make it false again.
  run(engine, std::vector<Track>(10, track(1, standing_at(320, 400), 0.55f)), 1.0, 30);
  EXPECT_TRUE(engine.statuses().at(0).true_object);
}

TEST(Rules, MinScoreDropsWeakDetectionsBeforeAnyRule) {
  CameraRules rules = shop();
  rules.zones[0].inertia = 1;
  rules.objects.filters["gun"] = {0.5, 0.4};
  RuleEngine strict(rules);
  // 0.45 would pass the 0.4 median threshold, but each detection is under min_score 0.5: ignored.
  EXPECT_TRUE(run(strict, std::vector<Track>(15, track(1, standing_at(320, 400), 0.45f))).empty());
  EXPECT_FALSE(strict.statuses().at(0).seen);
  EXPECT_FLOAT_EQ(strict.statuses().at(0).computed_score, 0.0f);
  rules.objects.filters["gun"].min_score = 0.4;
  RuleEngine lenient(rules);
  const auto records = run(lenient, std::vector<Track>(15, track(1, standing_at(320, 400), 0.45f)));
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].kind, EventKind::kStart);
  // Labels not in objects.track are ignored altogether.
  RuleEngine engine(shop());
  EXPECT_TRUE(run(engine, std::vector<Track>(10, track(1, standing_at(320, 400), 0.99f, "car"))).empty());
  EXPECT_TRUE(engine.statuses().empty());
}

TEST(Rules, StationaryObjectStopsRaisingAlerts) {
  CameraRules rules = shop();
  rules.zones[0].inertia = 1;
  rules.alerts.cooldown = 0;
  rules.alerts.stationary = {0.95, 10, true};
  RuleEngine engine(rules);
  std::vector<Track> frames;
  for (int i = 0; i < 3; ++i) frames.push_back(track(1, standing_at(100.0f + 20 * i, 400)));   // walks in
  frames.insert(frames.end(), 30, track(1, standing_at(140, 400)));                            // stands
  for (int i = 1; i <= 3; ++i) frames.push_back(track(1, standing_at(140.0f + 20 * i, 400)));  // moves on
  const auto records = run(engine, frames);
  const auto starts = of_kind(records, EventKind::kStart);
  const auto ends = of_kind(records, EventKind::kEnd);
  ASSERT_EQ(starts.size(), 2u);
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_DOUBLE_EQ(starts[0].event.start.time, 0);
  // At rest from t = 2: stationary at t = 12, which ends the event; no alert while it stands (t = 12 .. 32)
  // although the cooldown is 0; moving again at t = 33 starts a new one.
  EXPECT_EQ(ends[0].event.end_reason, EndReason::kStationary);
  EXPECT_DOUBLE_EQ(*ends[0].event.end_time, 12);
  EXPECT_DOUBLE_EQ(starts[1].event.start.time, 33);

  // With end_event off the first event stays open through the rest, and there is still no second start.
  rules.alerts.stationary.end_event = false;
  RuleEngine keep(rules);
  const auto kept = run(keep, frames);
  EXPECT_EQ(of_kind(kept, EventKind::kStart).size(), 1u);
  EXPECT_TRUE(of_kind(kept, EventKind::kEnd).empty());
  ASSERT_EQ(keep.open_events().size(), 1u);
  EXPECT_FALSE(keep.open_events()[0].stationary);  // it moved again at the end
}

TEST(Rules, AnObjectThatParksBeforeItQualifiesNeverAlerts) {
  CameraRules rules = shop();
  rules.zones[0].inertia = 1;
  rules.zones[0].loitering_time = 20;
  rules.alerts.stationary = {0.95, 10, true};
  // Parked in a loitering zone: stationary after 10 s, loitering after 20 s: no alert.
  RuleEngine parked(rules);
  EXPECT_TRUE(run(parked, std::vector<Track>(40, track(1, standing_at(320, 400)))).empty());
  EXPECT_TRUE(parked.statuses().at(0).stationary);
  // Pacing 30 px back and forth in the same zone loiters too and is never at rest: alerts at t = 20.
  RuleEngine pacing(rules);
  std::vector<Track> frames;
  for (int i = 0; i < 40; ++i) frames.push_back(track(1, standing_at(i % 2 ? 350.0f : 320.0f, 400)));
  const auto records = run(pacing, frames);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_DOUBLE_EQ(records[0].event.start.time, 20);
}

TEST(Rules, EventRecordsComeAsStartUpdatesEnd) {
  CameraRules rules = shop();
  rules.zones[0].inertia = 2;
  ZoneConfig door;
  door.name = "door";
  door.coordinates = {{500, 350}, {640, 350}, {640, 480}, {500, 480}};
  door.inertia = 2;
  rules.zones.push_back(door);
  rules.alerts.update_interval = 5;
  RuleEngine engine(rules);
  std::vector<Track> frames;
  for (int i = 0; i < 4; ++i) frames.push_back(track(1, standing_at(300, 400), 0.8f));   // counter
  frames.push_back(unseen(track(1, standing_at(300, 400), 0.8f)));                       // one miss
  for (int i = 0; i < 3; ++i) frames.push_back(track(1, standing_at(560, 400), 0.95f));  // counter+door
  for (int i = 0; i < 6; ++i) frames.push_back(track(1, standing_at(300, 400), 0.8f));   // back
  frames.push_back(track(1, standing_at(300, 100), 0.8f));                               // a jitter out
  for (int i = 0; i < 2; ++i) frames.push_back(track(1, standing_at(300, 400), 0.8f));   // in again
  for (int i = 0; i < 2; ++i) frames.push_back(track(1, standing_at(300, 100), 0.8f));   // out
  const auto records = run(engine, frames);
  ASSERT_GE(records.size(), 3u);
  EXPECT_EQ(records.front().kind, EventKind::kStart);
  EXPECT_EQ(records.back().kind, EventKind::kEnd);
  int updates = 0;
  for (size_t i = 1; i + 1 < records.size(); ++i) {
    EXPECT_EQ(records[i].kind, EventKind::kUpdate) << i;
    EXPECT_EQ(records[i].event.updates, ++updates);
    EXPECT_EQ(records[i].event.id, records.front().event.id);
  }
  EXPECT_GE(updates, 2);  // entering the door, leaving it, and the 5 s interval
  const Event& end = records.back().event;
  EXPECT_EQ(end.id, "shop-1000-1");  // <camera>-<start ms>-<track>: inertia 2 puts the start at t = 1
  EXPECT_EQ(end.updates, updates);
  EXPECT_EQ(end.zones, (std::vector<std::string>{"counter", "door"}));
  EXPECT_EQ(end.end_reason, EndReason::kLeftZones);
  // One frame out (frame 14) did not end it: leaving takes as many frames outside as entering took inside
  // (inertia 2), so the end comes at frame 18 and is dated to the first frame outside.
  EXPECT_DOUBLE_EQ(*end.end_time, 17);
  EXPECT_EQ(end.last.index, 18);
  EXPECT_FLOAT_EQ(end.best.score, 0.95f);
  EXPECT_EQ(end.best.frame.index, 5);
  EXPECT_EQ(end.boxes.size(), 18u);  // every seen frame of the track, from its first (frame 4 was unseen)
  EXPECT_TRUE(engine.open_events().empty());
}

TEST(Rules, AnEventEndsWhenItsTrackEndsAtTheLastSighting) {
  RuleEngine engine(shop());
  run(engine, std::vector<Track>(5, track(7, standing_at(320, 400))));
  engine.update({5, 5}, {unseen(track(7, standing_at(320, 400)))});
  engine.update({6, 6}, {unseen(track(7, standing_at(320, 400)))});
  ASSERT_EQ(engine.open_events().size(), 1u);
  const auto records = engine.update({7, 7}, {});
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].kind, EventKind::kEnd);
  EXPECT_EQ(records[0].event.end_reason, EndReason::kTrackEnded);
  EXPECT_DOUBLE_EQ(*records[0].event.end_time, 4);
  EXPECT_TRUE(engine.statuses().empty());
  // finish() closes what is open.
  run(engine, std::vector<Track>(5, track(8, standing_at(320, 400))), 1.0, 10);
  const auto stopped = engine.finish({20, 20});
  ASSERT_EQ(stopped.size(), 1u);
  EXPECT_EQ(stopped[0].event.end_reason, EndReason::kStopped);
}

TEST(Rules, WithoutZonesAnyTrueObjectAlerts) {
  CameraRules rules = shop();
  rules.zones.clear();
  RuleEngine engine(rules);
  const auto records = run(engine, {track(1, standing_at(50, 50)), track(1, standing_at(600, 100))});
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].event.start.index, 0);
  EXPECT_TRUE(records[0].event.zones.empty());
}

TEST(Rules, FrameTimesMustNotGoBack) {
  RuleEngine engine(shop());
  engine.update({0, 10}, {});
  EXPECT_THROW(engine.update({1, 9}, {}), InvalidArgument);
}

// The message of the InvalidArgument a camera section throws, or "" when it parses.
std::string error_of(const std::string& camera_yaml) {
  try {
    parse_cameras(YAML::Load("cameras:\n  shop:\n" + camera_yaml));
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

TEST(CameraRules, ParsesTheExampleSection) {
  const auto cameras = parse_cameras(YAML::Load(R"(
cameras:
  shop:
    source: rtsp://cam/stream   # owned by the capture config, left alone here
    objects: {track: [person, gun], filters: {gun: {min_score: 0.5, threshold: 0.7}}}
    zones:
      counter: {coordinates: [[0,300],[640,300],[640,480],[0,480]], inertia: 3, loitering_time: 0, objects: [gun]}
    alerts: {cooldown: 30, stationary: {threshold_iou: 0.95, seconds: 60}}
  door: {}
)"));
  ASSERT_EQ(cameras.size(), 2u);
  const CameraRules& shop = cameras[0];
  EXPECT_EQ(shop.name, "shop");
  EXPECT_EQ(shop.objects.track, (std::vector<std::string>{"person", "gun"}));
  EXPECT_DOUBLE_EQ(shop.objects.filter_for("gun").min_score, 0.5);
  EXPECT_DOUBLE_EQ(shop.objects.filter_for("person").threshold, 0.7);  // Frigate's default
  ASSERT_EQ(shop.zones.size(), 1u);
  EXPECT_EQ(shop.zones[0].name, "counter");
  ASSERT_EQ(shop.zones[0].coordinates.size(), 4u);
  EXPECT_DOUBLE_EQ(shop.zones[0].coordinates[1].x, 640);
  EXPECT_DOUBLE_EQ(shop.zones[0].coordinates[1].y, 300);
  EXPECT_EQ(shop.zones[0].objects, std::vector<std::string>{"gun"});
  EXPECT_DOUBLE_EQ(shop.alerts.cooldown, 30);
  EXPECT_DOUBLE_EQ(shop.alerts.stationary.seconds, 60);
  EXPECT_EQ(cameras[1].name, "door");
  EXPECT_TRUE(cameras[1].objects.track.empty());
}

TEST(CameraRules, BadFieldsAreNamedByCameraZoneAndField) {
  struct Case {
    const char* yaml;
    std::vector<const char*> expected;  // substrings of the message
  };
  const std::vector<Case> cases{
      {"    zones: {counter: {coordinates: [[0,300],[640,300]]}}",
       {"cameras.shop.zones.counter.coordinates", "at least 3", "got 2"}},
      {"    zones: {counter: {coordinates: [[0,300],[640,300],[640,480]], inertia: x}}",
       {"cameras.shop.zones.counter.inertia", "an integer", "'x'"}},
      {"    zones: {counter: {coordinates: [[0,300],[640,300],[640,480]], inertai: 3}}",
       {"cameras.shop.zones.counter.inertai", "did you mean 'cameras.shop.zones.counter.inertia'"}},
      {"    zones: {counter: {coordinates: [[0,300],[640,300,1],[640,480]]}}",
       {"cameras.shop.zones.counter.coordinates", "[x, y] point"}},
      {"    zones: {counter: {coordinates: [[0,300],[-640,300],[640,480]]}}",
       {"cameras.shop.zones.counter.coordinates", ">= 0", "point 1"}},
      {"    zones: {counter: {coordinates: [[0,0.5],[1,0.5],[1,1]]}}",
       {"cameras.shop.zones.counter.coordinates", "pixel"}},
      {"    zones: {counter: {coordinates: [[0,0],[100,100],[200,200]]}}",
       {"cameras.shop.zones.counter.coordinates", "area"}},
      {"    zones: {counter: {coordinates: [[0,300],[640,300],[640,480]], inertia: 0}}",
       {"cameras.shop.zones.counter.inertia", "at least 1"}},
      {"    objects: {track: [gun]}\n    zones: {counter: {coordinates: [[0,300],[640,300],[640,480]], "
       "objects: [knife]}}",
       {"cameras.shop.zones.counter.objects", "knife"}},
      {"    objects: {track: [gun], filters: {gnu: {min_score: 0.5}}}", {"cameras.shop.objects.filters.gnu"}},
      {"    objects: {filters: {gun: {min_score: 1.5}}}", {"cameras.shop.objects.filters.gun.min_score"}},
      {"    objects: {track: gun}", {"cameras.shop.objects.track", "a list of labels"}},
      {"    alerts: {cooldown: -1}", {"cameras.shop.alerts.cooldown", "got -1"}},
      {"    alerts: {stationary: {threshold_iou: 2}}", {"cameras.shop.alerts.stationary.threshold_iou"}},
      {"    alerts: {stationary: {second: 5}}", {"did you mean 'cameras.shop.alerts.stationary.seconds'"}},
  };
  for (const Case& c : cases) {
    const std::string message = error_of(c.yaml);
    ASSERT_FALSE(message.empty()) << "accepted:\n" << c.yaml;
    for (const char* part : c.expected)
      EXPECT_NE(message.find(part), std::string::npos) << "message: " << message << "\nmissing: " << part;
  }
  EXPECT_EQ(error_of("    zones: {counter: {coordinates: [[0,300],[640,300],[640,480]]}}"), "");
  // A bad camera name is named too (it ends up in URLs and ids).
  try {
    parse_cameras(YAML::Load("cameras:\n  'front door': {}\n"));
    FAIL() << "accepted a camera name with a space";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'front door'"), std::string::npos) << e.what();
  }
}

TEST(CameraRules, LoadsAFileAndNamesItsSyntaxErrors) {
  testing::TempDir dir;
  testing::write_text(
      dir / "cameras.yaml",
      "cameras:\n  shop:\n    zones: {counter: {coordinates: [[0,300],[640,300],[640,480]]}}\n");
  EXPECT_EQ(load_cameras(dir / "cameras.yaml").at(0).zones.at(0).name, "counter");
  testing::write_text(dir / "bad.yaml", "cameras:\n  shop: {zones: [\n");
  try {
    load_cameras(dir / "bad.yaml");
    FAIL() << "accepted broken YAML";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("bad.yaml:"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vigil::video
