#!/usr/bin/env bash
# One-shot GPU check for a machine with a CUDA LibTorch (PyTorch wheel) and nvcc but none of our
# other C++ dependencies and no network: builds rarlhf against torch's LibTorch with the CUDA
# kernels, runs the CUDA tests (CUDA twins vs CPU twins) and then the whole suite, regenerates the
# transformers parity fixtures and runs the parity tests, and runs the GPU kernel benchmark.
#   scripts/make_offline_deps.sh            # here, once: header bundle into .deps/
#   scripts/gpu_check.sh OUTDIR             # there: logs and fixtures into OUTDIR
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-out}
mkdir -p "$out"
log() { echo "== $*" | tee -a "$out/summary.txt"; }
py=python3
# The ICU bundled by make_offline_deps.sh is found at link time through ICU_ROOT; at run time
# libicuuc's own dependency (libicudata) needs the loader path.
export LD_LIBRARY_PATH="$PWD/.deps/icu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
prefix=$($py -c 'import torch;print(torch.utils.cmake_prefix_path)')
log "torch $($py -c 'import torch;print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$out/summary.txt"

# 1. Parity fixtures first (pure Python; independent of our build).
log "parity fixtures"
$py scripts/make_parity_fixtures.py 2>&1 | tail -20 | tee -a "$out/summary.txt"
tar czf "$out/parity_fixtures.tgz" tests/fixtures/parity 2>/dev/null && log "fixtures packed"

# 2. Build with CUDA LibTorch.
log "configure"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DRARLHF_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DRARLHF_BUILD_BENCH=ON \
  $(scripts/make_offline_deps.sh --cmake-args .deps) > "$out/configure.log" 2>&1 \
  || { tail -40 "$out/configure.log"; log "configure FAILED"; exit 1; }
grep -E "rarlhf:" "$out/configure.log" | tee -a "$out/summary.txt"
log "build"
cmake --build build-gpu -j 16 > "$out/build.log" 2>&1 \
  || { grep -E "error|Error" "$out/build.log" | head -40; log "build FAILED"; exit 1; }
build-gpu/rarlhf --version | tee -a "$out/summary.txt"

# 3. Tests: CUDA label first, then everything.
log "ctest -L cuda"
ctest --test-dir build-gpu -L cuda --output-on-failure -j 8 > "$out/ctest_cuda.log" 2>&1
tail -15 "$out/ctest_cuda.log" | tee -a "$out/summary.txt"
log "ctest all"
ctest --test-dir build-gpu --output-on-failure -j 8 --timeout 300 > "$out/ctest_all.log" 2>&1
tail -25 "$out/ctest_all.log" | tee -a "$out/summary.txt"

# 4. GPU benchmark of the kernels.
if [ -x build-gpu/kernels_gpu_bench ]; then
  log "kernel benchmark"
  build-gpu/kernels_gpu_bench 2>&1 | tee "$out/kernels_gpu.txt" | tee -a "$out/summary.txt"
fi
log "done"
