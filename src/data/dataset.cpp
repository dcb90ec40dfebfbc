#include "vigil/data/dataset.h"

#include "vigil/core/error.h"

namespace vigil::data {

const char* task_name(Task t) {
  return t == Task::kDetection ? "detection" : "classification";
}

Task parse_task(const std::string& s) {
  if (s == "detection") return Task::kDetection;
  if (s == "classification") return Task::kClassification;
  throw InvalidArgument(fmt::format("expected task 'detection' or 'classification', got '{}'", s));
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
