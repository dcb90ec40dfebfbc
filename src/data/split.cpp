#include "vigil/data/split.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <unordered_map>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/data/duplicates.h"

namespace vigil::data {

void SplitOptions::validate() const {
  VIGIL_CHECK(std::isfinite(val) && val >= 0 && val < 1, "expected val in [0, 1), got {}", val);
  VIGIL_CHECK(std::isfinite(test) && test >= 0 && test < 1, "expected test in [0, 1), got {}", test);
  VIGIL_CHECK(val + test < 1,
              "expected val + test < 1 (something must be left to train on), got {} + {} = {}", val, test,
              val + test);
  VIGIL_CHECK(near_duplicate_distance >= -1 && near_duplicate_distance <= 64,
              "expected near_duplicate_distance in -1..64 bits (-1: exact duplicates only), got {}",
              near_duplicate_distance);
  VIGIL_CHECK(mode == "random" || mode == "folders" || mode == "lists",
              "expected mode 'random', 'folders' or 'lists', got '{}'", mode);
  VIGIL_CHECK(
      mode != "folders" || (val_list.empty() && test_list.empty()),
      "expected val_list / test_list with mode 'lists' (or the default 'random', which they turn into "
      "'lists'), got them with mode 'folders'");
  VIGIL_CHECK(mode != "lists" || !val_list.empty() || !test_list.empty(),
              "expected val_list or test_list (files naming the samples) with mode 'lists', got neither");
}

namespace {

constexpr int kTrain = 0, kVal = 1, kTest = 2;
constexpr std::array<const char*, 3> kSplitNames = {"train", "val", "test"};

/// Uniform in [0, n) by rejection: the standard distributions are implementation-defined, mt19937_64's raw
/// output is not, so this keeps a seed's split identical across standard libraries.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n: the biased low values to reject
  uint64_t r = rng();
  while (r < threshold) r = rng();
  return r % n;
}

void fisher_yates(std::vector<int>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniform_below(rng, i)]);
}

/// Class ids a sample carries (in range only), ascending.
std::vector<int> sample_classes(const Dataset& ds, const Sample& s) {
  const int n = static_cast<int>(ds.classes.size());
  std::set<int> ids;
  if (ds.task == Task::kClassification) {
    if (s.label >= 0 && s.label < n) ids.insert(s.label);
  } else {
    for (const Box& b : s.boxes) {
      if (b.class_id >= 0 && b.class_id < n) ids.insert(b.class_id);
    }
  }
  return {ids.begin(), ids.end()};
}

/// Union-find root of sample i (path halving).
int find_root(std::vector<int>& parent, int i) {
  while (parent[i] != i) i = parent[i] = parent[parent[i]];
  return i;
}

/// Joins per-sample group ids with the caller's extra ids (samples sharing a non-negative id are one group);
/// the result is numbered in order of each group's first sample, as find_duplicates numbers its groups.
std::vector<int> join_groups(const std::vector<int>& group_of, const std::vector<int>& extra) {
  const int n = static_cast<int>(group_of.size());
  std::vector<int> parent(n);
  for (int i = 0; i < n; ++i) parent[i] = i;
  std::unordered_map<int, int> first_of_group, first_of_extra;
  for (int i = 0; i < n; ++i) {
    auto [g, new_g] = first_of_group.emplace(group_of[i], i);
    if (!new_g) parent[find_root(parent, i)] = find_root(parent, g->second);
    if (extra[i] < 0) continue;
    auto [e, new_e] = first_of_extra.emplace(extra[i], i);
    if (!new_e) parent[find_root(parent, i)] = find_root(parent, e->second);
  }
  std::unordered_map<int, int> id_of_root;
  std::vector<int> out(n);
  for (int i = 0; i < n; ++i)
    out[i] = id_of_root.emplace(find_root(parent, i), static_cast<int>(id_of_root.size())).first->second;
  return out;
}

/// Members of each group: duplicate groups (or one sample per group), joined with `extra_groups`.
std::vector<std::vector<int>> build_groups(const Dataset& ds, const SplitOptions& opt,
                                           const std::vector<int>& extra_groups) {
  const int n = static_cast<int>(ds.samples.size());
  std::vector<int> group_of(n);
  if (opt.group_duplicates) {
    group_of = find_duplicates(ds, opt.near_duplicate_distance).group_of;
  } else {
    for (int i = 0; i < n; ++i) group_of[i] = i;
  }
  if (!extra_groups.empty()) group_of = join_groups(group_of, extra_groups);
  std::vector<std::vector<int>> groups;
  for (int i = 0; i < n; ++i) {
    if (group_of[i] >= static_cast<int>(groups.size())) groups.resize(group_of[i] + 1);
    groups[group_of[i]].push_back(i);
  }
  return groups;
}

/// Stratum key per group: the rarest class any member carries (rare classes are the ones a random split
/// starves), -1 for groups with no class (empty detection images), 0 for everything when not stratifying.
std::vector<int> group_strata(const Dataset& ds, const std::vector<std::vector<int>>& groups, bool stratify) {
  std::vector<int> strata(groups.size(), 0);
  if (!stratify) return strata;
  std::vector<size_t> freq(ds.classes.size(), 0);
  std::vector<std::vector<int>> classes_of(ds.samples.size());
  for (size_t i = 0; i < ds.samples.size(); ++i) {
    classes_of[i] = sample_classes(ds, ds.samples[i]);
    for (int c : classes_of[i]) ++freq[c];
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    int best = -1;
    for (int i : groups[g]) {
      for (int c : classes_of[i]) {
        if (best < 0 || freq[c] < freq[best] || (freq[c] == freq[best] && c < best)) best = c;
      }
    }
    strata[g] = best;
  }
  return strata;
}

struct Targets {
  std::array<long long, 3> want{};
};

/// Per-stratum targets whose rounding remainder carries over to the next stratum, so each stratum is within
/// one sample of its exact share and the totals are within one sample of the requested fractions.
std::vector<Targets> stratum_targets(const std::vector<size_t>& sizes, const SplitOptions& opt) {
  std::vector<Targets> out(sizes.size());
  size_t before = 0;
  for (size_t k = 0; k < sizes.size(); ++k) {
    const size_t after = before + sizes[k];
    auto share = [&](double f) { return std::llround(f * after) - std::llround(f * before); };
    out[k].want[kVal] = share(opt.val);
    out[k].want[kTest] = share(opt.test);
    out[k].want[kTrain] = static_cast<long long>(sizes[k]) - out[k].want[kVal] - out[k].want[kTest];
    before = after;
  }
  return out;
}

/// Places one stratum's shuffled groups. The first group always goes to train (every class must be seen in
/// training, even a class with fewer groups than splits); each later group goes to the active split furthest
/// below its target, ties to the earlier split, so placement is a pure function of the shuffled order.
void place_stratum(const std::vector<int>& order, const std::vector<std::vector<int>>& groups,
                   const Targets& t, const std::array<bool, 3>& active, std::vector<int>& split_of_group) {
  std::array<long long, 3> have{};
  for (size_t k = 0; k < order.size(); ++k) {
    int best = kTrain;
    if (k > 0) {
      for (int s = kVal; s <= kTest; ++s) {
        if (active[s] && t.want[s] - have[s] > t.want[best] - have[best]) best = s;
      }
    }
    split_of_group[order[k]] = best;
    have[best] += static_cast<long long>(groups[order[k]].size());
  }
}

std::vector<int> random_assignment(const Dataset& ds, const std::vector<std::vector<int>>& groups,
                                   const SplitOptions& opt) {
  const std::vector<int> strata = group_strata(ds, groups, opt.stratify);
  std::map<int, std::vector<int>> by_stratum;  // ordered keys: the RNG is consumed in a fixed order
  for (size_t g = 0; g < groups.size(); ++g) by_stratum[strata[g]].push_back(static_cast<int>(g));
  std::vector<size_t> sizes;
  for (const auto& [key, gs] : by_stratum) {
    size_t n = 0;
    for (int g : gs) n += groups[g].size();
    sizes.push_back(n);
  }
  const auto targets = stratum_targets(sizes, opt);
  const std::array<bool, 3> active = {true, opt.val > 0, opt.test > 0};
  std::mt19937_64 rng(opt.seed);
  std::vector<int> split_of_group(groups.size(), kTrain);
  size_t k = 0;
  for (auto& [key, gs] : by_stratum) {
    fisher_yates(gs, rng);
    place_stratum(gs, groups, targets[k++], active, split_of_group);
  }
  std::vector<int> split_of(ds.samples.size(), -1);
  for (size_t g = 0; g < groups.size(); ++g) {
    for (int i : groups[g]) split_of[i] = split_of_group[g];
  }
  return split_of;
}

std::vector<int> folder_assignment(const Dataset& ds) {
  std::vector<int> split_of(ds.samples.size(), -1);
  std::vector<std::string> missing;
  for (size_t i = 0; i < ds.samples.size(); ++i) {
    const std::string& s = ds.samples[i].split;
    for (int k = kTrain; k <= kTest; ++k) {
      if (s == kSplitNames[k]) split_of[i] = k;
    }
    if (split_of[i] < 0) missing.push_back(ds.samples[i].file + (s.empty() ? "" : " (in '" + s + "')"));
  }
  if (missing.empty()) return split_of;
  const size_t shown = std::min<size_t>(missing.size(), 20);
  std::vector<std::string> head(missing.begin(), missing.begin() + static_cast<long>(shown));
  const std::string more =
      shown < missing.size() ? fmt::format(" ... and {} more", missing.size() - shown) : "";
  throw DataError(
      fmt::format("expected every sample under a train/, val/ or test/ folder for split mode "
                  "'folders', got {} without one: {}{}",
                  missing.size(), join(head, ", "), more));
}

/// Path components of a file name as a split list or a sample writes it ('\\' taken as '/').
std::vector<std::string> path_parts(std::string path) {
  std::replace(path.begin(), path.end(), '\\', '/');
  std::vector<std::string> parts;
  for (auto& p : split(path, '/'))
    if (!p.empty() && p != ".") parts.push_back(std::move(p));
  return parts;
}

/// True when the shorter of a and b is a component-wise suffix of the longer.
bool suffix_match(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  const size_t n = std::min(a.size(), b.size());
  return n > 0 && std::equal(a.end() - static_cast<long>(n), a.end(), b.end() - static_cast<long>(n));
}

/// Lists mode: samples named by opt.val_list / opt.test_list go there, the rest to train.
std::vector<int> list_assignment(const Dataset& ds, const SplitOptions& opt) {
  std::unordered_map<std::string, std::vector<int>> by_name;  // file name -> samples
  std::vector<std::vector<std::string>> sample_parts(ds.samples.size());
  for (size_t i = 0; i < ds.samples.size(); ++i) {
    sample_parts[i] = path_parts(ds.samples[i].file);
    if (!sample_parts[i].empty()) by_name[sample_parts[i].back()].push_back(static_cast<int>(i));
  }
  std::vector<int> split_of(ds.samples.size(), kTrain);
  std::vector<std::string> listed_by(ds.samples.size());
  for (const auto& [k, file] : {std::pair<int, std::string>{kVal, opt.val_list}, {kTest, opt.test_list}}) {
    if (file.empty()) continue;
    const auto lines = split(read_file(file), '\n');
    for (size_t n = 0; n < lines.size(); ++n) {
      const std::string entry(trim(lines[n]));
      if (entry.empty() || entry[0] == '#') continue;
      const std::string where = fmt::format("{}:{}", file, n + 1);
      const auto parts = path_parts(entry);
      std::vector<int> hits;
      if (!parts.empty()) {
        auto it = by_name.find(parts.back());
        if (it != by_name.end())
          for (int i : it->second)
            if (suffix_match(parts, sample_parts[i])) hits.push_back(i);
      }
      if (hits.empty()) throw DataError(fmt::format("{}: '{}' is not a sample of the dataset", where, entry));
      if (hits.size() > 1) {
        std::vector<std::string> names;
        for (int i : hits) names.push_back(ds.samples[i].file);
        throw DataError(fmt::format("{}: '{}' names {} samples ({}); give more of the path", where, entry,
                                    hits.size(), join(names, ", ")));
      }
      const int i = hits.front();
      if (!listed_by[i].empty() && split_of[i] != k)
        throw DataError(fmt::format("{}: '{}' is also listed at {} for the {} list", where, entry,
                                    listed_by[i], kSplitNames[split_of[i]]));
      split_of[i] = k;
      listed_by[i] = where;
    }
  }
  return split_of;
}

void fill_result(const Dataset& ds, const std::vector<std::vector<int>>& groups,
                 const std::vector<int>& split_of, SplitResult& r) {
  std::array<std::vector<int>*, 3> lists = {&r.train, &r.val, &r.test};
  for (size_t i = 0; i < split_of.size(); ++i) {
    VIGIL_ASSERT(split_of[i] >= kTrain && split_of[i] <= kTest, "sample {} was not placed in a split", i);
    lists[split_of[i]]->push_back(static_cast<int>(i));
  }
  VIGIL_ASSERT(r.train.size() + r.val.size() + r.test.size() == ds.samples.size(), "split lost samples");
  for (const auto& g : groups) {
    if (g.size() < 2) continue;
    ++r.groups;
    r.grouped_samples += g.size();
    for (int i : g) {
      if (split_of[i] != split_of[g.front()]) {
        ++r.straddling_groups;
        break;
      }
    }
  }
  for (size_t i = 0; i < ds.samples.size(); ++i) {
    const auto ids = sample_classes(ds, ds.samples[i]);
    if (ids.empty()) {
      ++r.class_counts[ds.task == Task::kDetection ? "(empty)" : "(unlabelled)"][split_of[i]];
    }
    for (int c : ids) ++r.class_counts[ds.classes[c]][split_of[i]];
  }
}

}  // namespace

nlohmann::json SplitResult::summary() const {
  nlohmann::json j;
  j["mode"] = mode;
  j["counts"] = {{"train", train.size()}, {"val", val.size()}, {"test", test.size()}};
  auto& classes = j["classes"] = nlohmann::json::object();
  for (const auto& [name, c] : class_counts)
    classes[name] = {{"train", c[kTrain]}, {"val", c[kVal]}, {"test", c[kTest]}};
  j["duplicate_groups"] = groups;
  j["grouped_samples"] = grouped_samples;
  j["straddling_groups"] = straddling_groups;
  return j;
}

SplitResult split_dataset(const Dataset& ds, const SplitOptions& opt) {
  return split_dataset(ds, opt, {});
}

SplitResult split_dataset(const Dataset& ds, const SplitOptions& opt, const std::vector<int>& extra_groups) {
  opt.validate();
  VIGIL_CHECK(extra_groups.empty() || extra_groups.size() == ds.samples.size(),
              "expected one extra group id per sample ({}), got {}", ds.samples.size(), extra_groups.size());
  SplitResult r;
  // Lists given are the split asked for, whether or not mode says 'lists'.
  const bool lists = opt.mode == "lists" || !opt.val_list.empty() || !opt.test_list.empty();
  r.mode = lists ? "lists" : opt.mode;
  const auto groups = build_groups(ds, opt, extra_groups);
  const auto split_of = opt.mode == "folders" ? folder_assignment(ds)
                        : lists               ? list_assignment(ds, opt)
                                              : random_assignment(ds, groups, opt);
  fill_result(ds, groups, split_of, r);
  return r;
}

std::vector<int> split_sample_indices(const Dataset& ds, const std::vector<std::string>& files,
                                      const std::string& where) {
  std::unordered_map<std::string, int> index_of;
  for (size_t i = 0; i < ds.samples.size(); ++i) index_of.emplace(ds.samples[i].file, static_cast<int>(i));
  std::vector<int> out;
  out.reserve(files.size());
  for (const auto& f : files) {
    auto it = index_of.find(f);
    if (it == index_of.end()) {
      throw DataError(fmt::format(
          "{}: lists '{}', which is not a sample of the dataset (split made for another version?); "
          "make the split again with `vigil data split`",
          where, f));
    }
    out.push_back(it->second);
  }
  return out;
}

}  // namespace vigil::data
