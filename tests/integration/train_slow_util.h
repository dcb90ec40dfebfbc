#pragma once
// Helpers of the must-show training runs on ../shared/datasets (train_*_slow_test.cpp).

#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace vigil::testing {

namespace fs = std::filesystem;

/// results.csv as one map per epoch row.
inline std::vector<std::map<std::string, double>> read_results(const fs::path& file) {
  std::vector<std::string> header;
  std::vector<std::map<std::string, double>> rows;
  for (const auto& line : vigil::split(vigil::read_file(file), '\n')) {
    if (line.empty()) continue;
    const auto cells = vigil::split(line, ',');
    if (header.empty()) {
      for (const auto& c : cells) header.emplace_back(vigil::trim(c));
      continue;
    }
    std::map<std::string, double> row;
    for (size_t i = 0; i < cells.size() && i < header.size(); ++i) {
      if (auto v = vigil::parse_double(vigil::trim(cells[i]))) row[header[i]] = *v;
    }
    rows.push_back(row);
  }
  return rows;
}

inline std::string example(const std::string& name) {
  return (fs::path(VIGIL_SOURCE_DIR) / "examples" / "train" / name).string();
}

inline void print_rows(const std::string& what, const std::vector<std::map<std::string, double>>& rows,
                       const std::vector<std::string>& columns) {
  std::cout << what << "\n";
  for (const auto& row : rows) {
    std::string line = fmt::format("  epoch {:>2}", row.at("epoch"));
    for (const auto& c : columns) line += fmt::format("  {} {:.4f}", c, row.count(c) ? row.at(c) : -1.0);
    std::cout << line << "\n";
  }
}

}  // namespace vigil::testing
