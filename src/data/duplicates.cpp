#include "vigil/data/duplicates.h"

#include <algorithm>
#include <array>
#include <numeric>
#include <string>
#include <unordered_map>

#include "vigil/core/error.h"
#include "vigil/image/phash.h"

namespace vigil::data {

namespace {

/// Disjoint sets over sample indices (path halving, union by size).
class UnionFind {
 public:
  explicit UnionFind(size_t n) : parent_(n), size_(n, 1) { std::iota(parent_.begin(), parent_.end(), 0); }
  int find(int x) {
    while (parent_[x] != x) x = parent_[x] = parent_[parent_[x]];
    return x;
  }
  void unite(int a, int b) {
    a = find(a), b = find(b);
    if (a == b) return;
    if (size_[a] < size_[b]) std::swap(a, b);
    parent_[b] = a;
    size_[a] += size_[b];
  }

 private:
  std::vector<int> parent_;
  std::vector<int> size_;
};

// Multi-index hashing (generalised pigeonhole): cut the 64 bits into m bands; if two hashes differ in at most
// r bits, at least one band differs in at most floor(r / m) bits. Each hash is looked up under every value
// within that radius of each of its bands, so only pairs agreeing closely on some band are ever compared.
// m = r + 1 (radius 0: candidates share an identical band) is the textbook scheme, but for r around 10 it
// gives ~6-bit bands with ~n/64 hashes per bucket, i.e. still quadratic; four 16-bit bands with radius
// floor(r/4) keep buckets sparse (137 lookups per band at r = 10) and the candidate count near-linear.
constexpr int kMaxBands = 4;

struct Bands {
  int count = 1;
  int radius = 0;
  std::array<int, kMaxBands> start{}, width{};
  uint64_t value(uint64_t h, int b) const {
    const uint64_t mask = width[b] == 64 ? ~uint64_t{0} : (uint64_t{1} << width[b]) - 1;
    return (h >> start[b]) & mask;
  }
  /// The first band on which a and b are within the radius: the one band that reports the pair.
  int first_close_band(uint64_t a, uint64_t b) const {
    for (int k = 0; k < count; ++k) {
      if (image::hamming(value(a, k), value(b, k)) <= radius) return k;
    }
    return -1;
  }
};

Bands make_bands(int max_hamming) {
  Bands bands;
  bands.count = std::min(max_hamming + 1, kMaxBands);
  bands.radius = max_hamming / bands.count;
  int start = 0;
  for (int k = 0; k < bands.count; ++k) {
    bands.start[k] = start;
    bands.width[k] = 64 / bands.count + (k < 64 % bands.count ? 1 : 0);
    start += bands.width[k];
  }
  return bands;
}

/// Calls f(v') for every v' of `width` bits within `radius` bit flips of v, each exactly once.
template <class F>
void for_each_neighbour(uint64_t v, int width, int radius, int from_bit, F& f) {
  f(v);
  if (radius == 0) return;
  for (int bit = from_bit; bit < width; ++bit)
    for_each_neighbour(v ^ (uint64_t{1} << bit), width, radius - 1, bit + 1, f);
}

std::vector<std::pair<int, int>> exact_duplicate_pairs(const Dataset& ds) {
  std::vector<std::pair<int, int>> pairs;
  std::unordered_map<std::string, int> first;
  for (int i = 0; i < static_cast<int>(ds.samples.size()); ++i) {
    const auto& h = ds.samples[i].hash;
    if (h.empty()) continue;
    auto [it, inserted] = first.emplace(h, i);
    if (!inserted) pairs.emplace_back(it->second, i);
  }
  return pairs;
}

std::vector<std::pair<int, int>> near_duplicate_pairs(const Dataset& ds, int max_hamming) {
  std::vector<int> ids;  // inspected, decodable images only: a failed decode has no meaningful phash
  for (int i = 0; i < static_cast<int>(ds.samples.size()); ++i) {
    const auto& c = ds.samples[i].check;
    if (c.inspected && c.problem_kind.empty()) ids.push_back(i);
  }
  const Bands bands = make_bands(max_hamming);
  std::array<std::unordered_map<uint64_t, std::vector<int>>, kMaxBands> buckets;
  for (int b = 0; b < bands.count; ++b) {
    for (int i : ids) buckets[b][bands.value(ds.samples[i].check.phash, b)].push_back(i);  // ascending i
  }
  std::vector<std::pair<int, int>> pairs;
  for (int i : ids) {
    const Sample& a = ds.samples[i];
    for (int b = 0; b < bands.count; ++b) {
      auto visit = [&](uint64_t v) {
        auto it = buckets[b].find(v);
        if (it == buckets[b].end()) return;
        for (auto j = std::upper_bound(it->second.begin(), it->second.end(), i); j != it->second.end(); ++j) {
          const Sample& c = ds.samples[*j];
          if (bands.first_close_band(a.check.phash, c.check.phash) != b)
            continue;  // reported by another band
          if (image::hamming(a.check.phash, c.check.phash) > max_hamming) continue;
          if (!a.hash.empty() && a.hash == c.hash) continue;  // exact copies are reported as exact only
          pairs.emplace_back(i, *j);
        }
      };
      for_each_neighbour(bands.value(a.check.phash, b), bands.width[b], bands.radius, 0, visit);
    }
  }
  std::sort(pairs.begin(), pairs.end());
  return pairs;
}

}  // namespace

int DuplicateGroups::multi_groups() const {
  std::vector<int> size(n_groups, 0);
  for (int g : group_of) ++size[g];
  return static_cast<int>(std::count_if(size.begin(), size.end(), [](int s) { return s > 1; }));
}

DuplicateGroups find_duplicates(const Dataset& ds, int max_hamming) {
  VIGIL_CHECK(max_hamming <= 64,
              "expected a near-duplicate distance of at most 64 bits (or < 0 to disable), got {}",
              max_hamming);
  DuplicateGroups out;
  out.exact_pairs = exact_duplicate_pairs(ds);
  if (max_hamming >= 0) out.near_pairs = near_duplicate_pairs(ds, max_hamming);

  const size_t n = ds.samples.size();
  UnionFind uf(n);
  for (auto [a, b] : out.exact_pairs) uf.unite(a, b);
  for (auto [a, b] : out.near_pairs) uf.unite(a, b);
  std::vector<int> id_of_root(n, -1);
  out.group_of.resize(n);
  for (size_t i = 0; i < n; ++i) {
    int& id = id_of_root[uf.find(static_cast<int>(i))];
    if (id < 0) id = out.n_groups++;
    out.group_of[i] = id;
  }
  return out;
}

}  // namespace vigil::data
