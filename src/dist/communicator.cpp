// c10d process group behind rarlhf::dist::Communicator (see include/rarlhf/dist/communicator.h).
// RARLHF_HAVE_GLOO / RARLHF_HAVE_NCCL are set by cmake/dist.cmake when LibTorch ships the headers;
// without them only a world of one works and asking for more is a one-line ConfigError.
// The c10d surface used (TCPStore, ProcessGroup{Gloo,NCCL}, Work::wait) is the same in 1.13 and 2.x.
#include "rarlhf/dist/communicator.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/version.h>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <sstream>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <vector>

#include "rarlhf/common/cpus.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/log.h"

#if RARLHF_HAVE_GLOO || RARLHF_HAVE_NCCL
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#if RARLHF_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if RARLHF_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

extern char** environ;

namespace rarlhf::dist {

namespace {

int parse_int(const std::map<std::string, std::string>& env, const std::string& key, int lo, int hi) {
  const std::string& s = env.at(key);
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v < lo || v > hi) {
    throw ConfigError("environment variable " + key + "='" + s + "': expected an integer in [" +
                      std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return static_cast<int>(v);
}

const std::string* find(const std::map<std::string, std::string>& env, const char* key) {
  auto it = env.find(key);
  return it == env.end() || it->second.empty() ? nullptr : &it->second;
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // Hostlist grammar: comma-separated entries, each "prefix[ranges]suffix" or a plain name; the
  // first host is the prefix + the first number of the first range (zero padding kept).
  std::string prefix;
  size_t i = 0;
  for (; i < nodelist.size(); ++i) {
    char c = nodelist[i];
    if (c == ',') break;
    if (c == '[') {
      size_t j = i + 1;
      std::string num;
      while (j < nodelist.size() && std::isdigit(static_cast<unsigned char>(nodelist[j]))) num += nodelist[j++];
      if (num.empty()) throw ConfigError("SLURM_NODELIST='" + nodelist + "': cannot parse the host range");
      size_t close = nodelist.find(']', j);
      if (close == std::string::npos) throw ConfigError("SLURM_NODELIST='" + nodelist + "': unbalanced '['");
      std::string rest;
      for (size_t k = close + 1; k < nodelist.size() && nodelist[k] != ','; ++k) rest += nodelist[k];
      return prefix + num + rest;
    }
    prefix += c;
  }
  if (prefix.empty()) throw ConfigError("SLURM_NODELIST='" + nodelist + "': no host name");
  return prefix;
}

int slurm_master_port(int64_t job_id, int64_t step_id) {
  return 10000 + static_cast<int>(job_id % 2000) * 10 + static_cast<int>(step_id % 10);
}

DistEnv detect_env(const std::map<std::string, std::string>& env) {
  DistEnv d;
  constexpr int kMaxWorld = 1 << 20;
  const bool torchrun = find(env, "WORLD_SIZE") || find(env, "RANK");
  if (torchrun && (!find(env, "WORLD_SIZE") || !find(env, "RANK"))) {
    throw ConfigError(std::string("environment: ") + (find(env, "RANK") ? "RANK" : "WORLD_SIZE") +
                      " is set but " + (find(env, "RANK") ? "WORLD_SIZE" : "RANK") +
                      " is not; set both (or neither for a single process)");
  }
  // srun sets SLURM_STEP_NUM_TASKS / SLURM_STEP_ID in each task; the batch shell has neither but
  // still carries the job's SLURM_NTASKS: rarlhf started there (not through srun) is one process.
  const bool slurm_job = find(env, "SLURM_PROCID") && find(env, "SLURM_NTASKS");
  const bool slurm_step = slurm_job && (find(env, "SLURM_STEP_NUM_TASKS") || find(env, "SLURM_STEP_ID"));
  const char* world_key = find(env, "SLURM_STEP_NUM_TASKS") ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS";
  const int slurm_world = slurm_step ? parse_int(env, world_key, 1, kMaxWorld) : 1;
  // Inside a multi-task srun step Slurm's own values win: a RANK/WORLD_SIZE left in the user's
  // environment (a .bashrc, an earlier torchrun) would otherwise give every task the same rank. A
  // launcher started inside a one-task step (launch_local.sh under `srun -n 1`) keeps its RANK/WORLD_SIZE.
  if (slurm_step && (slurm_world > 1 || !torchrun)) {
    d.world_size = slurm_world;
    d.rank = parse_int(env, "SLURM_PROCID", 0, kMaxWorld);
    d.local_rank = find(env, "SLURM_LOCALID") ? parse_int(env, "SLURM_LOCALID", 0, kMaxWorld) : 0;
    d.source = "slurm";
    if (torchrun) {
      const std::string r = env.at("RANK"), w = env.at("WORLD_SIZE");
      if (r != std::to_string(d.rank) || w != std::to_string(d.world_size)) {
        d.warnings.push_back("dist: RANK=" + r + " WORLD_SIZE=" + w + " in the environment disagree with this srun step (" +
                             "SLURM_PROCID=" + std::to_string(d.rank) + ", " + world_key + "=" +
                             std::to_string(d.world_size) + "); using Slurm's (unset RANK/WORLD_SIZE in the job script)");
      }
    }
  } else if (torchrun) {
    d.world_size = parse_int(env, "WORLD_SIZE", 1, kMaxWorld);
    d.rank = parse_int(env, "RANK", 0, kMaxWorld);
    d.local_rank = find(env, "LOCAL_RANK") ? parse_int(env, "LOCAL_RANK", 0, kMaxWorld) : 0;
    d.source = "torchrun";
  } else if (slurm_job) {
    d.source = "slurm-batch";
  }
  // Ranks on this node. Slurm writes "2(x3)" for 2 on each of 3 nodes (the leading count is used).
  std::vector<const char*> local_keys = {"LOCAL_WORLD_SIZE", "SLURM_STEP_TASKS_PER_NODE", "SLURM_NTASKS_PER_NODE"};
  if (d.source == "slurm") local_keys = {"SLURM_STEP_TASKS_PER_NODE", "SLURM_NTASKS_PER_NODE", "LOCAL_WORLD_SIZE"};
  for (const char* key : local_keys) {
    if (const auto* v = find(env, key)) {
      const int n = std::atoi(v->c_str());
      if (n < 1) throw ConfigError(std::string("environment variable ") + key + "='" + *v + "': expected a positive count");
      d.local_world_size = n;
      break;
    }
  }
  if (d.rank >= d.world_size) {
    throw ConfigError("environment: rank " + std::to_string(d.rank) + " is not below the world size " +
                      std::to_string(d.world_size) + " (" + (d.source == "slurm" ? "SLURM_PROCID/SLURM_NTASKS" : "RANK/WORLD_SIZE") + ")");
  }
  // Master address: RARLHF_MASTER_ADDR always wins. In a Slurm step, the first host of the step's
  // node list (rank 0 runs there); a different MASTER_ADDR is reported and ignored. Otherwise
  // MASTER_ADDR, else the job's first host, else 127.0.0.1.
  std::string slurm_host;
  for (const char* key : {"SLURM_STEP_NODELIST", "SLURM_NODELIST", "SLURM_JOB_NODELIST"}) {
    if (const auto* nl = find(env, key)) {
      slurm_host = first_slurm_host(*nl);
      break;
    }
  }
  if (const auto* a = find(env, "RARLHF_MASTER_ADDR")) {
    d.master_addr = *a;
  } else if (d.source == "slurm" && !slurm_host.empty()) {
    d.master_addr = slurm_host;
    if (const auto* m = find(env, "MASTER_ADDR"); m && *m != slurm_host) {
      d.warnings.push_back("dist: MASTER_ADDR=" + *m + " ignored inside the srun step: rank 0 runs on " + slurm_host +
                           " (set RARLHF_MASTER_ADDR to choose another address, e.g. a fast interface's name)");
    }
  } else if (const auto* m = find(env, "MASTER_ADDR")) {
    d.master_addr = *m;
  } else if (!slurm_host.empty()) {
    d.master_addr = slurm_host;
  }
  // Port: RARLHF_MASTER_PORT, else MASTER_PORT, else (Slurm) one derived from the job and step ids,
  // else 29500.
  if (find(env, "RARLHF_MASTER_PORT")) {
    d.master_port = parse_int(env, "RARLHF_MASTER_PORT", 1, 65535);
  } else if (find(env, "MASTER_PORT")) {
    d.master_port = parse_int(env, "MASTER_PORT", 1, 65535);
  } else if (d.source == "slurm" && find(env, "SLURM_JOB_ID")) {
    // Lenient: only the port depends on these, and Slurm's special step ids exceed an int.
    const auto id = [&](const char* key) { return find(env, key) ? std::strtoll(env.at(key).c_str(), nullptr, 10) : 0LL; };
    d.master_port = slurm_master_port(std::max(0LL, id("SLURM_JOB_ID")), std::max(0LL, id("SLURM_STEP_ID")));
  }
  if (const auto* b = find(env, "RARLHF_TCPSTORE_BACKEND")) {
    if (*b != "auto" && *b != "libuv" && *b != "classic") {
      throw ConfigError("environment variable RARLHF_TCPSTORE_BACKEND='" + *b + "': expected auto, libuv or classic");
    }
    d.store_backend = *b;
  }
  return d;
}

DistEnv detect_env() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return detect_env(env);
}

bool c10d_available() { return RARLHF_HAVE_GLOO || RARLHF_HAVE_NCCL; }

std::chrono::milliseconds collective_timeout() {
  const char* s = std::getenv("RARLHF_DIST_TIMEOUT_S");
  if (!s || !*s) return std::chrono::milliseconds(600 * 1000);
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (*end != '\0' || !(v > 0)) {
    throw ConfigError(std::string("environment variable RARLHF_DIST_TIMEOUT_S='") + s +
                      "': expected a positive number of seconds");
  }
  return std::chrono::milliseconds(static_cast<int64_t>(v * 1000));
}

struct Communicator::Impl {
#if RARLHF_HAVE_GLOO || RARLHF_HAVE_NCCL
  c10::intrusive_ptr<c10d::Store> store;
#if TORCH_VERSION_MAJOR >= 2
  c10::intrusive_ptr<c10d::Backend> pg;
#else
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
#endif
  std::chrono::milliseconds timeout{0};
  std::string what;
  std::string store_backend;

  // Waits for a collective; a dead or stuck peer becomes an Error naming the operation.
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* op) {
    try {
      work->wait(timeout);
    } catch (const std::exception& e) {
      std::string msg = e.what();
      if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
      throw Error(std::string("distributed ") + op + " failed (a peer rank died or timed out after " +
                  std::to_string(timeout.count() / 1000) + " s; see its log): " + msg);
    }
  }
#endif
};

Communicator::Communicator() : impl_(std::make_unique<Impl>()) {}
Communicator::~Communicator() = default;

std::shared_ptr<Communicator> Communicator::create(const DistEnv& env, const c10::Device& device,
                                                   std::chrono::milliseconds timeout) {
  auto c = std::shared_ptr<Communicator>(new Communicator());
  c->device_ = device;
  if (env.world_size <= 1) return c;
#if RARLHF_HAVE_GLOO || RARLHF_HAVE_NCCL
  c->rank_ = env.rank;
  c->world_ = env.world_size;
  auto& im = *c->impl_;
  im.timeout = timeout;
  // Gloo's TCP transport and the TCPStore write to sockets without MSG_NOSIGNAL in places: when a
  // peer dies, the next write raises SIGPIPE and would kill this rank silently (exit 141) instead
  // of surfacing as a c10d error we report. Python ignores SIGPIPE at start-up, which is why
  // torchrun users never see this; we do the same for distributed runs.
  std::signal(SIGPIPE, SIG_IGN);
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(env.master_port);
  so.isServer = env.rank == 0;
  so.numWorkers = static_cast<size_t>(env.world_size);
  so.waitWorkers = true;
  so.timeout = timeout;
  try {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    // LibTorch >= 2.4 asks for the libuv store backend by default; builds without libuv (Debian's
    // LibTorch 2.6) refuse it. "auto" falls back to the classic backend there, the same protocol on
    // the wire, so ranks of different builds still meet.
    so.useLibUV = env.store_backend != "classic";
    try {
      im.store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    } catch (const std::exception& e) {
      if (env.store_backend != "auto" || std::string(e.what()).find("libuv") == std::string::npos) throw;
      RARLHF_LOG_DEBUG("TCPStore: this LibTorch has no libuv; using the classic store backend");
      so.useLibUV = false;
      im.store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    }
    im.store_backend = so.useLibUV ? "libuv" : "classic";
#else
    if (env.store_backend == "libuv") {
      throw ConfigError("RARLHF_TCPSTORE_BACKEND=libuv: LibTorch " TORCH_VERSION " has only the classic TCPStore");
    }
    im.store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    im.store_backend = "classic";
#endif
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
    throw Error("distributed rendezvous at " + env.master_addr + ":" + std::to_string(env.master_port) +
                " failed (rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                "; check MASTER_ADDR/MASTER_PORT and that every rank started): " + msg);
  }
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("rarlhf", im.store);
  if (device.is_cuda()) {
#if RARLHF_HAVE_NCCL
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    im.pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, env.rank, env.world_size, opts);
    im.what = "NCCL";
#else
    throw ConfigError("run.device=cuda with WORLD_SIZE=" + std::to_string(env.world_size) +
                      ": this build's LibTorch has no NCCL process group; use run.device=cpu or a CUDA LibTorch");
#endif
  } else {
#if RARLHF_HAVE_GLOO
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    // GLOO_SOCKET_IFNAME (comma-separated interfaces, as torch.distributed reads it) picks the
    // network Gloo's pairs connect over; without it Gloo uses the address this host's name
    // resolves to, which on a cluster node may be a management network or a loopback alias.
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname && *ifname) {
      std::string list(ifname), name;
      std::stringstream ss(list);
      while (std::getline(ss, name, ',')) {
        if (name.empty()) continue;
        try {
          opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
        } catch (const std::exception& e) {
          std::string msg = e.what();
          if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
          throw ConfigError("environment variable GLOO_SOCKET_IFNAME='" + list + "': interface '" + name +
                            "' cannot be used (" + msg + "); name an interface of this host (ip -br addr)");
        }
      }
    }
    if (opts->devices.empty()) opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    im.pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, env.rank, env.world_size, opts);
    im.what = "Gloo";
#else
    throw ConfigError("WORLD_SIZE=" + std::to_string(env.world_size) +
                      " on CPU: this build's LibTorch has no Gloo process group (rebuild with libgloo-dev)");
#endif
  }
  RARLHF_LOG_INFO("dist: rank {} of {} (local {}), {} over {}:{} ({} env, {} store), timeout {} s", env.rank,
                  env.world_size, env.local_rank, im.what, env.master_addr, env.master_port, env.source,
                  im.store_backend, timeout.count() / 1000);
  c->barrier();
  return c;
#else
  (void)timeout;
  throw ConfigError("WORLD_SIZE=" + std::to_string(env.world_size) +
                    ": this build has no torch distributed (c10d) support; run a single process "
                    "(unset WORLD_SIZE/RANK, srun -n 1) or rebuild against a LibTorch with c10d + Gloo/NCCL");
#endif
}

namespace {
// The group's backend needs tensors on its device type (NCCL: CUDA); others are staged there.
bool needs_staging(const at::Tensor& t, const c10::Device& dev) { return t.device().type() != dev.type(); }
}  // namespace

void Communicator::all_reduce_sum(at::Tensor& t) {
  if (world_ <= 1) return;
#if RARLHF_HAVE_GLOO || RARLHF_HAVE_NCCL
  TORCH_CHECK(t.is_contiguous(), "all_reduce_sum: tensor must be contiguous");
  if (needs_staging(t, device_)) {
    at::Tensor d = t.to(device_);
    all_reduce_sum(d);
    t.copy_(d);
    return;
  }
  std::vector<at::Tensor> v{t};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::SUM;
  impl_->wait(impl_->pg->allreduce(v, o), "all-reduce");
#endif
}

at::Tensor Communicator::all_gather(const at::Tensor& t) {
  if (world_ <= 1) return t;
#if RARLHF_HAVE_GLOO || RARLHF_HAVE_NCCL
  if (needs_staging(t, device_)) return all_gather(t.to(device_)).to(t.device());
  std::vector<at::Tensor> in{t.contiguous()};
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < world_; ++r) out[0].push_back(at::empty_like(in[0]));
  impl_->wait(impl_->pg->allgather(out, in), "all-gather");
  return at::cat(out[0], 0);
#else
  return t;
#endif
}

void Communicator::broadcast(at::Tensor& t, int root) {
  if (world_ <= 1) return;
#if RARLHF_HAVE_GLOO || RARLHF_HAVE_NCCL
  TORCH_CHECK(t.is_contiguous(), "broadcast: tensor must be contiguous");
  if (needs_staging(t, device_)) {
    at::Tensor d = t.to(device_);
    broadcast(d, root);
    t.copy_(d);
    return;
  }
  std::vector<at::Tensor> v{t};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  impl_->wait(impl_->pg->broadcast(v, o), "broadcast");
#endif
}

void Communicator::barrier() {
  if (world_ <= 1) return;
  // An all-reduce rather than ProcessGroup::barrier: the latter's NCCL form needs a device guess.
  at::Tensor one = at::ones({1}, at::TensorOptions().dtype(at::kFloat).device(device_));
  all_reduce_sum(one);
}

double Communicator::sum(double x) {
  if (world_ <= 1) return x;
  at::Tensor t = at::full({1}, x, at::TensorOptions().dtype(at::kDouble).device(device_));
  all_reduce_sum(t);
  return t.item<double>();
}

namespace detail {
#if RARLHF_CUDA_KERNELS
void set_current_cuda_device(int index);  // device_cuda.cpp
#else
void set_current_cuda_device(int) {}      // no CUDA in this build: nothing to select
#endif
}  // namespace detail

int cuda_device_for_rank(int local_rank, int visible, std::string* note) {
  if (visible <= 0) throw ConfigError("run.device=cuda: no CUDA device is visible to this task (check CUDA_VISIBLE_DEVICES and the job's GPU request)");
  if (local_rank < visible) return local_rank;
  if (note) {
    *note = "dist: local rank " + std::to_string(local_rank) + " sees " + std::to_string(visible) +
            " CUDA device(s) (its own GPU binding, e.g. --gpus-per-task): using cuda:0";
  }
  return 0;
}

RankSetup setup_rank(const std::string& log_level, int threads, c10::Device device) {
  const DistEnv env = detect_env();
  init_logging(log_level, env.rank, env.world_size);
  for (const auto& w : env.warnings) RARLHF_LOG_WARN("{}", w);
  if (env.source == "slurm-batch") {
    RARLHF_LOG_WARN("dist: started in a Slurm batch shell, not by srun: running as one process "
                    "(start it with `srun rarlhf ...` for data parallelism over the job's tasks)");
  }
  RankSetup out;
  out.device = device;
  if (env.world_size > 1 && device.is_cuda()) {
    std::string note;
    const int index = cuda_device_for_rank(env.local_rank, static_cast<int>(at::getNumGPUs()), &note);
    if (!note.empty()) RARLHF_LOG_INFO("{}", note);
    out.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
    detail::set_current_cuda_device(index);
  }
  const CpuLimits limits = read_cpu_limits();
  if (threads <= 0 && env.local_world_size > 1 && !(env.source == "slurm" && limits.slurm_cpus_per_task)) {
    std::string why;
    const int usable = usable_cpus(limits, &why);
    const int n = std::max(1, usable / env.local_world_size);
    at::set_num_threads(n);
    // OpenBLAS keeps its own pool (see cli.cpp's set_cpu_threads): size it to the same share.
    using SetFn = void (*)(int);
    if (auto fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(n);
    RARLHF_LOG_DEBUG("dist: {} local ranks share {} usable CPUs ({}): {} threads each", env.local_world_size,
                     usable, why, n);
  }
  out.comm = Communicator::create(env, out.device);
  return out;
}

void all_reduce_gradients(Communicator& comm, const std::vector<at::Tensor>& params, at::Tensor* extra) {
  if (!comm.distributed()) return;
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> flat;
  flat.reserve(params.size() + 1);
  for (const auto& p : params) {
    if (!p.requires_grad()) continue;
    if (!p.grad().defined()) const_cast<at::Tensor&>(p).mutable_grad() = at::zeros_like(p);
    flat.push_back(p.grad().reshape({-1}));
  }
  if (extra && extra->defined()) {
    const auto like = flat.empty() ? at::TensorOptions().dtype(at::kFloat) : flat.front().options();
    flat.push_back(extra->reshape({-1}).to(like));
  }
  if (flat.empty()) return;
  at::Tensor buf = at::cat(flat);  // one collective instead of one per parameter
  comm.all_reduce_sum(buf);
  if (extra && extra->defined()) {
    const int64_t n = extra->numel();
    extra->copy_(buf.narrow(0, buf.numel() - n, n).view_as(*extra).to(extra->options()));
  }
  int64_t off = 0;
  for (const auto& p : params) {
    if (!p.requires_grad()) continue;
    at::Tensor g = p.grad();
    const int64_t n = g.numel();
    g.copy_(buf.narrow(0, off, n).view_as(g));
    off += n;
  }
}

void broadcast_parameters(Communicator& comm, const std::vector<at::Tensor>& params) {
  if (!comm.distributed()) return;
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> flat;
  for (const auto& p : params) flat.push_back(p.detach().reshape({-1}));
  if (flat.empty()) return;
  at::Tensor buf = at::cat(flat);
  comm.broadcast(buf, 0);
  int64_t off = 0;
  for (const auto& p : params) {
    const int64_t n = p.numel();
    at::Tensor d = p.detach();
    d.copy_(buf.narrow(0, off, n).view_as(d));
    off += n;
  }
}

Shard shard_of(int64_t n, int rank, int world) {
  if (world < 1 || rank < 0 || rank >= world) throw Error("shard_of: bad rank/world");
  if (n % world != 0) {
    throw ConfigError(std::to_string(n) + " items cannot be split evenly over " + std::to_string(world) +
                      " ranks; make the global batch a multiple of WORLD_SIZE");
  }
  const int64_t per = n / world;
  return {rank * per, (rank + 1) * per};
}

}  // namespace rarlhf::dist
