#pragma once
/// Small string utilities used across modules.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

std::string_view trim(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep);
/// Splits on runs of whitespace.
std::vector<std::string> split_ws(std::string_view s);
std::string to_lower(std::string_view s);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
bool starts_with(std::string_view s, std::string_view prefix);
/// Edit distance (insert, delete, substitute each cost 1).
size_t levenshtein(std::string_view a, std::string_view b);
/// The candidate closest to `name` by edit distance, if any is reasonably close.
std::optional<std::string> closest_match(std::string_view name, const std::vector<std::string>& candidates);
/// Strict number parsing: the whole string must be a finite or non-finite number; nullopt otherwise.
std::optional<double> parse_double(std::string_view s);
std::optional<long long> parse_int(std::string_view s);

}  // namespace vigil
