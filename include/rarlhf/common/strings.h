// String helpers shared across areas (torch-free).
#pragma once
#include <string>
#include <vector>

namespace rarlhf {

// Levenshtein edit distance (byte-wise).
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `word` if it is close enough to be a plausible typo, else "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

std::vector<std::string> split(const std::string& s, char sep);
std::string trim(const std::string& s);
bool starts_with(const std::string& s, const std::string& prefix);
bool ends_with(const std::string& s, const std::string& suffix);

// `s` as an error line may show it: control characters and bytes that are not UTF-8 written as
// \n, \r, \t, \xNN, and cut after `max` bytes of output (never inside a character or an escape)
// with "..." appended. For echoing a field of a user's file: one line, bounded.
std::string excerpt(const std::string& s, size_t max = 60);

// A duration for progress lines: "1h05m", "17m30s", "45s" (negative as 0).
std::string format_duration(double seconds);

}  // namespace rarlhf
