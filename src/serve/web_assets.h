#pragma once
// The web UI's files, embedded into the binary at build time from web/ (cmake/EmbedWeb.cmake).

#include <string_view>

namespace vigil::serve {

struct WebAsset {
  std::string_view path;  ///< relative to /ui/, e.g. "index.html", "vendor/uPlot.iife.min.js"
  std::string_view body;
};

/// The asset served at /ui/<path>, or null.
const WebAsset* find_web_asset(std::string_view path);
/// Number of embedded assets.
int web_asset_count();

}  // namespace vigil::serve
