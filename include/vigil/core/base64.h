#pragma once
/// Standard base64 (RFC 4648 alphabet, '=' padding): data URIs in reports, image bytes in KServe requests.

#include <optional>
#include <string>
#include <string_view>

namespace vigil {

std::string base64_encode(std::string_view bytes);
/// Strict decoding: nullopt on a character outside the alphabet, misplaced padding or a length that no
/// encoding produces. Padding may be left out.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace vigil
