// Seeds and shuffles. Every random choice of a run is derived from run.seed through these (never
// from hidden global state), so a resumed run replays what an uninterrupted one would have done and
// N data-parallel ranks replay what one process would. Torch-free.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace rarlhf {

// splitmix64's output function (Steele, Lea & Flood 2014): a bijective 64-bit mixer.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// The seed of stream (a, b) of `seed`, e.g. (iteration, purpose): independent, reproducible streams.
inline uint64_t derive_seed(uint64_t seed, uint64_t a, uint64_t b = 0) {
  return mix64(seed ^ (a * 0x9E3779B97F4A7C15ULL) ^ (b * 0xC2B2AE3D27D4EB4FULL));
}

// The splitmix64 generator: small, fast, fully specified.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() { return mix64(state += 0x9E3779B97F4A7C15ULL); }
  // Uniform in [0, n) by rejection (no modulo bias).
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
      x = next();
    } while (x >= limit);
    return x % n;
  }
};

// xorshift64* (Vigna 2016); SFT's held-out split draws from it (kept so that split stays as it was).
struct XorShift64Star {
  uint64_t state;
  uint64_t next() {
    state ^= state >> 12, state ^= state << 25, state ^= state >> 27;
    return state * 0x2545F4914F6CDD1DULL;
  }
};

// Fisher-Yates from the back, position i swapped with next() % (i + 1) (the modulo bias is below
// 2^-40 for any vector that fits in memory).
template <class T, class Rng>
void shuffle_in_place(std::vector<T>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.next() % static_cast<uint64_t>(i)]);
}

}  // namespace rarlhf
