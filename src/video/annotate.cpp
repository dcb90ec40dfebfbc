#include "vigil/video/annotate.h"

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <map>

#include "vigil/image/draw.h"

namespace vigil::video {
namespace {

const cv::Scalar kEventColour(40, 40, 230);   // red: an alert is open on it
const cv::Scalar kLostColour(150, 150, 150);  // grey: predicted, not seen in this frame
const cv::Scalar kZoneColour(0, 215, 255);    // amber

image::DrawBox draw_box(const Box& b, std::string caption, float score, int class_id) {
  image::DrawBox d;
  d.x1 = b.x1;
  d.y1 = b.y1;
  d.x2 = b.x2;
  d.y2 = b.y2;
  d.label = std::move(caption);
  d.score = score;
  d.class_id = class_id;
  return d;
}

}  // namespace

void draw_annotations(cv::Mat& bgr, const std::string& camera, const std::vector<ZoneConfig>& zones,
                      const std::vector<Track>& tracks, const std::vector<TrackStatus>& statuses) {
  const int thickness = std::max(1, std::min(bgr.cols, bgr.rows) / 300);
  for (const ZoneConfig& zone : zones) {
    std::vector<cv::Point> points;
    for (const Point& p : zone.coordinates) points.emplace_back(static_cast<int>(p.x), static_cast<int>(p.y));
    cv::polylines(bgr, points, true, kZoneColour, thickness, cv::LINE_AA);
    if (!points.empty())
      cv::putText(bgr, zone.name, points.front() + cv::Point(4, 16), cv::FONT_HERSHEY_SIMPLEX, 0.5,
                  kZoneColour, 1, cv::LINE_AA);
  }
  std::map<int64_t, const TrackStatus*> by_id;
  for (const auto& s : statuses) by_id[s.track_id] = &s;
  std::vector<image::DrawBox> boxes;
  for (const Track& t : tracks) {
    if (t.id == 0 || t.state == TrackState::kRemoved) continue;
    const auto it = by_id.find(t.id);
    const bool in_event = it != by_id.end() && it->second->in_event;
    auto d = draw_box(t.matched() ? t.detection : t.box, fmt::format("{} #{}", t.label, t.id),
                      t.matched() ? t.score : -1.0f, static_cast<int>(t.class_id));
    if (!t.matched()) d.color = kLostColour;
    if (in_event) d.color = kEventColour;
    boxes.push_back(std::move(d));
  }
  if (!boxes.empty()) image::draw_boxes(bgr, boxes);
  cv::putText(bgr, camera, {8, bgr.rows - 10}, cv::FONT_HERSHEY_SIMPLEX, 0.6, cv::Scalar(255, 255, 255), 2,
              cv::LINE_AA);
}

void draw_event_box(cv::Mat& bgr, const Event& event) {
  auto d = draw_box(event.best.box, fmt::format("{} #{}", event.label, event.track_id), event.best.score,
                    static_cast<int>(event.class_id));
  d.color = kEventColour;
  image::draw_boxes(bgr, {d});
}

}  // namespace vigil::video
