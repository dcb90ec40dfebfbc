#include "upload_parts.h"

#include <fmt/format.h>

#include "server_impl.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/data/archive.h"

namespace vigil::serve {

namespace {

namespace fs = std::filesystem;

/// Where one part goes: `one_file`, else its file name made safe below `dir`.
fs::path part_target(const std::string& field, const httplib::MultipartFormData& part, const fs::path& dir,
                     const UploadPartsOptions& o) {
  if (o.one_file) return *o.one_file;
  fs::path name;
  try {
    name = data::safe_relative_path(part.filename);
  } catch (const DataError& e) {
    throw_http(400, "bad_request",
               o.field.empty() ? fmt::format("field '{}': {}", field, e.what())
                               : fmt::format("{}: {}", o.field, e.what()));
  }
  if (!o.plain_names_because.empty() && name.has_parent_path())
    throw_http(400, "bad_request",
               fmt::format("{}: expected plain file names ({}), got '{}'", o.field, o.plain_names_because,
                           part.filename));
  return dir / name;
}

}  // namespace

size_t write_upload_parts(const httplib::Request& req, const fs::path& dir, const UploadPartsOptions& o) {
  const std::string prefix = o.field.empty() ? "" : o.field + ": ";
  const auto [first, last] =
      o.field.empty() ? std::pair{req.files.begin(), req.files.end()} : req.files.equal_range(o.field);
  size_t written = 0;
  for (auto it = first; it != last; ++it) {
    const auto& [field, part] = *it;
    if (part.filename.empty()) continue;  // a plain form field
    const fs::path target = part_target(field, part, dir, o);
    if (fs::exists(target))
      throw_http(400, "bad_request", fmt::format("{}'{}' is uploaded twice", prefix, part.filename));
    write_file_atomic(target, part.content);
    ++written;
  }
  if (written == 0)
    throw_http(400, "bad_request",
               o.field.empty()
                   ? std::string("expected file parts (with file names), got only form fields")
                   : fmt::format("{0}: expected one or more files (with file names) as multipart field '{0}'",
                                 o.field));
  return written;
}

}  // namespace vigil::serve
