// Running other programs from rarlhf: quoting for the shell, and the bundled matplotlib scripts
// (scripts/plot_eval.py, scripts/plot_schedule.py). Plots are the only work handed to Python; no
// number rarlhf reports depends on it. Torch-free.
#pragma once
#include <string>
#include <vector>

namespace rarlhf {

// `s` as one POSIX shell word: as is when it holds only [A-Za-z0-9_@%+=:,./-] (and is not empty),
// else in single quotes with every ' written as '\'' (shlex.quote's rule).
std::string shell_quote(const std::string& s);

// The interpreter for plot scripts: $RARLHF_PYTHON, else /usr/bin/python3 (Debian's, where
// python3-matplotlib installs), else python3 on PATH.
std::string find_python();

// A script shipped in rarlhf's scripts/ folder: $RARLHF_SCRIPTS_DIR/<name>, else ../scripts,
// ../../scripts or ../share/rarlhf next to the executable. IoError with the fix when absent.
std::string find_bundled_script(const std::string& name);

// Runs `<find_python()> script args...` once that Python imports matplotlib. quiet: the script's
// stdout goes to /dev/null (its errors still show). IoError naming what is missing, or the
// script's exit status when it fails.
void run_plot_script(const std::string& script, const std::vector<std::string>& args, bool quiet = false);

}  // namespace rarlhf
