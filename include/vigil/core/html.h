#pragma once
/// Text into HTML: the one escaping rule every report page (evaluation, drift, pipelines) uses.

#include <string>
#include <string_view>

namespace vigil {

/// Escapes &, <, >, " and ' so any text is safe in element content and quoted attributes.
std::string html_escape(std::string_view text);

}  // namespace vigil
