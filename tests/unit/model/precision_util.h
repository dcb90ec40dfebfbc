#pragma once
// What the reduced-precision tests (precision_test.cpp, int8_test.cpp) share: seeded zoo models wrapped as
// loaded models, a simulated CPU, and the message of an InvalidArgument.

#include <torch/torch.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vigil/core/error.h"
#include "vigil/model/model_file.h"
#include "vigil/nn/zoo.h"

namespace vigil::precision_test {

/// The same seeded weights every call, so two Predictors hold identical models. Detectors' num_classes
/// counts the background.
inline model::LoadedModel seeded_model(const std::string& arch, int num_classes) {
  torch::manual_seed(11);
  nn::ModelArgs args;
  args.num_classes = num_classes;
  model::LoadedModel m;
  std::vector<std::string> names;
  const int named = nn::find_model(arch).task == data::Task::kDetection ? num_classes - 1 : num_classes;
  for (int i = 0; i < named; ++i) names.push_back("c" + std::to_string(i));
  m.info = model::default_model_info(arch, names);
  m.module = nn::make_model(arch, args);
  m.classifier = std::dynamic_pointer_cast<nn::Classifier>(m.module);
  m.detector = std::dynamic_pointer_cast<nn::Detector>(m.module);
  return m;
}

/// Sets VIGIL_CPU_FLAGS (core/cpu.h) while alive.
class SimulatedCpu {
 public:
  explicit SimulatedCpu(const char* flags) { setenv("VIGIL_CPU_FLAGS", flags, 1); }
  ~SimulatedCpu() { unsetenv("VIGIL_CPU_FLAGS"); }
  SimulatedCpu(const SimulatedCpu&) = delete;
  SimulatedCpu& operator=(const SimulatedCpu&) = delete;
};

/// The message of the InvalidArgument `fn` throws, or "no InvalidArgument".
inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "no InvalidArgument";
}

}  // namespace vigil::precision_test
