#pragma once
/// What a dataset or a model is for. Code compares the enum; the strings exist only in files and JSON.

#include <string>

namespace vigil::data {

enum class Task { kDetection, kClassification };
/// "detection" / "classification".
const char* task_name(Task t);
/// "detection" / "classification"; throws InvalidArgument otherwise.
Task parse_task(const std::string& s);

}  // namespace vigil::data
