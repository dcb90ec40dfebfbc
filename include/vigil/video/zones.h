#pragma once
/// Polygon zones of a camera, with Frigate's semantics: an object is in a zone when the bottom centre of its
/// box is inside the polygon (edges count as inside, like cv::pointPolygonTest >= 0), for `inertia`
/// consecutive frames, and it loiters there once it has stayed `loitering_time` seconds.

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "vigil/video/geometry.h"

namespace vigil::video {

/// One zone of one camera: the `zones.<name>` section of a camera's config.
struct ZoneConfig {
  std::string name;                  ///< the key under `zones:` (not a field of its own)
  std::vector<Point> coordinates;    ///< polygon vertices in pixels, in drawing order; at least 3
  int inertia = 3;                   ///< consecutive frames inside before the object counts as in the zone
  double loitering_time = 0;         ///< seconds inside before it counts (0: at once)
  std::vector<std::string> objects;  ///< labels the zone applies to; empty: every tracked label

  template <class V>
  void visit(V& v) {
    v("coordinates", coordinates, "polygon [[x, y], ...] in pixels, at least 3 points");
    v("inertia", inertia, "consecutive frames inside before an object counts as in the zone");
    v("loitering_time", loitering_time, "seconds an object must stay inside before it counts");
    v("objects", objects, "labels the zone applies to (empty: all)");
  }
  /// Throws InvalidArgument whose message starts with "zones.<name>.<field>: ". Rejects fewer than three
  /// points, non-finite or negative coordinates, a polygon of no area, and one entirely inside [0, 1]
  /// (Frigate's relative coordinates: vigil's are pixels).
  void validate() const;

  /// Whether the zone considers objects with this label.
  bool applies_to(const std::string& label) const;
  /// Whether a point is inside the polygon or on its edge.
  bool contains(Point p) const;
};

/// Point in polygon by ray crossing; a point on an edge or vertex counts as inside.
bool point_in_polygon(Point p, const std::vector<Point>& polygon);

/// "an [x, y] point": how config errors name the type of one coordinate (found by argument-dependent lookup
/// from config::detail::Reader).
std::string type_name_for(const Point*);

}  // namespace vigil::video

/// Reads a point from a YAML pair [x, y] and writes it back, so ZoneConfig goes through config::bind.
template <>
struct YAML::convert<vigil::video::Point> {
  static Node encode(const vigil::video::Point& p);
  static bool decode(const Node& node, vigil::video::Point& p);
};
