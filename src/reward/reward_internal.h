// Private to src/reward: what the reward models' describe() strings share.
#pragma once
#include <string>

namespace rarlhf::reward_detail {

// `v` as an ostream prints it (1, -1, 0.5, 3e-05): the sign and scale in describe().
std::string num(double v);

}  // namespace rarlhf::reward_detail
