#include "vigil/video/zones.h"

#include <algorithm>
#include <cmath>

#include "vigil/core/error.h"

namespace vigil::video {
namespace {

// Twice the signed area (shoelace).
double twice_area(const std::vector<Point>& polygon) {
  double sum = 0;
  for (size_t i = 0, j = polygon.size() - 1; i < polygon.size(); j = i++)
    sum += polygon[j].x * polygon[i].y - polygon[i].x * polygon[j].y;
  return sum;
}

bool on_segment(Point p, Point a, Point b) {
  const double cross = (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x);
  const double scale = std::max({std::abs(b.x - a.x), std::abs(b.y - a.y), 1.0});
  if (std::abs(cross) > 1e-9 * scale * scale) return false;
  return p.x >= std::min(a.x, b.x) && p.x <= std::max(a.x, b.x) && p.y >= std::min(a.y, b.y) &&
         p.y <= std::max(a.y, b.y);
}

}  // namespace

bool point_in_polygon(Point p, const std::vector<Point>& polygon) {
  if (polygon.size() < 3) return false;
  bool inside = false;
  for (size_t i = 0, j = polygon.size() - 1; i < polygon.size(); j = i++) {
    const Point a = polygon[j], b = polygon[i];
    if (on_segment(p, a, b)) return true;
    // Half-open rule on y so a ray through a vertex is counted once.
    if ((b.y > p.y) != (a.y > p.y) && p.x < a.x + (p.y - a.y) * (b.x - a.x) / (b.y - a.y)) inside = !inside;
  }
  return inside;
}

void ZoneConfig::validate() const {
  const std::string key = "zones." + name + ".";
  VIGIL_CHECK(!name.empty(), "zones: expected every zone to have a name, got an empty one");
  VIGIL_CHECK(coordinates.size() >= 3,
              "{}coordinates: expected a polygon of at least 3 [x, y] points, got {}", key,
              coordinates.size());
  bool all_unit = true;
  for (size_t i = 0; i < coordinates.size(); ++i) {
    const Point& p = coordinates[i];
    VIGIL_CHECK(std::isfinite(p.x) && std::isfinite(p.y) && p.x >= 0 && p.y >= 0,
                "{}coordinates: expected pixel coordinates >= 0, got [{}, {}] at point {}", key, p.x, p.y, i);
    all_unit = all_unit && p.x <= 1 && p.y <= 1;
  }
  VIGIL_CHECK(!all_unit,
              "{}coordinates: expected pixel coordinates, got every point within [0, 1] (Frigate's relative "
              "coordinates?): multiply by the frame's width and height",
              key);
  VIGIL_CHECK(std::abs(twice_area(coordinates)) >= 2.0,
              "{}coordinates: expected a polygon with an area, got {} points on one line", key,
              coordinates.size());
  VIGIL_CHECK(inertia >= 1, "{}inertia: expected at least 1 frame, got {}", key, inertia);
  VIGIL_CHECK(std::isfinite(loitering_time) && loitering_time >= 0,
              "{}loitering_time: expected seconds >= 0, got {}", key, loitering_time);
  for (const auto& label : objects)
    VIGIL_CHECK(!label.empty(), "{}objects: expected labels, got an empty string", key);
}

bool ZoneConfig::applies_to(const std::string& label) const {
  return objects.empty() || std::find(objects.begin(), objects.end(), label) != objects.end();
}

bool ZoneConfig::contains(Point p) const {
  return point_in_polygon(p, coordinates);
}

std::string type_name_for(const Point*) {
  return "an [x, y] point";
}

}  // namespace vigil::video

YAML::Node YAML::convert<vigil::video::Point>::encode(const vigil::video::Point& p) {
  Node node(NodeType::Sequence);
  node.SetStyle(EmitterStyle::Flow);
  node.push_back(p.x);
  node.push_back(p.y);
  return node;
}

bool YAML::convert<vigil::video::Point>::decode(const Node& node, vigil::video::Point& p) {
  if (!node.IsSequence() || node.size() != 2 || !node[0].IsScalar() || !node[1].IsScalar()) return false;
  p.x = node[0].as<double>();  // a non-number throws, which config::detail::Reader reports as a bad value
  p.y = node[1].as<double>();
  return true;
}
