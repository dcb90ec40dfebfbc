#include "vigil/model/published_weights.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/core/interrupt.h"
#include "vigil/core/progress.h"
#include "vigil/core/strings.h"

namespace vigil::model {
namespace {

// torchvision 0.14's Weights enums (torchvision/models/*.py and models/detection/*.py) for the architectures
// of vigil's zoo, copied by hand; tests/unit/model/check_published_weights.py compares this table with the
// installed torchvision so that the two cannot drift apart.
const std::vector<PublishedWeights> kPublished = {
    {"mobilenet_v2", "IMAGENET1K_V1", "mobilenet_v2-b0353104.pth", false},
    {"mobilenet_v2", "IMAGENET1K_V2", "mobilenet_v2-7ebf99e0.pth", true},
    {"mobilenet_v3_large", "IMAGENET1K_V1", "mobilenet_v3_large-8738ca79.pth", false},
    {"mobilenet_v3_large", "IMAGENET1K_V2", "mobilenet_v3_large-5c1a4163.pth", true},
    {"mobilenet_v3_small", "IMAGENET1K_V1", "mobilenet_v3_small-047dcff4.pth", true},
    {"resnet18", "IMAGENET1K_V1", "resnet18-f37072fd.pth", true},
    {"resnet50", "IMAGENET1K_V1", "resnet50-0676ba61.pth", false},
    {"resnet50", "IMAGENET1K_V2", "resnet50-11ad3fa6.pth", true},
    {"fasterrcnn_resnet50_fpn", "COCO_V1", "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth", true},
    {"fasterrcnn_mobilenet_v3_large_fpn", "COCO_V1", "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth", true},
    {"fasterrcnn_mobilenet_v3_large_320_fpn", "COCO_V1", "fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth",
     true},
    {"ssdlite320_mobilenet_v3_large", "COCO_V1", "ssdlite320_mobilenet_v3_large_coco-a79551df.pth", true},
};

constexpr std::string_view kDefaultAlias = "DEFAULT";

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

fs::path home_dir() {
  if (auto home = env_or_empty("HOME"); !home.empty()) return home;
  if (const passwd* pw = getpwuid(getuid()); pw != nullptr && pw->pw_dir != nullptr) return pw->pw_dir;
  throw InvalidArgument(
      "expected a home folder for the weights cache (HOME), got none; set VIGIL_WEIGHTS_CACHE or TORCH_HOME");
}

/// Python's os.path.expanduser for the forms torch.hub meets: "~" and "~/...".
fs::path expand_user(const std::string& p) {
  if (p == "~") return home_dir();
  if (starts_with(p, "~/")) return home_dir() / p.substr(2);
  return p;
}

std::string with_trailing_slash(std::string url) {
  if (url.empty() || url.back() != '/') url += '/';
  return url;
}

std::vector<std::string> published_archs() {
  std::vector<std::string> out;
  for (const auto& w : kPublished) {
    if (std::find(out.begin(), out.end(), w.arch) == out.end()) out.emplace_back(w.arch);
  }
  return out;
}

/// "IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT (= IMAGENET1K_V2)".
std::string weights_names_of(std::string_view arch) {
  std::vector<std::string> names;
  std::string default_name;
  for (const auto& w : kPublished) {
    if (w.arch != arch) continue;
    names.emplace_back(w.name);
    if (w.is_default) default_name = w.name;
  }
  names.push_back(fmt::format("{} (= {})", kDefaultAlias, default_name));
  return join(names, ", ");
}

/// What to do without network, appended to every "could not download" message.
std::string offline_hint(const std::string& url, const fs::path& dest) {
  return fmt::format(
      "; without network access, copy {} (from {}, or from torch.hub's cache folder of a machine that has "
      "it) "
      "to {}, or set VIGIL_WEIGHTS_URL to a mirror",
      dest.filename().string(), url, to_utf8(dest));
}

/// A temporary file in the destination folder (so the final rename is atomic), removed unless committed:
/// an error, a dropped connection or Ctrl-C never leaves a partial file behind.
class PartialFile {
 public:
  PartialFile(const fs::path& dir, const std::string& file_name) {
    std::string pattern = to_utf8(dir / ("." + file_name + ".XXXXXX.part"));
    fd_ = mkstemps(pattern.data(), 5);
    if (fd_ < 0)
      throw IoError(fmt::format("cannot create a file in the weights cache {}: {}", to_utf8(dir),
                                std::strerror(errno)));
    path_ = pattern;
  }
  ~PartialFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) {
      std::error_code ec;
      fs::remove(path_, ec);
    }
  }
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;

  int fd() const { return fd_; }
  const fs::path& path() const { return path_; }

  /// Flushes to disk and renames into place; readers see the whole file or none.
  void commit(const fs::path& dest) {
    // mkstemp makes the file private (0600); a cache file is readable like any other download.
    if (::fchmod(fd_, 0644) != 0 || ::fsync(fd_) != 0 || ::close(fd_) != 0) {
      fd_ = -1;
      throw IoError(fmt::format("cannot write {}: {}", to_utf8(path_), std::strerror(errno)));
    }
    fd_ = -1;
    std::error_code ec;
    fs::rename(path_, dest, ec);
    if (ec)
      throw IoError(fmt::format("cannot move {} to {}: {}", to_utf8(path_), to_utf8(dest), ec.message()));
    committed_ = true;
  }

 private:
  fs::path path_;
  int fd_ = -1;
  bool committed_ = false;
};

/// The state libcurl's callbacks share: the file being written, its running hash and the progress display.
struct Transfer {
  int fd = -1;
  Hasher sha256;
  size_t bytes = 0;
  std::string write_error;
  bool show_progress = true;
  std::string label;
  std::unique_ptr<Progress> progress;
  size_t shown_kib = 0;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * count;
  for (size_t done = 0; done < len;) {
    const ssize_t n = ::write(t->fd, data + done, len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      t->write_error = std::strerror(errno);
      return 0;  // libcurl stops with CURLE_WRITE_ERROR
    }
    done += static_cast<size_t>(n);
  }
  t->sha256.update(std::string_view(data, len));
  t->bytes += len;
  return len;
}

// libcurl calls this about once a second even when no byte arrives, so Ctrl-C is honoured on a stalled link.
int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (interrupt_requested()) return 1;  // CURLE_ABORTED_BY_CALLBACK
  if (!t->show_progress || (total <= 0 && now <= 0)) return 0;
  if (!t->progress)
    t->progress = std::make_unique<Progress>(
        t->label, static_cast<size_t>(std::max<curl_off_t>(total, 0) / 1024), "KiB");
  const auto kib = static_cast<size_t>(now / 1024);
  if (kib > t->shown_kib) {
    t->progress->advance(kib - t->shown_kib);
    t->shown_kib = kib;
  }
  return 0;
}

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) throw InternalError(fmt::format("curl_global_init: {}", curl_easy_strerror(rc)));
  });
}

using CurlHandle = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;

CurlHandle make_handle(const std::string& url, Transfer& t, char* error_buffer, const FetchOptions& o) {
  CurlHandle h(curl_easy_init(), &curl_easy_cleanup);
  if (!h) throw InternalError("curl_easy_init failed");
  CURL* c = h.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);  // a 404 page must never become a weights file
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);     // timeouts without SIGALRM: safe beside other threads
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(o.connect_timeout_s));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(o.low_speed_bytes_per_s));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(o.low_speed_time_s));
  curl_easy_setopt(c, CURLOPT_USERAGENT, "vigil");
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  return h;
}

/// Maps a failed transfer to vigil's taxonomy; never returns.
[[noreturn]] void throw_transfer_error(CURL* c, CURLcode rc, const char* error_buffer, const Transfer& t,
                                       const std::string& url, const fs::path& dest) {
  const std::string why = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc);
  if (rc == CURLE_ABORTED_BY_CALLBACK) throw Interrupted(fmt::format("download of {} interrupted", url));
  if (rc == CURLE_WRITE_ERROR && !t.write_error.empty())
    throw IoError(fmt::format("cannot write {} into the weights cache {}: {}", url,
                              to_utf8(dest.parent_path()), t.write_error));
  if (rc == CURLE_HTTP_RETURNED_ERROR) {
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    const std::string msg = fmt::format("cannot download {}: the server answered HTTP {}", url, status);
    if (status == 404 || status == 410)
      throw NotFound(msg + " (no such file there; check VIGIL_WEIGHTS_URL when set)" +
                     offline_hint(url, dest));
    throw Unavailable(msg + offline_hint(url, dest));
  }
  const std::string received = t.bytes > 0 ? fmt::format(" after {} bytes", t.bytes) : "";
  throw Unavailable(fmt::format("cannot download {} (not in the cache yet){}: {}", url, received, why) +
                    offline_hint(url, dest));
}

/// Downloads `url` to `dest` through a partial file beside it, checking the SHA-256 prefix (when non-empty).
void download(const std::string& url, const fs::path& dest, const std::string& prefix,
              const FetchOptions& o) {
  init_curl_once();
  ensure_dir(dest.parent_path());
  PartialFile part(dest.parent_path(), dest.filename().string());
  Transfer t;
  t.fd = part.fd();
  t.show_progress = o.progress;
  t.label = dest.filename().string();
  char error_buffer[CURL_ERROR_SIZE] = {0};
  CurlHandle h = make_handle(url, t, error_buffer, o);
  spdlog::info("downloading {} to {}", url, to_utf8(dest));
  const CURLcode rc = curl_easy_perform(h.get());
  if (t.progress) t.progress->finish();
  if (rc != CURLE_OK) throw_transfer_error(h.get(), rc, error_buffer, t, url, dest);
  const std::string digest = t.sha256.hex();
  if (digest.compare(0, prefix.size(), prefix) != 0) {
    throw DataError(
        fmt::format("downloaded {} ({} bytes) but its SHA-256 is {}, not starting with {} as the file name "
                    "says: a corrupted "
                    "download or a wrong file on the server; nothing was kept",
                    url, t.bytes, digest, prefix));
  }
  part.commit(dest);
  spdlog::info("{}: {} bytes, SHA-256 {}{}", to_utf8(dest), t.bytes, digest.substr(0, 16),
               prefix.empty() ? " (no hash in the file name to check)" : " (matches the file name)");
}

/// A file name safe to join to the cache folder: no separators, no "." or "..".
void check_file_name(const std::string& file, const std::string& url) {
  VIGIL_CHECK(!file.empty() && file != "." && file != ".." && file.find('/') == std::string::npos &&
                  file.find('\\') == std::string::npos,
              "expected a URL ending in a file name (e.g. .../resnet18-f37072fd.pth), got '{}'", url);
}

fs::path fetch(const std::string& url, const std::string& file, const FetchOptions& o) {
  o.validate();
  check_file_name(file, url);
  const fs::path dest = (o.cache_dir.empty() ? weights_cache_dir() : o.cache_dir) / file;
  const std::string prefix = hash_prefix_of(file);
  std::error_code ec;
  if (fs::exists(dest, ec)) {
    // A cached file is checked on every use (well under a second for the largest): a truncated copy or
    // another file under this name is reported here rather than as a confusing unpickling error.
    const std::string digest = prefix.empty() ? std::string() : hash_file(dest);
    if (digest.compare(0, prefix.size(), prefix) != 0) {
      throw DataError(
          fmt::format("{} is in the weights cache but its SHA-256 is {}, not starting with {} as its name "
                      "says (damaged or "
                      "another file); delete it and vigil downloads it again from {}",
                      to_utf8(dest), digest, prefix, url));
    }
    spdlog::debug("weights {} from the cache {}", url, to_utf8(dest));
    return dest;
  }
  download(url, dest, prefix, o);
  return dest;
}

}  // namespace

const std::vector<PublishedWeights>& published_weights() {
  return kPublished;
}

std::string published_weights_ref(const PublishedWeights& w) {
  return fmt::format("{}{}/{}", kTorchvisionPrefix, w.arch, w.name);
}

bool is_published_weights_ref(std::string_view ref) {
  return starts_with(ref, kTorchvisionPrefix);
}

bool is_weights_url(std::string_view ref) {
  return starts_with(ref, "http://") || starts_with(ref, "https://");
}

const PublishedWeights& find_published_weights(std::string_view ref) {
  VIGIL_CHECK(is_published_weights_ref(ref), "expected {}ARCH/WEIGHTS, got '{}'", kTorchvisionPrefix, ref);
  const std::string_view rest = ref.substr(kTorchvisionPrefix.size());
  const size_t slash = rest.find('/');
  const std::string arch(rest.substr(0, slash));
  const std::string name(slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1));
  const auto archs = published_archs();
  if (std::find(archs.begin(), archs.end(), arch) == archs.end()) {
    const auto near = closest_match(arch, archs);
    throw InvalidArgument(fmt::format(
        "expected {}ARCH/WEIGHTS with an ARCH torchvision publishes weights for, got '{}'{}; architectures: "
        "{}",
        kTorchvisionPrefix, ref, near ? fmt::format(" (did you mean '{}'?)", *near) : "", join(archs, ", ")));
  }
  for (const auto& w : kPublished) {
    if (w.arch == arch && (w.name == name || (name == kDefaultAlias && w.is_default))) return w;
  }
  throw InvalidArgument(fmt::format("expected {}{}/WEIGHTS with WEIGHTS one of {}, got '{}'",
                                    kTorchvisionPrefix, arch, weights_names_of(arch), ref));
}

std::string hash_prefix_of(std::string_view file_name) {
  auto is_hex = [](char ch) { return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'); };
  // The first '-' followed by lower-case hex digits and a '.', as re.search(r"-([a-f0-9]*)\.") finds it.
  for (size_t i = file_name.find('-'); i != std::string_view::npos; i = file_name.find('-', i + 1)) {
    size_t j = i + 1;
    while (j < file_name.size() && is_hex(file_name[j])) ++j;
    if (j < file_name.size() && file_name[j] == '.') return std::string(file_name.substr(i + 1, j - i - 1));
  }
  return {};
}

fs::path weights_cache_dir() {
  if (auto dir = env_or_empty("VIGIL_WEIGHTS_CACHE"); !dir.empty()) return expand_user(dir);
  // torch.hub.get_dir() + "/checkpoints": the folder torchvision's downloads already sit in.
  fs::path torch_home;
  if (auto home = env_or_empty("TORCH_HOME"); !home.empty()) {
    torch_home = expand_user(home);
  } else if (auto xdg = env_or_empty("XDG_CACHE_HOME"); !xdg.empty()) {
    torch_home = expand_user(xdg) / "torch";
  } else {
    torch_home = home_dir() / ".cache" / "torch";
  }
  return torch_home / "hub" / "checkpoints";
}

std::string weights_base_url() {
  const std::string env = env_or_empty("VIGIL_WEIGHTS_URL");
  return with_trailing_slash(env.empty() ? std::string(kDefaultWeightsUrl) : env);
}

void FetchOptions::validate() const {
  VIGIL_CHECK(connect_timeout_s > 0, "expected connect_timeout_s > 0, got {}", connect_timeout_s);
  VIGIL_CHECK(low_speed_bytes_per_s >= 0, "expected low_speed_bytes_per_s >= 0, got {}",
              low_speed_bytes_per_s);
  VIGIL_CHECK(low_speed_time_s > 0, "expected low_speed_time_s > 0, got {}", low_speed_time_s);
  VIGIL_CHECK(base_url.empty() || is_weights_url(base_url),
              "expected an http:// or https:// base URL, got '{}'", base_url);
}

fs::path cached_weights_path(const PublishedWeights& w, const FetchOptions& o) {
  return (o.cache_dir.empty() ? weights_cache_dir() : o.cache_dir) / std::string(w.file);
}

fs::path fetch_published_weights(const PublishedWeights& w, const FetchOptions& o) {
  const std::string base = o.base_url.empty() ? weights_base_url() : with_trailing_slash(o.base_url);
  VIGIL_CHECK(is_weights_url(base), "expected VIGIL_WEIGHTS_URL to be an http:// or https:// URL, got '{}'",
              base);
  return fetch(base + std::string(w.file), std::string(w.file), o);
}

fs::path fetch_weights_url(const std::string& url, const FetchOptions& o) {
  VIGIL_CHECK(is_weights_url(url), "expected an http:// or https:// URL, got '{}'", url);
  // The file name is the last path segment, as torch.hub takes it (query and fragment dropped).
  std::string path = url.substr(0, url.find_first_of("?#"));
  const size_t scheme_end = path.find("://") + 3;
  const size_t slash = path.rfind('/');
  VIGIL_CHECK(slash != std::string::npos && slash >= scheme_end,
              "expected a URL ending in a file name (e.g. .../resnet18-f37072fd.pth), got '{}'", url);
  return fetch(url, path.substr(slash + 1), o);
}

std::string resolve_weights(const std::string& ref, const FetchOptions& o) {
  if (is_published_weights_ref(ref)) return to_utf8(fetch_published_weights(find_published_weights(ref), o));
  if (is_weights_url(ref)) return to_utf8(fetch_weights_url(ref, o));
  return ref;
}

}  // namespace vigil::model
