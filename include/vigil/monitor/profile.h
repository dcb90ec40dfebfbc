#pragma once
/// A reference profile: what the training data looks like to drift monitoring. One row per image with its
/// statistics (image_stats.h) and its labels (a classifier's class, a detector's box labels), read from any
/// dataset vigil reads, and saved as JSON beside a model or given to `vigil monitor report --reference`.

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "vigil/data/dataset.h"
#include "vigil/data/formats.h"
#include "vigil/monitor/image_stats.h"

namespace vigil::monitor {

/// What the model answered for one reference image: the output distribution traffic is compared with, the
/// model against itself, so a shift in its answers shows even where the data's labels and its answers differ.
struct ModelOutput {
  std::vector<std::string> labels;  ///< classification: the top-1 class; detection: one per box
  std::vector<double> scores;       ///< classification: the top-1 probability; detection: one per box
  std::vector<double> embedding;    ///< the model's image embedding (model/embedding.h); empty = none
};

struct ProfileRow {
  ImageStats stats;
  std::vector<std::string> labels;    ///< classification: one; detection: one per box (maybe none)
  std::optional<ModelOutput> output;  ///< the model's answer, when the profile was made with a model
};

/// Predicts one decoded (BGR) image for a profile; supplied by the caller (monitor stays torch-free).
using ProfilePredict = std::function<ModelOutput(const cv::Mat& bgr)>;

struct Profile {
  std::string source;  ///< the dataset it was made from
  std::string model;   ///< the model whose answers `output` holds ("" = none)
  std::string task;    ///< "classification" or "detection"
  std::vector<std::string> classes;
  std::vector<ProfileRow> rows;
  int skipped = 0;  ///< images that could not be decoded (named in the log)
};

/// Reads the dataset at `root` (format "auto" or a name) and profiles at most `max_images` of its images
/// (evenly spread; 0 = all). `progress(done, total)` is called as it goes. Throws what read_dataset throws
/// for a folder that is not a dataset; an undecodable image is skipped, counted and named in the log.
/// With `predict`, every profiled image's row also gets the model's answer (ProfileRow::output).
Profile profile_dataset(const std::filesystem::path& root, const std::string& format = "auto",
                        size_t max_images = 0, const std::function<void(size_t, size_t)>& progress = {},
                        const ProfilePredict& predict = {});

/// Profiles the samples `indices` of a loaded dataset (at most `max_images` of them, evenly spread; 0 = all),
/// each image read from `images(sample)`: what profile_dataset does after reading the folder, and what a
/// training run does with its validation split (train/run_profile.h). `source` names the data in the profile.
Profile profile_samples(const data::Dataset& ds, const std::vector<size_t>& indices,
                        const data::ImageSource& images, const std::string& source, size_t max_images = 0,
                        const std::function<void(size_t, size_t)>& progress = {},
                        const ProfilePredict& predict = {});

nlohmann::json to_json(const Profile& p);
/// Reads what to_json wrote; InvalidArgument naming the field for anything else.
Profile profile_from_json(const nlohmann::json& j);
/// Reads a profile file (JSON), or profiles a dataset folder when `path` is a folder.
Profile load_reference(const std::filesystem::path& path, size_t max_images = 0);

/// Where a model file's own profile lives: beside it, `<stem>.profile.json` (a run's weights/best.ckpt has
/// weights/best.profile.json, written when training ends; a registered version's object has its copy).
std::filesystem::path profile_path_for(const std::filesystem::path& model_file);

}  // namespace vigil::monitor
