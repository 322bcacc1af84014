// The loop SftTrainer and PPOTrainer share: units (optimiser steps, PPO iterations) first..total-1,
// a progress line with the ETA after each, the stop vote over ranks (a signal may reach only some
// ranks, or reach them in different units), a checkpoint every run.save_every units and on a stop,
// and at the end a last checkpoint, the final policy and out_dir/DONE. A stop requested before the
// loop starts (a signal while the run was loading) ends it after the first unit, with a checkpoint.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "rarlhf/config/config.h"
#include "rarlhf/dist/communicator.h"
#include "rarlhf/model/causal_lm.h"
#include "rarlhf/train/master_weights.h"

namespace rarlhf {

// What a unit reports for the progress line: `text` (e.g. "loss 2.31"); `log` also writes it to the
// log when stderr is not a terminal (a terminal gets every unit's line, redrawn in place).
struct UnitReport {
  std::string text;
  bool log = true;
};

struct TrainingLoop {
  std::string name;  // log prefix: "train" | "sft"
  std::string unit;   // what is counted, for logs and DONE: "iteration" | "step"
  std::string label;  // its short form on the progress line: "it" | "step"
  int64_t first = 0, total = 0;
  std::function<UnitReport(int64_t)> run_unit;  // runs unit u (0-based)
  std::function<void()> save_checkpoint;        // called on every rank (it synchronises them)
  std::function<void()> save_final;             // rank 0 only, after the last checkpoint: the policy
};

// Runs loop.run_unit(first..total-1); true when finished, false when stopped by a signal (after a
// checkpoint).
bool run_training_loop(const Config& cfg, dist::Communicator& comm, const TrainingLoop& loop);

// dst's parameters := src's (same architecture): resuming puts the checkpoint's weights into the
// model the optimiser already holds.
// Peak memory since the last reset of the device holding the model: the CUDA caching allocator's
// peak of allocated bytes on a GPU, else this process's peak resident set (VmHWM). The reset starts a
// new peak (on the CPU where /proc/self/clear_refs may be written; else the peak stays since start).
int64_t device_peak_bytes(const c10::Device& device);
void reset_device_peak(const c10::Device& device);

// Training in float16 needs loss scaling, which rarlhf does not do: ConfigError naming model.dtype.
void refuse_float16_training(const CausalLmImpl& lm);

// <dir>/master_weights.safetensors into `masters` (a checkpoint of a bf16 run); when the run has
// masters and the checkpoint none, an IoError (it was written in another model.dtype).
void load_master_weights(MasterWeights& masters, const std::string& dir);

void copy_parameters(const std::vector<at::Tensor>& dst, const std::vector<at::Tensor>& src, const std::string& what);

}  // namespace rarlhf
