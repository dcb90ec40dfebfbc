#pragma once
/// Clips for clip classifiers (CNN + LSTM): frames grouped into clips, and clips cut into windows of T
/// frames.
///
/// From a frame folder dataset (group_clips): a regular expression on each file's stem (its name without the
/// folder and the last extension) gives the clip id and the frame number. The default fits both namings of
/// the accident data: `test10_11.jpg` is frame 11 of clip `test10`, `acc1 (13).jpg` frame 13 of clip `acc1`.
/// std::regex has no named groups, so the pattern's groups are numbered: ClipOptions::clip_group (default 1)
/// is the clip id, ClipOptions::frame_group (default 2) the frame number (decimal digits).
///
/// A clip is every frame with one clip id, ordered by frame number (numerically: 2 before 10). Split folders
/// (train/, val/) do not separate clips unless asked, so a clip that a frame-level split scattered over
/// train/ and val/ is one clip again (and the split can keep it whole, see clip_of).
/// A clip's frames may change label over time: the accident data's videos are "Non Accident" up to the
/// crash and "Accident" from then on (test10: frames 1-8, then 9-60). Each maximal run of one label is a
/// segment; windows never cross a segment boundary, so every window has one label. With
/// `on_label_change = "refuse"` a clip must carry one label instead.
/// A segment of n >= T frames gives the windows starting at 0, stride, 2*stride, ... that fit; a shorter one
/// is dropped (counted) or padded by repeating its last frame.
///
/// Refused as ambiguous (DataError naming the first files): a file the pattern does not match, two files
/// with the same frame number in one clip, and (with "refuse") a clip whose frames carry different labels.
///
/// From a video file (read_video_clips): windows of T frames sampled every `frame_stride` frames.

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "vigil/data/dataset.h"

namespace vigil::data {

/// The default frame-name pattern: group 1 = clip id, group 2 = frame number; `_N` or ` (N)` at the end.
inline constexpr const char* kDefaultFramePattern = R"(^(.+?)[_ ]\(?(\d+)\)?$)";

/// How group_clips groups a dataset's frames and cuts windows.
struct ClipOptions {
  std::string pattern = kDefaultFramePattern;  ///< ECMAScript regex matched against the whole file stem
  int clip_group = 1;                          ///< the pattern's group holding the clip id
  int frame_group = 2;                         ///< the pattern's group holding the frame number
  int clip_length = 8;                         ///< T: frames per window
  int stride = 0;                              ///< frames between window starts; 0 = clip_length
  std::string short_segments = "drop";         ///< drop | pad (repeat the last frame up to T)
  std::string on_label_change = "segment";     ///< segment | refuse
  bool separate_split_folders = false;         ///< clip ids are per split folder (train/x and val/x differ)
  template <class V>
  void visit(V& v) {
    v("pattern", pattern,
      "regular expression on the file stem; its groups give the clip id and frame number");
    v("clip_group", clip_group, "number of the pattern's group holding the clip id");
    v("frame_group", frame_group, "number of the pattern's group holding the frame number");
    v("clip_length", clip_length, "frames per window (T)");
    v("stride", stride, "frames between the starts of consecutive windows; 0: clip_length (no overlap)");
    v("short_segments", short_segments, "drop or pad (repeat the last frame) segments shorter than T");
    v("on_label_change", on_label_change,
      "segment: cut a clip where its label changes; refuse: a clip must carry one label");
    v("separate_split_folders", separate_split_folders,
      "treat the same clip id under train/ and val/ as two clips");
  }
  /// Throws InvalidArgument: a pattern that does not compile or lacks the groups, T < 1, stride < 0, unknown
  /// short_segments / on_label_change values.
  void validate() const;
  /// Window stride in frames (stride, or clip_length when 0).
  int effective_stride() const { return stride > 0 ? stride : clip_length; }
};

/// Every frame with one clip id, by frame number.
struct Clip {
  std::string id;               ///< as matched ("test10"), or "val/test10" with separate_split_folders
  std::vector<int> samples;     ///< indices into Dataset::samples, by frame number
  std::vector<int64_t> frames;  ///< frame numbers, ascending
  std::vector<int> segments;    ///< indices into ClipGrouping::segments, in time order
};

/// A maximal run of consecutive frames (in frame-number order) of one clip that carry one label.
struct ClipSegment {
  int clip = 0;  ///< index into ClipGrouping::clips
  int label = -1;
  std::vector<int> samples;  ///< by frame number
};

/// T frames of one segment: what one clip-classifier input is made of.
struct ClipWindow {
  int segment = 0;  ///< index into ClipGrouping::segments
  int label = -1;
  std::vector<int> samples;  ///< T sample indices in time order (a padded window repeats its last one)
  int padded = 0;            ///< frames added by repeating the last one (short_segments = pad)
};

/// What group_clips found.
struct ClipGrouping {
  std::vector<Clip> clips;  ///< sorted by id
  std::vector<ClipSegment> segments;
  std::vector<ClipWindow> windows;  ///< by clip, segment, start frame
  /// Per sample, the index of its clip in `clips`: the group to split by, so that the frames of one clip
  /// never straddle train/val (split_dataset's extra_groups).
  std::vector<int> clip_of;
  size_t short_segments = 0;  ///< segments shorter than T (dropped, or padded into one window each)
  size_t dropped_frames = 0;  ///< frames of dropped short segments (in no window)
  size_t unused_frames = 0;   ///< tail frames of long segments that no window reaches
  size_t padded_windows = 0;
  /// Counts: samples, clips, segments (and how many change label), windows, short/dropped/unused/padded.
  nlohmann::json summary() const;
};

/// Groups ds's samples into clips, segments and windows per `opt` (see the file comment). Throws DataError
/// when the grouping is ambiguous (listing the first few files and the count) or the dataset has no samples;
/// InvalidArgument for bad options.
ClipGrouping group_clips(const Dataset& ds, const ClipOptions& opt);

/// The start offsets of the windows of T frames over n frames with the given stride (0 .. n - T); empty when
/// n < T.
std::vector<size_t> window_starts(size_t n, int clip_length, int stride);

/// How read_video_clips samples a video file.
struct VideoClipOptions {
  int clip_length = 8;               ///< T: frames per clip
  int frame_stride = 1;              ///< take every k-th frame of the video (1 = all)
  int window_stride = 0;             ///< sampled frames between clip starts; 0 = clip_length (no overlap)
  std::string short_video = "drop";  ///< a video with fewer than T sampled frames: drop | pad
  int max_clips = 0;                 ///< stop after this many clips; 0 = the whole video
  /// Throws InvalidArgument for values out of range.
  void validate() const;
};

/// One window of a video: T frames (BGR, as OpenCV decodes them) and their 0-based indices in the video.
struct VideoClip {
  std::vector<int64_t> frame_indices;
  std::vector<cv::Mat> frames;
  int padded = 0;  ///< trailing frames that repeat the last one (short_video = pad)
};

/// The frame indices of each clip read_video_clips yields for a video of `frame_count` frames (what it
/// reads, without reading; max_clips applies).
std::vector<std::vector<int64_t>> plan_video_clips(int64_t frame_count, const VideoClipOptions& opt);

/// Reads `video` front to back with cv::VideoCapture (no seeking: container frame counts and seeks are not
/// reliable) and calls `on_clip` for each clip in order, holding at most T frames; `on_clip` returns false
/// to stop early. Returns the number of clips delivered. Throws NotFound when the file is missing and
/// DataError when OpenCV cannot open it.
size_t read_video_clips(const std::filesystem::path& video, const VideoClipOptions& opt,
                        const std::function<bool(VideoClip&&)>& on_clip);

}  // namespace vigil::data
