#include "vigil/data/dataset.h"

#include "vigil/core/error.h"
#include "vigil/data/preprocess.h"

namespace vigil::data {

const char* task_name(Task t) {
  return t == Task::kDetection ? "detection" : "classification";
}

Task parse_task(const std::string& s) {
  if (s == "detection") return Task::kDetection;
  if (s == "classification") return Task::kClassification;
  throw InvalidArgument(fmt::format("expected task 'detection' or 'classification', got '{}'", s));
}

void PreprocessOptions::validate() const {
  VIGIL_CHECK(width >= 0 && height >= 0, "expected a preprocessing size >= 0, got {}x{}", width, height);
  VIGIL_CHECK(min_size >= 0 && max_size >= 0, "expected min_size and max_size >= 0, got {} and {}", min_size,
              max_size);
  VIGIL_CHECK(mean.empty() || mean.size() == 3, "expected 3 mean values (RGB), got {}", mean.size());
  VIGIL_CHECK(std.empty() || std.size() == 3, "expected 3 std values (RGB), got {}", std.size());
  VIGIL_CHECK(!normalize || (mean.size() == 3 && std.size() == 3),
              "expected mean and std (3 values each) when normalising, got {} and {}", mean.size(),
              std.size());
  for (double s : std) VIGIL_CHECK(s > 0, "expected std values > 0, got {}", s);
}

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::kInfo:
      return "info";
    case Severity::kWarning:
      return "warning";
    case Severity::kError:
      return "error";
  }
  return "error";
}

int Dataset::class_index(const std::string& name) const {
  for (size_t i = 0; i < classes.size(); ++i) {
    if (classes[i] == name) return static_cast<int>(i);
  }
  return -1;
}

size_t Dataset::box_count() const {
  size_t n = 0;
  for (const auto& s : samples) n += s.boxes.size();
  return n;
}

void Dataset::add_issue(std::string kind, Severity sev, std::string file, int line, std::string message) {
  issues.push_back(Issue{std::move(kind), sev, std::move(file), line, std::move(message)});
}

}  // namespace vigil::data
