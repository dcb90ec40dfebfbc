#include "vigil/data/clips.h"

#include <fmt/format.h>
#include <opencv2/videoio.hpp>

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>
#include <optional>
#include <regex>

#include "vigil/core/error.h"

namespace vigil::data {

namespace {

constexpr size_t kShownFiles = 5;

/// "a, b, c ... and N more" from the first kShownFiles items.
std::string first_few(const std::vector<std::string>& items) {
  const size_t shown = std::min(items.size(), kShownFiles);
  std::string out =
      fmt::format("{}", fmt::join(items.begin(), items.begin() + static_cast<long>(shown), "; "));
  if (shown < items.size()) out += fmt::format(" ... and {} more", items.size() - shown);
  return out;
}

std::regex compile_pattern(const std::string& pattern) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw InvalidArgument(fmt::format("expected a valid regular expression for clips.pattern, got '{}' ({})",
                                      pattern, e.what()));
  }
}

struct FrameName {
  std::string clip;
  int64_t frame = 0;
};

/// Clip id and frame number of `file`'s stem, or nullopt when the pattern does not match or the frame group
/// is not a decimal number.
std::optional<FrameName> parse_frame_name(const std::string& file, const std::regex& re,
                                          const ClipOptions& o) {
  const std::string stem = std::filesystem::path(file).stem().string();
  std::smatch m;
  if (!std::regex_match(stem, m, re)) return std::nullopt;
  const auto& clip = m[o.clip_group];
  const auto& digits = m[o.frame_group];
  if (!clip.matched || clip.length() == 0 || !digits.matched || digits.length() == 0) return std::nullopt;
  FrameName out;
  out.clip = clip.str();
  const std::string d = digits.str();
  const auto [end, ec] = std::from_chars(d.data(), d.data() + d.size(), out.frame);
  if (ec != std::errc() || end != d.data() + d.size() || out.frame < 0) return std::nullopt;
  return out;
}

std::string label_name(const Dataset& ds, int label) {
  if (label >= 0 && label < static_cast<int>(ds.classes.size())) return ds.classes[label];
  return label < 0 ? "(unlabelled)" : fmt::format("label {}", label);
}

/// (frame, sample) pairs per clip key, sorted by frame then file; throws on files the pattern misses.
std::map<std::string, std::vector<std::pair<int64_t, int>>> frames_by_clip(const Dataset& ds,
                                                                           const ClipOptions& o) {
  const std::regex re = compile_pattern(o.pattern);
  std::map<std::string, std::vector<std::pair<int64_t, int>>> by_clip;
  std::vector<std::string> unmatched;
  for (size_t i = 0; i < ds.samples.size(); ++i) {
    const Sample& s = ds.samples[i];
    auto name = parse_frame_name(s.file, re, o);
    if (!name) {
      unmatched.push_back(s.file);
      continue;
    }
    const std::string key =
        o.separate_split_folders && !s.split.empty() ? s.split + "/" + name->clip : name->clip;
    by_clip[key].emplace_back(name->frame, static_cast<int>(i));
  }
  if (!unmatched.empty()) {
    throw DataError(fmt::format(
        "cannot group frames into clips: {} of {} file names do not match the pattern '{}' (group {} = clip "
        "id, group {} = frame number, on the name without its extension): {}; rename them or set "
        "clips.pattern",
        unmatched.size(), ds.samples.size(), o.pattern, o.clip_group, o.frame_group, first_few(unmatched)));
  }
  for (auto& [key, frames] : by_clip) {
    std::sort(frames.begin(), frames.end(), [&](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : ds.samples[a.second].file < ds.samples[b.second].file;
    });
  }
  return by_clip;
}

/// Problems that make the grouping ambiguous: one frame number twice in a clip; with on_label_change =
/// refuse, a clip with more than one label.
void check_unambiguous(const Dataset& ds,
                       const std::map<std::string, std::vector<std::pair<int64_t, int>>>& by_clip,
                       const ClipOptions& o) {
  std::vector<std::string> duplicates, mixed;
  for (const auto& [key, frames] : by_clip) {
    for (size_t k = 1; k < frames.size(); ++k) {
      if (frames[k].first == frames[k - 1].first)
        duplicates.push_back(fmt::format("clip '{}' frame {}: {} and {}", key, frames[k].first,
                                         ds.samples[frames[k - 1].second].file,
                                         ds.samples[frames[k].second].file));
    }
    if (o.on_label_change != "refuse") continue;
    const int first = ds.samples[frames.front().second].label;
    for (const auto& [frame, i] : frames) {
      if (ds.samples[i].label == first) continue;
      mixed.push_back(fmt::format("clip '{}': {} is {}, {} is {}", key,
                                  ds.samples[frames.front().second].file, label_name(ds, first),
                                  ds.samples[i].file, label_name(ds, ds.samples[i].label)));
      break;
    }
  }
  if (!duplicates.empty()) {
    throw DataError(fmt::format(
        "cannot group frames into clips: {} frame numbers occur twice in one clip: {}; if the split folders "
        "hold different clips set clips.separate_split_folders, else fix the pattern or the names",
        duplicates.size(), first_few(duplicates)));
  }
  if (!mixed.empty()) {
    throw DataError(fmt::format(
        "cannot group frames into clips: {} clips carry more than one label (clips.on_label_change is "
        "'refuse'): {}; set it to 'segment' to cut clips where the label changes",
        mixed.size(), first_few(mixed)));
  }
}

/// Cuts one segment into windows (or drops / pads it when short), updating the counts.
void add_windows(const ClipOptions& o, int segment_index, ClipGrouping& g) {
  const ClipSegment& seg = g.segments[segment_index];
  const size_t n = seg.samples.size(), t = static_cast<size_t>(o.clip_length);
  if (n < t) {
    ++g.short_segments;
    if (o.short_segments == "drop") {
      g.dropped_frames += n;
      return;
    }
    ClipWindow w{segment_index, seg.label, seg.samples, static_cast<int>(t - n)};
    w.samples.resize(t, seg.samples.back());
    g.windows.push_back(std::move(w));
    ++g.padded_windows;
    return;
  }
  const auto starts = window_starts(n, o.clip_length, o.effective_stride());
  for (size_t s : starts) {
    ClipWindow w{segment_index, seg.label, {}, 0};
    w.samples.assign(seg.samples.begin() + static_cast<long>(s),
                     seg.samples.begin() + static_cast<long>(s + t));
    g.windows.push_back(std::move(w));
  }
  g.unused_frames += n - (starts.back() + t);
}

}  // namespace

void ClipOptions::validate() const {
  const std::regex re = compile_pattern(pattern);
  const int groups = static_cast<int>(re.mark_count());
  VIGIL_CHECK(clip_group >= 1 && clip_group <= groups,
              "expected clips.clip_group in 1..{} (the pattern's groups), got {}", groups, clip_group);
  VIGIL_CHECK(frame_group >= 1 && frame_group <= groups,
              "expected clips.frame_group in 1..{} (the pattern's groups), got {}", groups, frame_group);
  VIGIL_CHECK(clip_group != frame_group,
              "expected different groups for the clip id and the frame number, got {}", clip_group);
  VIGIL_CHECK(clip_length >= 1, "expected clips.clip_length >= 1, got {}", clip_length);
  VIGIL_CHECK(stride >= 0, "expected clips.stride >= 0 (0: clip_length), got {}", stride);
  VIGIL_CHECK(short_segments == "drop" || short_segments == "pad",
              "expected clips.short_segments 'drop' or 'pad', got '{}'", short_segments);
  VIGIL_CHECK(on_label_change == "segment" || on_label_change == "refuse",
              "expected clips.on_label_change 'segment' or 'refuse', got '{}'", on_label_change);
}

std::vector<size_t> window_starts(size_t n, int clip_length, int stride) {
  VIGIL_CHECK(clip_length >= 1 && stride >= 1, "expected clip_length and stride >= 1, got {} and {}",
              clip_length, stride);
  std::vector<size_t> starts;
  const size_t t = static_cast<size_t>(clip_length);
  for (size_t s = 0; s + t <= n; s += static_cast<size_t>(stride)) starts.push_back(s);
  return starts;
}

ClipGrouping group_clips(const Dataset& ds, const ClipOptions& opt) {
  opt.validate();
  if (ds.samples.empty())
    throw DataError("expected frames to group into clips, got a dataset without samples");
  const auto by_clip = frames_by_clip(ds, opt);
  check_unambiguous(ds, by_clip, opt);
  ClipGrouping g;
  g.clip_of.assign(ds.samples.size(), -1);
  for (const auto& [key, frames] : by_clip) {
    const int clip_index = static_cast<int>(g.clips.size());
    Clip clip;
    clip.id = key;
    for (const auto& [frame, i] : frames) {
      clip.samples.push_back(i);
      clip.frames.push_back(frame);
      g.clip_of[i] = clip_index;
      const int label = ds.samples[i].label;
      if (g.segments.empty() || g.segments.back().clip != clip_index || g.segments.back().label != label) {
        clip.segments.push_back(static_cast<int>(g.segments.size()));
        g.segments.push_back(ClipSegment{clip_index, label, {}});
      }
      g.segments.back().samples.push_back(i);
    }
    g.clips.push_back(std::move(clip));
  }
  for (size_t s = 0; s < g.segments.size(); ++s) add_windows(opt, static_cast<int>(s), g);
  return g;
}

nlohmann::json ClipGrouping::summary() const {
  size_t changing = 0;
  for (const Clip& c : clips) changing += c.segments.size() > 1 ? 1 : 0;
  nlohmann::json j;
  j["samples"] = clip_of.size();
  j["clips"] = clips.size();
  j["clips_changing_label"] = changing;
  j["segments"] = segments.size();
  j["windows"] = windows.size();
  j["short_segments"] = short_segments;
  j["dropped_frames"] = dropped_frames;
  j["unused_frames"] = unused_frames;
  j["padded_windows"] = padded_windows;
  return j;
}

void VideoClipOptions::validate() const {
  VIGIL_CHECK(clip_length >= 1, "expected clip_length >= 1, got {}", clip_length);
  VIGIL_CHECK(frame_stride >= 1, "expected frame_stride >= 1, got {}", frame_stride);
  VIGIL_CHECK(window_stride >= 0, "expected window_stride >= 0 (0: clip_length), got {}", window_stride);
  VIGIL_CHECK(short_video == "drop" || short_video == "pad", "expected short_video 'drop' or 'pad', got '{}'",
              short_video);
  VIGIL_CHECK(max_clips >= 0, "expected max_clips >= 0 (0: no limit), got {}", max_clips);
}

std::vector<std::vector<int64_t>> plan_video_clips(int64_t frame_count, const VideoClipOptions& opt) {
  opt.validate();
  std::vector<int64_t> sampled;
  for (int64_t i = 0; i < frame_count; i += opt.frame_stride) sampled.push_back(i);
  const int window_stride = opt.window_stride > 0 ? opt.window_stride : opt.clip_length;
  std::vector<std::vector<int64_t>> clips;
  for (size_t s : window_starts(sampled.size(), opt.clip_length, window_stride)) {
    if (opt.max_clips > 0 && clips.size() >= static_cast<size_t>(opt.max_clips)) break;
    clips.emplace_back(sampled.begin() + static_cast<long>(s),
                       sampled.begin() + static_cast<long>(s) + opt.clip_length);
  }
  if (clips.empty() && !sampled.empty() && sampled.size() < static_cast<size_t>(opt.clip_length) &&
      opt.short_video == "pad") {
    clips.push_back(sampled);
    clips.back().resize(static_cast<size_t>(opt.clip_length), sampled.back());
  }
  return clips;
}

size_t read_video_clips(const std::filesystem::path& video, const VideoClipOptions& opt,
                        const std::function<bool(VideoClip&&)>& on_clip) {
  opt.validate();
  if (!std::filesystem::exists(video))
    throw NotFound(fmt::format("video file not found: {}", video.string()));
  cv::VideoCapture cap(video.string());
  if (!cap.isOpened()) throw DataError(fmt::format("cannot open video '{}' with OpenCV", video.string()));
  const size_t t = static_cast<size_t>(opt.clip_length);
  const size_t window_stride =
      static_cast<size_t>(opt.window_stride > 0 ? opt.window_stride : opt.clip_length);
  std::deque<std::pair<int64_t, cv::Mat>> recent;  // the last T sampled frames
  size_t sampled = 0, delivered = 0;
  auto deliver = [&](VideoClip clip) {
    ++delivered;
    const bool more = on_clip(std::move(clip));
    return more && (opt.max_clips == 0 || delivered < static_cast<size_t>(opt.max_clips));
  };
  for (int64_t index = 0; cap.grab(); ++index) {
    if (index % opt.frame_stride != 0) continue;
    const size_t j = sampled++;
    // A sampled frame no window reaches (window_stride > T) is skipped without converting it.
    if (window_stride > t && j % window_stride >= t) continue;
    cv::Mat frame;  // a fresh buffer: the clips keep their frames
    if (!cap.retrieve(frame) || frame.empty()) break;
    recent.emplace_back(index, frame);
    if (recent.size() > t) recent.pop_front();
    if (j + 1 < t || (j + 1 - t) % window_stride != 0) continue;
    VideoClip clip;
    for (const auto& [i, f] : recent) {
      clip.frame_indices.push_back(i);
      clip.frames.push_back(f);
    }
    if (!deliver(std::move(clip))) return delivered;
  }
  if (delivered == 0 && !recent.empty() && recent.size() < t && opt.short_video == "pad") {
    VideoClip clip;
    for (const auto& [i, f] : recent) {
      clip.frame_indices.push_back(i);
      clip.frames.push_back(f);
    }
    clip.padded = static_cast<int>(t - recent.size());
    clip.frame_indices.resize(t, clip.frame_indices.back());
    clip.frames.resize(t, clip.frames.back());
    deliver(std::move(clip));
  }
  return delivered;
}

}  // namespace vigil::data
