// Shell quoting and the plot-script launcher: see include/rarlhf/common/process.h.
#include "rarlhf/common/process.h"

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"

namespace rarlhf {
namespace {

namespace fs = std::filesystem;

bool shell_safe(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string("_@%+=:,./-").find(c) != std::string::npos;
}

// std::system's status as an exit code; -1 when the shell could not run or the command was killed.
int run_shell(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  if (rc == -1 || !WIFEXITED(rc)) return -1;
  return WEXITSTATUS(rc);
}

}  // namespace

std::string shell_quote(const std::string& s) {
  bool safe = !s.empty();
  for (char c : s) safe = safe && shell_safe(c);
  if (safe) return s;
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string find_python() {
  if (const char* env = std::getenv("RARLHF_PYTHON")) return env;
  if (file_exists("/usr/bin/python3")) return "/usr/bin/python3";  // Debian's, with python3-matplotlib
  return "python3";
}

std::string find_bundled_script(const std::string& name) {
  if (const char* env = std::getenv("RARLHF_SCRIPTS_DIR")) {
    const fs::path p = fs::path(env) / name;
    if (!file_exists(p.string()))
      throw IoError("RARLHF_SCRIPTS_DIR=" + std::string(env) + ": no " + name + " there; point it at rarlhf's scripts/");
    return p.string();
  }
  // Next to the binary: build-*/rarlhf -> ../scripts; an installed bin/rarlhf -> ../share/rarlhf.
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const char* rel : {"../scripts/", "../../scripts/", "../share/rarlhf/"}) {
      const fs::path p = (exe.parent_path() / (std::string(rel) + name)).lexically_normal();
      if (file_exists(p.string())) return p.string();
    }
  }
  throw IoError(name + ": not found next to the rarlhf executable; set RARLHF_SCRIPTS_DIR to rarlhf's scripts/ folder");
}

void run_plot_script(const std::string& script, const std::vector<std::string>& args, bool quiet) {
  const std::string python = find_python();
  if (run_shell(shell_quote(python) + " -c 'import matplotlib' >/dev/null 2>&1") != 0)
    throw IoError(python + " cannot import matplotlib; install it (apt-get install python3-matplotlib) "
                  "or set RARLHF_PYTHON to a Python that has it");
  std::string cmd = shell_quote(python) + " " + shell_quote(script);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  if (quiet) cmd += " >/dev/null";
  const int rc = run_shell(cmd);
  if (rc != 0) throw IoError(script + " exited with " + std::to_string(rc) + "; its message is above");
}

}  // namespace rarlhf
