#pragma once
/// Wall-clock time as vigil writes it. Library code that records when something happened (ingest, model
/// creation, reports) takes it from here, so every timestamp has one format.

#include <string>

namespace vigil {

/// The current UTC time as ISO 8601 to the second, e.g. "2026-12-05T20:43:27Z".
std::string utc_now();

}  // namespace vigil
