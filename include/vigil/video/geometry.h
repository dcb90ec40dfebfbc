#pragma once
/// Pixel geometry shared by the tracker and the alert rules: points, axis-aligned boxes and their overlap.
/// Plain floats, no OpenCV: the video core is torch- and OpenCV-free so it can be tested on synthetic tracks.

namespace vigil::video {

/// A point in pixels (x right, y down).
struct Point {
  double x = 0, y = 0;
};

/// An axis-aligned box in pixels: (x1, y1) top-left, (x2, y2) bottom-right.
struct Box {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;

  float width() const { return x2 - x1; }
  float height() const { return y2 - y1; }
  float area() const { return width() > 0 && height() > 0 ? width() * height() : 0.0f; }
  /// Where an object stands on the ground: Frigate tests zones at this point, not at the centre, so a
  /// person's head over a counter does not put the person behind it.
  Point bottom_centre() const { return {0.5 * (x1 + x2), y2}; }
  /// Finite corners and a positive width and height.
  bool valid() const;
};

/// Intersection over union of two boxes; 0 when either is empty.
float iou(const Box& a, const Box& b);

}  // namespace vigil::video
