// Clips from frame folders (grouping by a file-name pattern, segments, windows, the refusals), from video
// files, and the clip-aware split. The accident data's expected counts come from
// tests/unit/data/accident_clip_counts.py, an independent Python re-count.

#include "vigil/data/clips.h"

#include <gtest/gtest.h>

#include <opencv2/videoio.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/data/formats.h"
#include "vigil/data/split.h"

namespace vigil::data {
namespace {

using ::vigil::testing::TempDir;

/// A classification dataset from (file, label, split folder) triples; classes "Accident", "Non Accident".
Dataset frames(const std::vector<std::tuple<std::string, int, std::string>>& files) {
  Dataset ds;
  ds.task = Task::kClassification;
  ds.classes = {"Accident", "Non Accident"};
  for (const auto& [file, label, split] : files) {
    Sample s;
    s.file = file;
    s.label = label;
    s.split = split;
    ds.samples.push_back(s);
  }
  return ds;
}

/// Frames `first`..`last` of clip `id`, named id_N.jpg under class folder `label`.
void add_run(Dataset& ds, const std::string& id, int first, int last, int label,
             const std::string& split = "") {
  for (int f = first; f <= last; ++f) {
    Sample s;
    s.file =
        (split.empty() ? "" : split + "/") + ds.classes[label] + "/" + id + "_" + std::to_string(f) + ".jpg";
    s.label = label;
    s.split = split;
    ds.samples.push_back(s);
  }
}

Dataset empty_classification() {
  return frames({});
}

std::vector<std::string> files_of(const Dataset& ds, const std::vector<int>& samples) {
  std::vector<std::string> out;
  for (int i : samples) out.push_back(ds.samples[i].file);
  return out;
}

/// The DataError message group_clips throws (fails the test when it does not throw one).
std::string refusal(const Dataset& ds, const ClipOptions& o) {
  try {
    group_clips(ds, o);
  } catch (const DataError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a DataError";
  return "";
}

TEST(ClipOptions, RefusesBadValues) {
  EXPECT_NO_THROW(ClipOptions().validate());
  auto bad = [](auto edit) {
    ClipOptions o;
    edit(o);
    EXPECT_THROW(o.validate(), InvalidArgument);
  };
  bad([](ClipOptions& o) { o.pattern = "(unclosed"; });
  bad([](ClipOptions& o) { o.pattern = R"(^(.+)_\d+$)"; });  // one group: no frame group
  bad([](ClipOptions& o) { o.frame_group = 1; });
  bad([](ClipOptions& o) { o.clip_group = 0; });
  bad([](ClipOptions& o) { o.clip_length = 0; });
  bad([](ClipOptions& o) { o.stride = -1; });
  bad([](ClipOptions& o) { o.short_segments = "keep"; });
  bad([](ClipOptions& o) { o.on_label_change = "ignore"; });
}

TEST(GroupClips, UnderscoreNamesAreClipThenFrameOrderedNumerically) {
  auto ds = frames({{"Accident/test10_10.jpg", 0, ""},
                    {"Accident/test10_2.jpg", 0, ""},
                    {"Accident/test1_5.jpg", 0, ""},
                    {"Accident/test10_1.jpg", 0, ""},
                    {"Accident/a_b_3.png", 0, ""}});
  ClipOptions o;
  o.clip_length = 2;
  const auto g = group_clips(ds, o);
  ASSERT_EQ(g.clips.size(), 3u);
  EXPECT_EQ(g.clips[0].id, "a_b");
  EXPECT_EQ(g.clips[1].id, "test1");
  EXPECT_EQ(g.clips[2].id, "test10");
  EXPECT_EQ(g.clips[2].frames, (std::vector<int64_t>{1, 2, 10}));
  EXPECT_EQ(
      files_of(ds, g.clips[2].samples),
      (std::vector<std::string>{"Accident/test10_1.jpg", "Accident/test10_2.jpg", "Accident/test10_10.jpg"}));
  EXPECT_EQ(g.clip_of, (std::vector<int>{2, 2, 1, 2, 0}));
}

TEST(GroupClips, ParenthesisedNamesGroupLikeUnderscoreNames) {
  auto ds = frames({{"Accident/acc1 (13).jpg", 0, ""},
                    {"Accident/acc1 (2).jpg", 0, ""},
                    {"Accident/acc1 (1).jpg", 0, ""}});
  ClipOptions o;
  o.clip_length = 3;
  const auto g = group_clips(ds, o);
  ASSERT_EQ(g.clips.size(), 1u);
  EXPECT_EQ(g.clips[0].id, "acc1");
  EXPECT_EQ(g.clips[0].frames, (std::vector<int64_t>{1, 2, 13}));
  ASSERT_EQ(g.windows.size(), 1u);
  EXPECT_EQ(
      files_of(ds, g.windows[0].samples),
      (std::vector<std::string>{"Accident/acc1 (1).jpg", "Accident/acc1 (2).jpg", "Accident/acc1 (13).jpg"}));
}

TEST(GroupClips, NumberedGroupsOfACustomPatternPickClipAndFrame) {
  auto ds = frames({{"x/f7_cam2.jpg", 0, ""}, {"x/f3_cam2.jpg", 0, ""}, {"x/f1_cam1.jpg", 0, ""}});
  ClipOptions o;
  o.pattern = R"(^f(\d+)_(\w+)$)";
  o.clip_group = 2;
  o.frame_group = 1;
  o.clip_length = 1;
  const auto g = group_clips(ds, o);
  ASSERT_EQ(g.clips.size(), 2u);
  EXPECT_EQ(g.clips[0].id, "cam1");
  EXPECT_EQ(g.clips[1].id, "cam2");
  EXPECT_EQ(g.clips[1].frames, (std::vector<int64_t>{3, 7}));
}

TEST(GroupClips, SplitFoldersJoinOneClipUnlessAskedToSeparate) {
  Dataset ds = empty_classification();
  add_run(ds, "test4", 1, 3, 1, "train");
  add_run(ds, "test4", 4, 5, 1, "val");
  ClipOptions o;
  o.clip_length = 5;
  auto g = group_clips(ds, o);
  ASSERT_EQ(g.clips.size(), 1u);
  EXPECT_EQ(g.clips[0].frames, (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(g.windows.size(), 1u);
  o.separate_split_folders = true;
  g = group_clips(ds, o);
  ASSERT_EQ(g.clips.size(), 2u);
  EXPECT_EQ(g.clips[0].id, "train/test4");
  EXPECT_EQ(g.clips[1].id, "val/test4");
  EXPECT_EQ(g.windows.size(), 0u);  // 3 and 2 frames: both shorter than T
  EXPECT_EQ(g.short_segments, 2u);
}

TEST(GroupClips, WindowsAreTFramesApartByStrideAndTheTailIsCounted) {
  Dataset ds = empty_classification();
  add_run(ds, "v", 1, 10, 0);
  ClipOptions o;
  o.clip_length = 4;
  auto g = group_clips(ds, o);
  ASSERT_EQ(g.windows.size(), 2u);
  EXPECT_EQ(ds.samples[g.windows[1].samples.front()].file, "Accident/v_5.jpg");
  EXPECT_EQ(g.unused_frames, 2u);
  o.stride = 2;
  g = group_clips(ds, o);
  ASSERT_EQ(g.windows.size(), 4u);  // starts 0, 2, 4, 6
  EXPECT_EQ(files_of(ds, g.windows[3].samples),
            (std::vector<std::string>{"Accident/v_7.jpg", "Accident/v_8.jpg", "Accident/v_9.jpg",
                                      "Accident/v_10.jpg"}));
  EXPECT_EQ(g.unused_frames, 0u);
  EXPECT_EQ(window_starts(10, 4, 3), (std::vector<size_t>{0, 3, 6}));
  EXPECT_TRUE(window_starts(3, 4, 1).empty());
}

TEST(GroupClips, ShortSegmentsAreDroppedAndCountedByDefault) {
  Dataset ds = empty_classification();
  add_run(ds, "long", 1, 8, 0);
  add_run(ds, "short", 1, 3, 1);
  ClipOptions o;
  o.clip_length = 4;
  const auto g = group_clips(ds, o);
  EXPECT_EQ(g.windows.size(), 2u);
  EXPECT_EQ(g.short_segments, 1u);
  EXPECT_EQ(g.dropped_frames, 3u);
  EXPECT_EQ(g.padded_windows, 0u);
  EXPECT_EQ(g.summary()["dropped_frames"], 3);
}

TEST(GroupClips, ShortSegmentsPadByRepeatingTheirLastFrameWhenAsked) {
  Dataset ds = empty_classification();
  add_run(ds, "short", 1, 3, 1);
  ClipOptions o;
  o.clip_length = 5;
  o.short_segments = "pad";
  const auto g = group_clips(ds, o);
  ASSERT_EQ(g.windows.size(), 1u);
  EXPECT_EQ(g.windows[0].padded, 2);
  EXPECT_EQ(g.windows[0].label, 1);
  EXPECT_EQ(files_of(ds, g.windows[0].samples),
            (std::vector<std::string>{"Non Accident/short_1.jpg", "Non Accident/short_2.jpg",
                                      "Non Accident/short_3.jpg", "Non Accident/short_3.jpg",
                                      "Non Accident/short_3.jpg"}));
  EXPECT_EQ(g.padded_windows, 1u);
  EXPECT_EQ(g.dropped_frames, 0u);
}

TEST(GroupClips, ALabelChangeCutsSegmentsAndNoWindowCrossesIt) {
  // The accident data's shape: normal traffic, the crash, normal again (test4: 1-30, 31-50, 51-59).
  Dataset ds = empty_classification();
  add_run(ds, "test4", 13, 15, 0);  // added out of order on purpose
  add_run(ds, "test4", 1, 5, 1);
  add_run(ds, "test4", 6, 12, 0);
  add_run(ds, "test4", 16, 16, 1);
  ClipOptions o;
  o.clip_length = 3;
  o.stride = 1;
  const auto g = group_clips(ds, o);
  ASSERT_EQ(g.clips.size(), 1u);
  ASSERT_EQ(g.segments.size(), 3u);
  EXPECT_EQ(g.clips[0].segments, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(g.segments[0].label, 1);
  EXPECT_EQ(g.segments[0].samples.size(), 5u);
  EXPECT_EQ(g.segments[1].label, 0);
  EXPECT_EQ(g.segments[1].samples.size(), 10u);  // frames 6-15
  EXPECT_EQ(g.segments[2].samples.size(), 1u);
  EXPECT_EQ(g.windows.size(), 3u + 8u);
  for (const auto& w : g.windows) {
    for (int i : w.samples) EXPECT_EQ(ds.samples[i].label, w.label) << ds.samples[i].file;
  }
  EXPECT_EQ(g.summary()["clips_changing_label"], 1);
}

TEST(GroupClips, RefusesFileNamesThePatternDoesNotMatchNamingTheFirstFew) {
  Dataset ds = empty_classification();
  add_run(ds, "ok", 1, 3, 0);
  for (int i = 0; i < 7; ++i)
    ds.samples.push_back(frames({{"Accident/img" + std::to_string(i) + ".jpg", 0, ""}}).samples[0]);
  const std::string msg = refusal(ds, ClipOptions());
  EXPECT_NE(msg.find("7 of 10 file names do not match"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Accident/img0.jpg"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Accident/img4.jpg"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("Accident/img5.jpg"), std::string::npos) << msg;
  EXPECT_NE(msg.find("and 2 more"), std::string::npos) << msg;
  EXPECT_NE(msg.find("clips.pattern"), std::string::npos) << msg;
}

TEST(GroupClips, RefusesTwoFilesWithOneFrameNumberInAClip) {
  auto ds = frames({{"Accident/x_1.jpg", 0, ""}, {"Accident/x_01.jpg", 0, ""}, {"Accident/x_2.jpg", 0, ""}});
  std::string msg = refusal(ds, ClipOptions());
  EXPECT_NE(msg.find("clip 'x' frame 1: Accident/x_01.jpg and Accident/x_1.jpg"), std::string::npos) << msg;
  // The same frame under train/ and val/ is one clip's duplicate unless split folders hold different clips.
  Dataset split = empty_classification();
  add_run(split, "v", 1, 2, 0, "train");
  add_run(split, "v", 2, 3, 0, "val");
  msg = refusal(split, ClipOptions());
  EXPECT_NE(msg.find("separate_split_folders"), std::string::npos) << msg;
  ClipOptions separate;
  separate.separate_split_folders = true;
  EXPECT_EQ(group_clips(split, separate).clips.size(), 2u);
}

TEST(GroupClips, RefusesAClipWithTwoLabelsWhenLabelChangesAreRefused) {
  Dataset ds = empty_classification();
  add_run(ds, "test10", 1, 8, 1);
  add_run(ds, "test10", 9, 12, 0);
  add_run(ds, "calm", 1, 4, 1);
  ClipOptions o;
  o.on_label_change = "refuse";
  const std::string msg = refusal(ds, o);
  EXPECT_NE(msg.find("1 clips carry more than one label"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Non Accident/test10_1.jpg is Non Accident, Accident/test10_9.jpg is Accident"),
            std::string::npos)
      << msg;
}

TEST(GroupClips, RefusesADatasetWithoutSamples) {
  EXPECT_THROW(group_clips(empty_classification(), ClipOptions()), DataError);
}

/// Twenty clips of 10 frames, half of them changing label halfway.
Dataset twenty_clips() {
  Dataset ds = empty_classification();
  for (int c = 0; c < 20; ++c) {
    const std::string id = "clip" + std::to_string(c);
    if (c % 2 == 0) {
      add_run(ds, id, 1, 10, c % 4 == 0 ? 0 : 1);
    } else {
      add_run(ds, id, 1, 5, 1);
      add_run(ds, id, 6, 10, 0);
    }
  }
  for (size_t i = 0; i < ds.samples.size(); ++i) ds.samples[i].hash = "h" + std::to_string(i);
  return ds;
}

TEST(ClipSplit, FramesOfOneClipNeverStraddleTrainAndVal) {
  const Dataset ds = twenty_clips();
  const auto g = group_clips(ds, ClipOptions());
  SplitOptions so;
  so.val = 0.25;
  const auto r = split_dataset(ds, so, g.clip_of);
  std::vector<int> where(ds.samples.size(), -1);
  for (int i : r.train) where[i] = 0;
  for (int i : r.val) where[i] = 1;
  for (const auto& clip : g.clips) {
    for (int i : clip.samples) EXPECT_EQ(where[i], where[clip.samples.front()]) << clip.id;
  }
  EXPECT_EQ(r.groups, 20u);
  EXPECT_EQ(r.straddling_groups, 0u);
  EXPECT_EQ(r.val.size() % 10, 0u);
  EXPECT_GT(r.val.size(), 0u);
  // A frame-level split of the same data scatters the clips.
  const auto frame_level = split_dataset(ds, so);
  std::set<int> clips_in_val, clips_in_train;
  for (int i : frame_level.val) clips_in_val.insert(g.clip_of[i]);
  for (int i : frame_level.train) clips_in_train.insert(g.clip_of[i]);
  std::vector<int> both;
  std::set_intersection(clips_in_val.begin(), clips_in_val.end(), clips_in_train.begin(),
                        clips_in_train.end(), std::back_inserter(both));
  EXPECT_FALSE(both.empty());
}

TEST(ClipSplit, FolderSplitsCountTheClipsTheyCut) {
  Dataset ds = empty_classification();
  add_run(ds, "a", 1, 4, 0, "train");
  add_run(ds, "a", 5, 6, 0, "val");
  add_run(ds, "b", 1, 4, 1, "train");
  SplitOptions so;
  so.mode = "folders";
  const auto g = group_clips(ds, ClipOptions());
  const auto r = split_dataset(ds, so, g.clip_of);
  EXPECT_EQ(r.groups, 2u);
  EXPECT_EQ(r.straddling_groups, 1u);
  EXPECT_THROW(split_dataset(ds, so, std::vector<int>{0, 1}), InvalidArgument);
}

/// A video of `n` frames whose frame i is a flat grey of level 5 * i (MJPG in AVI: OpenCV's own writer).
std::filesystem::path write_video(const TempDir& dir, int n) {
  const auto path = dir / "clip.avi";
  cv::VideoWriter writer(path.string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10.0, cv::Size(32, 24));
  EXPECT_TRUE(writer.isOpened());
  for (int i = 0; i < n; ++i) writer.write(cv::Mat(24, 32, CV_8UC3, cv::Scalar::all(5 * i)));
  writer.release();
  return path;
}

TEST(VideoClips, PlanSamplesEveryKthFrameIntoWindowsOfT) {
  VideoClipOptions o;
  o.clip_length = 3;
  o.frame_stride = 2;
  const auto plan = plan_video_clips(13, o);  // sampled 0,2,..,12: 7 frames -> windows at 0 and 3
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0], (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(plan[1], (std::vector<int64_t>{6, 8, 10}));
  o.window_stride = 1;
  EXPECT_EQ(plan_video_clips(13, o).size(), 5u);
  o.max_clips = 2;
  EXPECT_EQ(plan_video_clips(13, o).size(), 2u);
  o = VideoClipOptions();
  o.clip_length = 5;
  EXPECT_TRUE(plan_video_clips(3, o).empty());
  o.short_video = "pad";
  EXPECT_EQ(plan_video_clips(3, o), (std::vector<std::vector<int64_t>>{{0, 1, 2, 2, 2}}));
  o.frame_stride = 0;
  EXPECT_THROW(plan_video_clips(3, o), InvalidArgument);
}

TEST(VideoClips, ReadingDeliversThePlannedFramesInOrder) {
  TempDir dir;
  const auto video = write_video(dir, 23);
  for (const auto& [frame_stride, window_stride] :
       std::vector<std::pair<int, int>>{{1, 0}, {2, 0}, {2, 1}, {1, 6}}) {
    VideoClipOptions o;
    o.clip_length = 4;
    o.frame_stride = frame_stride;
    o.window_stride = window_stride;
    std::vector<std::vector<int64_t>> got;
    const size_t n = read_video_clips(video, o, [&](VideoClip&& clip) {
      EXPECT_EQ(clip.frames.size(), 4u);
      for (size_t k = 0; k < clip.frames.size(); ++k) {
        const double level = cv::mean(clip.frames[k])[0];
        EXPECT_NEAR(level, 5.0 * static_cast<double>(clip.frame_indices[k]), 3.0);
      }
      got.push_back(clip.frame_indices);
      return true;
    });
    EXPECT_EQ(n, got.size());
    EXPECT_EQ(got, plan_video_clips(23, o))
        << "frame_stride " << frame_stride << " window_stride " << window_stride;
  }
}

TEST(VideoClips, ReadingStopsWhenAskedAndPadsAShortVideo) {
  TempDir dir;
  const auto video = write_video(dir, 3);
  VideoClipOptions o;
  o.clip_length = 1;
  int calls = 0;
  EXPECT_EQ(read_video_clips(video, o, [&](VideoClip&&) { return ++calls < 2; }), 2u);
  o.max_clips = 1;
  EXPECT_EQ(read_video_clips(video, o, [](VideoClip&&) { return true; }), 1u);
  o = VideoClipOptions();
  o.clip_length = 5;
  EXPECT_EQ(read_video_clips(video, o, [](VideoClip&&) { return true; }), 0u);
  o.short_video = "pad";
  VideoClip padded;
  EXPECT_EQ(read_video_clips(video, o,
                             [&](VideoClip&& c) {
                               padded = std::move(c);
                               return true;
                             }),
            1u);
  EXPECT_EQ(padded.frame_indices, (std::vector<int64_t>{0, 1, 2, 2, 2}));
  EXPECT_EQ(padded.padded, 2);
  EXPECT_EQ(padded.frames.size(), 5u);
}

TEST(VideoClips, MissingAndUnreadableFilesAreTypedErrors) {
  TempDir dir;
  EXPECT_THROW(read_video_clips(dir / "absent.mp4", {}, [](VideoClip&&) { return true; }), NotFound);
  ::vigil::testing::write_text(dir / "not_a_video.mp4", "hello");
  EXPECT_THROW(read_video_clips(dir / "not_a_video.mp4", {}, [](VideoClip&&) { return true; }), DataError);
}

TEST(SharedData, AccidentFramesGroupIntoClipsWithoutAmbiguity) {
  VIGIL_REQUIRE_SHARED(root, "accidents");
  const auto ds = read_dataset(root, "auto");
  ASSERT_EQ(ds.samples.size(), 889u);
  const auto g = group_clips(ds, ClipOptions());  // T = 8, stride 8, short segments dropped
  std::cout << "accidents, T=8: " << g.summary().dump() << "\n";
  EXPECT_EQ(g.clips.size(), 32u);
  EXPECT_EQ(g.summary()["clips_changing_label"], 26);
  EXPECT_EQ(g.segments.size(), 71u);
  EXPECT_EQ(g.windows.size(), 81u);
  EXPECT_EQ(g.short_segments, 18u);
  EXPECT_EQ(g.dropped_frames, 86u);
  EXPECT_EQ(g.unused_frames, 155u);
  std::map<int, int> windows_per_label;
  for (const auto& w : g.windows) ++windows_per_label[w.label];
  EXPECT_EQ(windows_per_label, (std::map<int, int>{{0, 39}, {1, 42}}));
  ClipOptions half;
  half.stride = 4;
  EXPECT_EQ(group_clips(ds, half).windows.size(), 131u);
  ClipOptions four;
  four.clip_length = 4;
  EXPECT_EQ(group_clips(ds, four).windows.size(), 198u);
  ClipOptions separate;
  separate.separate_split_folders = true;
  const auto gs = group_clips(ds, separate);
  EXPECT_EQ(gs.clips.size(), 60u);
  EXPECT_EQ(gs.windows.size(), 65u);
}

TEST(SharedData, AccidentGivenSplitCutsEveryClipAndAClipSplitCutsNone) {
  VIGIL_REQUIRE_SHARED(root, "accidents");
  const auto ds = read_dataset(root, "auto");
  const auto g = group_clips(ds, ClipOptions());
  SplitOptions folders;
  folders.mode = "folders";
  folders.group_duplicates = false;
  const auto given = split_dataset(ds, folders, g.clip_of);
  std::cout << "given train/val folders: " << given.straddling_groups << " of " << given.groups
            << " clips straddle them\n";
  EXPECT_GT(given.straddling_groups, 20u);
  SplitOptions by_clip;
  by_clip.val = 0.2;
  by_clip.group_duplicates = false;
  const auto r = split_dataset(ds, by_clip, g.clip_of);
  std::cout << "clip split: train " << r.train.size() << ", val " << r.val.size() << "\n";
  EXPECT_EQ(r.straddling_groups, 0u);
  EXPECT_GT(r.val.size(), 100u);
  EXPECT_LT(r.val.size(), 260u);
}

}  // namespace
}  // namespace vigil::data
