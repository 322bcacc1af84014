// A trainer's checkpoint, run.out_dir/checkpoint/: trainer_state.json (the loop's position and the
// settings it depends on), optimizer.pt and policy/. It is written complete into checkpoint.tmp/
// and swapped in (checkpoint/ -> checkpoint.old/, checkpoint.tmp/ -> checkpoint/, then .old
// removed), so a crash at any moment leaves checkpoint/ or checkpoint.old/ complete. SftTrainer
// and PPOTrainer share it.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace torch::optim {
class Optimizer;
}

namespace rarlhf {

// Writes a checkpoint of `out_dir`: `write_files(dir)` fills a fresh temp folder, which is then swapped
// in. On an exception the previous checkpoint stays as it was.
void write_checkpoint(const std::string& out_dir, const std::function<void(const std::string& dir)>& write_files);

// The checkpoint to resume from: out_dir/checkpoint, or checkpoint.old when a crash came between
// the two renames; "" when there is none.
std::string find_checkpoint(const std::string& out_dir);

// dir/trainer_state.json, parsed; IoError naming the file when it is unreadable or not a JSON object.
nlohmann::json read_trainer_state(const std::string& dir);

// The state's integer `key` (in [lo, hi]); IoError naming trainer_state.json and the key otherwise.
int64_t state_int(const nlohmann::json& state, const std::string& dir, const std::string& key, int64_t lo,
                  int64_t hi);
double state_double(const nlohmann::json& state, const std::string& dir, const std::string& key);

// ConfigError unless the checkpoint's `key` equals `now`, the value of the run's `setting` (a config
// key or a description such as "the number of prompts"): a resume must continue the same run.
void expect_same_setting(const nlohmann::json& state, const std::string& dir, const std::string& key, int64_t now,
                         const std::string& setting);

// The optimiser's state to / from `path` (torch::save's format); IoError naming the file on failure.
void save_optimizer(torch::optim::Optimizer& optimizer, const std::string& path);
void load_optimizer(torch::optim::Optimizer& optimizer, const std::string& path);

}  // namespace rarlhf
