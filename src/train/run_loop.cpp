// The training loop shared by SFT and PPO: see include/rarlhf/train/run_loop.h.
#include "rarlhf/train/run_loop.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/signals.h"
#include "rarlhf/common/strings.h"

#include "rarlhf/common/memory.h"
#if RARLHF_CUDA_KERNELS && __has_include(<c10/cuda/CUDACachingAllocator.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#define RARLHF_CUDA_MEMORY 1
#else
#define RARLHF_CUDA_MEMORY 0
#endif

namespace rarlhf {

// Peak memory of the device that holds the model since the last reset: the CUDA caching
// allocator's peak of allocated bytes on a GPU, else this process's peak resident set (VmHWM).
int64_t device_peak_bytes(const c10::Device& device) {
#if RARLHF_CUDA_MEMORY
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  }
#endif
  (void)device;
  return peak_rss_bytes();
}

void reset_device_peak(const c10::Device& device) {
#if RARLHF_CUDA_MEMORY
  if (device.is_cuda()) {
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
    return;
  }
#endif
  (void)device;
  reset_peak_rss();
}

namespace {

bool stop_voted(dist::Communicator& comm) {
  const bool stop = g_stop_requested.load();
  return comm.distributed() ? comm.sum(stop ? 1.0 : 0.0) > 0 : stop;
}

}  // namespace

bool run_training_loop(const Config& cfg, dist::Communicator& comm, const TrainingLoop& loop) {
  const bool tty = comm.is_main() && cfg.logging.progress && isatty(STDERR_FILENO);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t u = loop.first; u < loop.total; ++u) {
    const UnitReport report = loop.run_unit(u);
    const int64_t done = u + 1;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double eta = elapsed / static_cast<double>(done - loop.first) * static_cast<double>(loop.total - done);
    const std::string line = loop.label + " " + std::to_string(done) + "/" + std::to_string(loop.total) + "  " +
                             report.text + "  ETA " + format_duration(eta);
    if (tty) {
      std::fprintf(stderr, "\r[%s] %s   ", loop.name.c_str(), line.c_str());
      std::fflush(stderr);
    } else if (report.log) {
      RARLHF_LOG_INFO("{}: {}", loop.name, line);
    }
    if (stop_voted(comm)) {
      if (tty) std::fprintf(stderr, "\n");
      RARLHF_LOG_WARN("{}: stop requested; checkpointing at {} {} and exiting", loop.name, loop.unit, done);
      loop.save_checkpoint();
      return false;
    }
    if (cfg.run.save_every > 0 && done % cfg.run.save_every == 0 && done < loop.total) loop.save_checkpoint();
  }
  if (tty) std::fprintf(stderr, "\n");
  loop.save_checkpoint();
  if (comm.is_main()) {
    loop.save_final();
    write_file_atomic(cfg.run.out_dir + "/DONE", loop.unit + "s " + std::to_string(loop.total) + "\n");
  }
  comm.barrier();
  return true;
}

void refuse_float16_training(const CausalLmImpl& lm) {
  if (lm.dtype() == at::kHalf) {
    throw ConfigError("model.dtype: float16 training needs loss scaling, which rarlhf does not do; train in bfloat16 "
                      "(fp32 master weights) or float32 (float16 is fine for generate, eval and score)");
  }
}

void load_master_weights(MasterWeights& masters, const std::string& dir) {
  const std::string path = dir + "/master_weights.safetensors";
  if (!masters.any()) return;
  if (!file_exists(path)) {
    throw IoError(path + ": missing; this run keeps fp32 master weights (model.dtype=bfloat16) and the checkpoint "
                  "was written without them: resume with the model.dtype it was written with");
  }
  masters.load_masters(load_safetensors(path), path);
}

void copy_parameters(const std::vector<at::Tensor>& dst, const std::vector<at::Tensor>& src, const std::string& what) {
  if (dst.size() != src.size()) {
    throw IoError(what + ": " + std::to_string(src.size()) + " parameter tensors, the model has " +
                  std::to_string(dst.size()) + "; the checkpoint is from another model");
  }
  c10::NoGradGuard no_grad;
  for (size_t i = 0; i < dst.size(); ++i) {
    if (!dst[i].sizes().equals(src[i].sizes())) {
      throw IoError(what + ": parameter " + std::to_string(i) + " has shape " + c10::str(src[i].sizes()) +
                    ", the model's is " + c10::str(dst[i].sizes()) + "; the checkpoint is from another model");
    }
    dst[i].copy_(src[i]);
  }
}

}  // namespace rarlhf
