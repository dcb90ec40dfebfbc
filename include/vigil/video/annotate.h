#pragma once
/// Drawing what a camera's watcher knows onto its frames: the annotated output video, the live view and the
/// event snapshots share these, so every picture shows the same boxes, ids and zones.

#include <opencv2/core.hpp>

#include <string>
#include <vector>

#include "vigil/video/events.h"
#include "vigil/video/rules.h"
#include "vigil/video/tracker.h"
#include "vigil/video/zones.h"

namespace vigil::video {

/// Zones as outlined polygons with their names; tracks matched in this frame as boxes captioned
/// "label #id score" in their class colour (red while the track has an open event); lost tracks as their
/// predicted box in grey; a caption line with the camera name. `statuses` are the rule engine's (may be
/// empty).
void draw_annotations(cv::Mat& bgr, const std::string& camera, const std::vector<ZoneConfig>& zones,
                      const std::vector<Track>& tracks, const std::vector<TrackStatus>& statuses);

/// The event's best box (red, captioned "label #track score") for its snapshot.
void draw_event_box(cv::Mat& bgr, const Event& event);

}  // namespace vigil::video
