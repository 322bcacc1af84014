// fp32 master weights: see include/rarlhf/train/master_weights.h.
#include "rarlhf/train/master_weights.h"

#include <torch/torch.h>

#include <sstream>

#include "rarlhf/common/error.h"

namespace rarlhf {

MasterWeights::MasterWeights(std::vector<at::Tensor> params) : params_(std::move(params)) {
  torch::NoGradGuard no_grad;
  for (const auto& p : params_) {
    const bool low = p.scalar_type() == at::kBFloat16 || p.scalar_type() == at::kHalf;
    has_master_.push_back(low);
    if (low) {
      opt_.push_back(p.detach().to(at::kFloat).clone().set_requires_grad(true));
      ++masters_;
    } else {
      opt_.push_back(p);
    }
  }
}

void MasterWeights::gradients_to_masters() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!has_master_[i]) continue;
    at::Tensor& g = params_[i].mutable_grad();
    if (!g.defined()) continue;
    at::Tensor& mg = opt_[i].mutable_grad();
    if (mg.defined()) {
      mg.add_(g.to(at::kFloat));
    } else {
      mg = g.to(at::kFloat);
    }
    g = at::Tensor();
  }
}

void MasterWeights::masters_to_params() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (has_master_[i]) params_[i].copy_(opt_[i]);
  }
}

void MasterWeights::params_to_masters() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (has_master_[i]) opt_[i].copy_(params_[i]);
  }
}

std::vector<std::pair<std::string, at::Tensor>> MasterWeights::named_masters() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (has_master_[i]) out.emplace_back("master." + std::to_string(i), opt_[i]);
  }
  return out;
}

void MasterWeights::load_masters(const TensorMap& tensors, const std::string& source) {
  torch::NoGradGuard no_grad;
  size_t found = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!has_master_[i]) continue;
    const std::string key = "master." + std::to_string(i);
    auto it = tensors.find(key);
    if (it == tensors.end()) throw IoError(source + ": missing tensor '" + key + "'; the checkpoint is incomplete");
    if (it->second.sizes() != opt_[i].sizes() || it->second.scalar_type() != at::kFloat) {
      std::ostringstream os;
      os << source << ": tensor '" << key << "' is " << it->second.sizes() << " " << it->second.scalar_type()
         << ", expected " << opt_[i].sizes() << " Float (the model changed since the checkpoint?)";
      throw IoError(os.str());
    }
    opt_[i].copy_(it->second);
    ++found;
  }
  if (found != tensors.size()) {
    throw IoError(source + ": " + std::to_string(tensors.size()) + " tensors for " + std::to_string(found) +
                  " master weights; the checkpoint belongs to another model");
  }
  masters_to_params();
}

}  // namespace rarlhf
