# c10d backends for rarlhf_dist. Gloo (CPU) needs LibTorch's ProcessGroupGloo.hpp plus the gloo
# headers (Debian: libgloo-dev) and -DUSE_C10D_GLOO; NCCL (CUDA) needs a CUDA LibTorch with
# ProcessGroupNCCL.hpp, nccl.h and -DUSE_C10D_NCCL. Each is enabled only when a small program using
# it compiles and links here; otherwise rarlhf_dist compiles its single-process fallback and a
# WORLD_SIZE > 1 run stops with a one-line error. NCCL_INCLUDE_DIR may point at nccl.h (pip wheels
# keep it under site-packages/nvidia/nccl/include).
if(NOT TARGET rarlhf_dist)
  return()
endif()
include(CheckCXXSourceCompiles)
find_path(RARLHF_GLOO_INCLUDE gloo/config.h HINTS ${TORCH_INCLUDE_DIRS})
find_path(RARLHF_NCCL_INCLUDE nccl.h HINTS ${NCCL_INCLUDE_DIR} $ENV{NCCL_INCLUDE_DIR} ${TORCH_INCLUDE_DIRS}
          ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)

set(CMAKE_REQUIRED_QUIET ON)
set(CMAKE_REQUIRED_FLAGS "-std=c++17 ${TORCH_CXX_FLAGS}")
# try_compile cannot re-import LibTorch's targets (a pip LibTorch's link interface names targets
# such as protobuf::libprotobuf that exist only in the calling project: configure fails), so the
# checks link the library files themselves.
get_filename_component(_rarlhf_torch_dir "${TORCH_LIBRARY}" DIRECTORY)
set(_rarlhf_torch_files "${TORCH_LIBRARY}")
foreach(_n torch_cpu c10 torch_cuda c10_cuda)
  if(EXISTS "${_rarlhf_torch_dir}/lib${_n}.so")
    list(APPEND _rarlhf_torch_files "${_rarlhf_torch_dir}/lib${_n}.so")
  endif()
endforeach()
set(CMAKE_REQUIRED_LIBRARIES ${_rarlhf_torch_files} ${CMAKE_THREAD_LIBS_INIT})
set(have_gloo 0)
if(RARLHF_GLOO_INCLUDE)
  set(CMAKE_REQUIRED_INCLUDES ${TORCH_INCLUDE_DIRS} ${RARLHF_GLOO_INCLUDE})
  set(CMAKE_REQUIRED_DEFINITIONS -DUSE_C10D_GLOO)
  check_cxx_source_compiles("
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
int main() { auto o = c10d::ProcessGroupGloo::Options::create(); return o->devices.empty() ? 0 : 1; }"
    RARLHF_C10D_GLOO_WORKS)
  if(RARLHF_C10D_GLOO_WORKS)
    set(have_gloo 1)
    target_compile_definitions(rarlhf_dist PRIVATE USE_C10D_GLOO)
    target_include_directories(rarlhf_dist PRIVATE ${RARLHF_GLOO_INCLUDE})
  endif()
endif()
set(have_nccl 0)
if(TORCH_CUDA_LIBRARIES AND RARLHF_NCCL_INCLUDE)
  set(CMAKE_REQUIRED_INCLUDES ${TORCH_INCLUDE_DIRS} ${RARLHF_NCCL_INCLUDE})
  set(CMAKE_REQUIRED_DEFINITIONS -DUSE_C10D_NCCL)
  check_cxx_source_compiles("
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
int main() { auto o = c10d::ProcessGroupNCCL::Options::create(); return o->timeout.count() > 0 ? 0 : 1; }"
    RARLHF_C10D_NCCL_WORKS)
  if(RARLHF_C10D_NCCL_WORKS)
    set(have_nccl 1)
    target_compile_definitions(rarlhf_dist PRIVATE USE_C10D_NCCL)
    target_include_directories(rarlhf_dist PRIVATE ${RARLHF_NCCL_INCLUDE})
  endif()
endif()
unset(CMAKE_REQUIRED_QUIET)
unset(CMAKE_REQUIRED_FLAGS)
unset(CMAKE_REQUIRED_LIBRARIES)
unset(CMAKE_REQUIRED_INCLUDES)
unset(CMAKE_REQUIRED_DEFINITIONS)
target_compile_definitions(rarlhf_dist PRIVATE RARLHF_HAVE_GLOO=${have_gloo} RARLHF_HAVE_NCCL=${have_nccl})
message(STATUS "rarlhf: c10d Gloo ${have_gloo}, NCCL ${have_nccl} (otherwise single-process only)")
