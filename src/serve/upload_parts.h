#pragma once
// Multipart file parts -> files in a scratch folder, for the two upload routes (POST /upload of the accident
// seed, POST /v1/datasets/{name}/upload). The parts' file names are the client's and hostile: they become
// paths only through data::safe_relative_path. Internal to src/serve/ (httplib lives here only).

#include <httplib.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>

namespace vigil::serve {

/// Which parts write_upload_parts() takes and where they land.
struct UploadPartsOptions {
  /// Only the parts of this form field, and every 400 starts with "<field>: "; "" = every part with a file
  /// name (plain form fields have none), a bad name naming the part's own field.
  std::string field;
  /// Non-empty: a file name with a folder is refused, and this says why (e.g. "the class folder comes from
  /// label"); empty: relative paths such as "with_mask/1.jpg" are kept as they are.
  std::string plain_names_because;
  /// Set: the (single) part is written to this path rather than under its own name (an archive, whose
  /// reader goes by the name's kind only).
  std::optional<std::filesystem::path> one_file;
};

/// Writes the request's file parts below `dir` (each name once); returns how many. 400 for an unsafe or
/// repeated name, a folder where only plain names are taken, or no part with a file name.
size_t write_upload_parts(const httplib::Request& req, const std::filesystem::path& dir,
                          const UploadPartsOptions& options);

}  // namespace vigil::serve
