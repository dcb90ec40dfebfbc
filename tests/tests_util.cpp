#include "tests_util.h"

#include <fmt/format.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>

namespace vigil::testing {

TempDir::TempDir() {
  std::random_device rd;
  path_ = fs::temp_directory_path() / ("vigil_test_" + std::to_string(rd()) + std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::optional<fs::path> shared_dataset(const std::string& name) {
  std::vector<fs::path> roots;
  if (const char* env = std::getenv("VIGIL_SHARED_DIR"); env && *env) roots.emplace_back(env);
  roots.emplace_back(fs::path(VIGIL_SOURCE_DIR) / ".." / "shared");
  for (const auto& r : roots) {
    auto p = r / "datasets" / name;
    if (fs::is_directory(p)) return fs::canonical(p);
  }
  return std::nullopt;
}

void write_text(const fs::path& path, const std::string& content) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << content;
}

void write_image(const fs::path& path, int width, int height, int seed) {
  cv::Mat img(height, width, CV_8UC3);
  cv::RNG rng(static_cast<uint64_t>(seed) + 1);
  rng.fill(img, cv::RNG::UNIFORM, cv::Scalar::all(0), cv::Scalar::all(255));
  cv::GaussianBlur(img, img, cv::Size(0, 0), 3);
  cv::circle(img, {width / 2, height / 2}, std::max(1, std::min(width, height) / 4),
             cv::Scalar(seed * 37 % 255, 200, 50), -1);
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  cv::imwrite(path.string(), img);
}

namespace {
std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
}  // namespace

std::pair<int, std::string> run_shell(const std::string& command) {
  TempDir io;
  std::string cmd = command + " > '" + (io / "out").string() + "' 2>&1 < /dev/null";
  int status = std::system(cmd.c_str());
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return {code, slurp(io / "out")};
}

std::optional<std::string> reference_python() {
  static const std::optional<std::string> found = []() -> std::optional<std::string> {
    for (const char* py : {"/usr/bin/python3", "python3"}) {
      auto [code, out] = run_shell(std::string(py) + " -c 'import torch, torchvision'");
      if (code == 0) return std::string(py);
    }
    return std::nullopt;
  }();
  return found;
}

CommandResult run_vigil(const std::string& args, const fs::path& workspace) {
  TempDir io;
  const std::string cmd = fmt::format("'{}' --workspace '{}' {} > '{}' 2> '{}' < /dev/null", VIGIL_BINARY,
                                      workspace.string(), args, (io / "out").string(), (io / "err").string());
  int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(io / "out");
  r.err = slurp(io / "err");
  return r;
}

}  // namespace vigil::testing
