#pragma once
/// Published weights by name: `torchvision:ARCH/WEIGHTS` (torchvision 0.14's Weights enums, `DEFAULT`
/// included) or a plain http(s) URL, fetched once into torch.hub's own cache folder and checked as torch.hub
/// does (the SHA-256 prefix in the file name), then reused offline. Users who already ran torchvision share
/// the same files; a machine without network needs the file copied into that folder, and the error says
/// where.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::model {

/// The prefix of a published weights name in model.weights and on the command line.
inline constexpr std::string_view kTorchvisionPrefix = "torchvision:";
/// Where torchvision downloads its weights from; VIGIL_WEIGHTS_URL replaces it (mirrors, tests).
inline constexpr std::string_view kDefaultWeightsUrl = "https://download.pytorch.org/models/";

/// One member of a torchvision Weights enum for an architecture of vigil's zoo.
struct PublishedWeights {
  std::string_view arch;  ///< zoo and torchvision builder name, e.g. "mobilenet_v3_large"
  std::string_view name;  ///< enum member, e.g. "IMAGENET1K_V1", "COCO_V1"
  std::string_view file;  ///< file name under the base URL, carrying torch.hub's hash prefix
  bool is_default;        ///< what the enum's DEFAULT alias points at
};

/// Every published weights entry of the zoo's architectures, in torchvision's enum order per architecture.
const std::vector<PublishedWeights>& published_weights();
/// "torchvision:ARCH/NAME".
std::string published_weights_ref(const PublishedWeights& w);
/// True when `ref` names published weights ("torchvision:...").
bool is_published_weights_ref(std::string_view ref);
/// True when `ref` is an http:// or https:// URL.
bool is_weights_url(std::string_view ref);
/// "torchvision:ARCH/NAME" (NAME may be DEFAULT) -> its entry. InvalidArgument listing the valid names of the
/// architecture, or the architectures with published weights when ARCH has none.
const PublishedWeights& find_published_weights(std::string_view ref);

/// torch.hub's hash prefix of a file name (HASH_REGEX `-([a-f0-9]*)\.`, first match): "8738ca79" for
/// "mobilenet_v3_large-8738ca79.pth"; "" when the name has none (then nothing is checked).
std::string hash_prefix_of(std::string_view file_name);

/// The cache folder: $VIGIL_WEIGHTS_CACHE, else torch.hub's ($TORCH_HOME/hub/checkpoints, else
/// $XDG_CACHE_HOME/torch/hub/checkpoints, else ~/.cache/torch/hub/checkpoints).
std::filesystem::path weights_cache_dir();
/// $VIGIL_WEIGHTS_URL, else kDefaultWeightsUrl; always ending in '/'.
std::string weights_base_url();

/// How weights are fetched. Defaults suit a user's machine; tests shorten the timeouts.
struct FetchOptions {
  std::filesystem::path cache_dir;  ///< empty: weights_cache_dir()
  std::string base_url;             ///< empty: weights_base_url()
  int connect_timeout_s = 20;
  /// A transfer slower than low_speed_bytes_per_s for low_speed_time_s is abandoned (a stalled server); there
  /// is no overall limit, since a large file on a slow link is fine as long as it moves.
  int low_speed_bytes_per_s = 1024;
  int low_speed_time_s = 30;
  bool progress = true;  ///< a bar on a terminal, periodic lines otherwise (stderr)
  void validate() const;
};

/// The local copy of published weights: the cached file when present (its hash prefix checked), else
/// downloaded from the base URL into a temporary file in the cache folder, checked, and renamed into place.
/// Throws Unavailable (network down, connection dropped, stalled; the message says how to work offline),
/// DataError (the bytes do not match the hash in the file name: nothing is kept), NotFound (HTTP 404),
/// IoError (cache folder not writable), Interrupted (Ctrl-C).
std::filesystem::path fetch_published_weights(const PublishedWeights& w, const FetchOptions& options = {});
/// The same for any URL (torch.hub's load_state_dict_from_url): cached under the URL's file name, checked
/// against the hash prefix in that name when it has one.
std::filesystem::path fetch_weights_url(const std::string& url, const FetchOptions& options = {});
/// The cache path published weights have (or would have); never downloads.
std::filesystem::path cached_weights_path(const PublishedWeights& w, const FetchOptions& options = {});

/// A weights argument as a local file: "torchvision:ARCH/NAME" and URLs are fetched; anything else is a path
/// and is returned unchanged.
std::string resolve_weights(const std::string& ref, const FetchOptions& options = {});

}  // namespace vigil::model
