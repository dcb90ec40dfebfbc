#include "distributed.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <thread>

#include "vigil/core/error.h"

// Debian's LibTorch has ProcessGroupGloo compiled in, but its header is guarded by USE_C10D_GLOO and
// includes gloo's headers (libgloo-dev). The define is made here rather than on the command line so it does
// not differ from the precompiled torch header's flags; a build without gloo's headers refuses to train
// data-parallel with a message instead of failing to compile.
#if __has_include(<gloo/config.h>)
#define VIGIL_HAVE_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#else
#define VIGIL_HAVE_GLOO 0
#endif

namespace vigil::train {
namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  VIGIL_CHECK(end != v && *end == '\0' && n >= 0 && n <= 1'000'000,
              "expected the environment variable {} to be a non-negative integer, got '{}'", name, v);
  return static_cast<int>(n);
}

}  // namespace

void DistributedOptions::validate() const {
  VIGIL_CHECK(world_size >= 1, "expected WORLD_SIZE >= 1, got {}", world_size);
  VIGIL_CHECK(rank >= 0 && rank < world_size, "expected RANK in [0, WORLD_SIZE = {}), got {}", world_size,
              rank);
  VIGIL_CHECK(master_port >= 1 && master_port <= 65535, "expected MASTER_PORT in [1, 65535], got {}",
              master_port);
  VIGIL_CHECK(!master_addr.empty(), "expected MASTER_ADDR (the host of rank 0), got an empty value");
  VIGIL_CHECK(timeout_seconds > 0, "expected a distributed timeout > 0 seconds, got {}", timeout_seconds);
}

DistributedOptions DistributedOptions::from_env() {
  DistributedOptions o;
  o.world_size = env_int("WORLD_SIZE", 1);
  o.rank = env_int("RANK", 0);
  o.local_rank = env_int("LOCAL_RANK", o.rank);
  if (const char* addr = std::getenv("MASTER_ADDR"); addr != nullptr && *addr != '\0') o.master_addr = addr;
  o.master_port = env_int("MASTER_PORT", o.master_port);
  return o;
}

namespace detail {

#if VIGIL_HAVE_GLOO

namespace {

std::string message_of(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

bool loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

struct Distributed::Impl {
  DistributedOptions o;
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;

  [[noreturn]] void fail(const char* what, const std::exception& e) const {
    throw Unavailable(fmt::format(
        "distributed training, rank {} of {}: {} failed: {} (another rank is gone, or did not answer within "
        "the {:g} s timeout, --dist-timeout)",
        o.rank, o.world_size, what, message_of(e), o.timeout_seconds));
  }

  template <class F>
  auto guarded(const char* what, F&& f) const {
    try {
      return f();
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      fail(what, e);
    }
  }
};

Distributed::Distributed(const DistributedOptions& options) : impl_(std::make_unique<Impl>()) {
  options.validate();
  Impl& m = *impl_;
  m.o = options;
  const auto timeout =
      std::chrono::milliseconds(static_cast<int64_t>(std::max(1.0, options.timeout_seconds * 1000.0)));
  const std::string where = fmt::format("{}:{}", options.master_addr, options.master_port);
  spdlog::info("distributed training: rank {} of {} joining at {} (timeout {:g} s)", options.rank,
               options.world_size, where, options.timeout_seconds);
  m.guarded(
      options.is_main() ? "waiting for the other ranks at the rendezvous" : "reaching rank 0's rendezvous",
      [&] {
        c10d::TCPStoreOptions so;
        so.port = static_cast<uint16_t>(options.master_port);
        so.isServer = options.is_main();
        so.numWorkers = static_cast<size_t>(options.world_size);
        so.waitWorkers = true;
        so.timeout = timeout;
        m.store = c10::make_intrusive<c10d::TCPStore>(options.master_addr, so);
        return 0;
      });
  m.guarded("connecting the Gloo process group", [&] {
    auto po = c10d::ProcessGroupGloo::Options::create(timeout);
    // Loopback for a one-machine run; otherwise GLOO_SOCKET_IFNAME (torch's variable) or this host's name.
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname != nullptr && *ifname != '\0') {
      po->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (loopback(options.master_addr)) {
      po->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      po->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    m.group = c10::make_intrusive<c10d::ProcessGroupGloo>(m.store, options.rank, options.world_size, po);
    return 0;
  });
}

Distributed::~Distributed() = default;

int Distributed::rank() const {
  return impl_->o.rank;
}

int Distributed::world_size() const {
  return impl_->o.world_size;
}

void Distributed::broadcast(const std::vector<torch::Tensor>& tensors, const char* what) {
  torch::NoGradGuard no_grad;
  // One flat buffer per dtype: a model's hundreds of tensors in a handful of collectives.
  std::map<c10::ScalarType, std::vector<torch::Tensor>> groups;
  for (const auto& t : tensors) {
    if (t.defined() && t.numel() > 0) groups[t.scalar_type()].push_back(t);
  }
  for (auto& [dtype, list] : groups) {
    std::vector<torch::Tensor> parts;
    parts.reserve(list.size());
    for (const auto& t : list) parts.push_back(t.detach().reshape(-1).cpu());
    std::vector<torch::Tensor> flat{torch::cat(parts)};
    c10d::BroadcastOptions bo;
    bo.rootRank = 0;
    impl_->guarded(what, [&] {
      impl_->group->broadcast(flat, bo)->wait();
      return 0;
    });
    int64_t offset = 0;
    for (auto& t : list) {
      const int64_t n = t.numel();
      t.detach().copy_(flat[0].slice(0, offset, offset + n).view(t.sizes()));
      offset += n;
    }
  }
}

void Distributed::all_reduce_sum(torch::Tensor& flat, const char* what) {
  std::vector<torch::Tensor> list{flat};
  c10d::AllreduceOptions ao;
  ao.reduceOp = c10d::ReduceOp::SUM;
  impl_->guarded(what, [&] {
    impl_->group->allreduce(list, ao)->wait();
    return 0;
  });
}

std::string Distributed::share(const std::string& key, const std::string& value) {
  const std::string k = "vigil/" + key;
  return impl_->guarded("waiting for rank 0's decision", [&] {
    if (is_main()) {
      impl_->store->set(k, std::vector<uint8_t>(value.begin(), value.end()));
      return value;
    }
    while (!impl_->store->check({k})) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto bytes = impl_->store->get(k);
    return std::string(bytes.begin(), bytes.end());
  });
}

void Distributed::barrier() {
  auto one = torch::ones({1});
  all_reduce_sum(one, "the closing barrier");
}

bool distributed_available() {
  return true;
}

#else  // no gloo headers at build time

struct Distributed::Impl {};

Distributed::Distributed(const DistributedOptions&) {
  throw InvalidArgument(
      "expected a vigil built with gloo's headers for data-parallel training (install libgloo-dev and "
      "rebuild), got a build without them");
}
Distributed::~Distributed() = default;
int Distributed::rank() const {
  return 0;
}
int Distributed::world_size() const {
  return 1;
}
void Distributed::broadcast(const std::vector<torch::Tensor>&, const char*) {}
void Distributed::all_reduce_sum(torch::Tensor&, const char*) {}
std::string Distributed::share(const std::string&, const std::string& value) {
  return value;
}
void Distributed::barrier() {}
bool distributed_available() {
  return false;
}

#endif

}  // namespace detail
}  // namespace vigil::train
