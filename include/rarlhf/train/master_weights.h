// Mixed precision with fp32 master weights: the model computes in its weights' dtype (bfloat16), the
// optimizer steps fp32 copies, and after each step the model's weights are the masters rounded. An
// update smaller than bf16's resolution (2^-8 relative) then still accumulates instead of vanishing,
// and Adam's moments are fp32. Parameters already in fp32 (LoRA adapters, the value head) stand for
// themselves.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "rarlhf/io/safetensors.h"

namespace rarlhf {

class MasterWeights {
 public:
  explicit MasterWeights(std::vector<at::Tensor> params);

  // What the optimizer owns: a master for each low-precision parameter, else the parameter.
  const std::vector<at::Tensor>& optimizer_params() const { return opt_; }
  bool any() const { return masters_ > 0; }
  int64_t count() const { return masters_; }

  // After backward, before any all-reduce or clipping: each master's gradient is its parameter's, in
  // fp32; the parameter's own gradient is released.
  void gradients_to_masters();
  // After each optimizer step: every low-precision parameter = its master, rounded.
  void masters_to_params();
  // After the parameters were set from elsewhere (a broadcast, a checkpoint without masters).
  void params_to_masters();

  // The masters by position ("master.<i>", i over all parameters) for a checkpoint, and back; a
  // missing or mis-shaped tensor is an IoError naming `source`.
  std::vector<std::pair<std::string, at::Tensor>> named_masters() const;
  void load_masters(const TensorMap& tensors, const std::string& source);

 private:
  std::vector<at::Tensor> params_, opt_;
  std::vector<bool> has_master_;
  int64_t masters_ = 0;
};

}  // namespace rarlhf
