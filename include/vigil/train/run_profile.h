#pragma once
/// The reference profile a trained model carries for drift monitoring (monitor/profile.h): its validation
/// split's images with their statistics and labels, and the model's own answers and image embeddings on them
/// (the output distribution and embeddings the served traffic is compared with). The trainer writes it beside
/// the weights when a run ends (weights/best.profile.json); registering the run stores it with the version
/// (model_registry.h), so `vigil monitor report --reference NAME@alias` and `vigil serve --monitor-reference
/// model` find it without a separate profiling step.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "vigil/data/dataset.h"
#include "vigil/data/formats.h"
#include "vigil/model/predict.h"
#include "vigil/monitor/profile.h"

namespace vigil::train {

/// Images of the validation split a run profiles at most (evenly spread): enough for the drift tests,
/// seconds for a classifier, about a minute for a detector on two cores.
constexpr size_t kRunProfileImages = 300;

/// One image's answer as the server logs it (top-1 class and probability, or the boxes' labels and scores;
/// the embedding rounded as the log rounds it), for monitor::profile_samples / profile_dataset. `predictor`
/// must have been made with PredictOptions::embed for the embedding.
monitor::ProfilePredict profile_predictor(std::shared_ptr<model::Predictor> predictor);

/// Profiles `indices` of `ds` with the model in `weights` and writes monitor::profile_path_for(weights);
/// returns that path. Clip models have no image profile: returns an empty path.
std::filesystem::path write_model_profile(const std::filesystem::path& weights, const data::Dataset& ds,
                                          const std::vector<size_t>& indices, const data::ImageSource& images,
                                          const std::string& source, size_t max_images = kRunProfileImages);

}  // namespace vigil::train
