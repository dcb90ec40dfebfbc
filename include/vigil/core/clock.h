#pragma once
/// Wall-clock time as vigil writes it. Library code that records when something happened (ingest, model
/// creation, reports) takes it from here, so every timestamp has one format.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vigil {

/// The current UTC time as ISO 8601 to the second, e.g. "2026-12-05T20:43:27Z".
std::string utc_now();

/// The current time in Unix milliseconds (what the store and the prediction log keep).
int64_t unix_now_ms();

/// Unix milliseconds as ISO 8601 UTC to the millisecond, e.g. "2026-12-05T20:43:27.120Z".
std::string format_utc_ms(int64_t ms);

/// A point in time as users type it (query parameters, --since): Unix milliseconds (digits only), or ISO 8601
/// "YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|±HH:MM]" (no offset = UTC). nullopt when it is neither.
std::optional<int64_t> parse_utc_ms(std::string_view text);

}  // namespace vigil
