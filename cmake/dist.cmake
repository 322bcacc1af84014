# c10d backends for rarlhf_dist. Gloo (CPU) needs LibTorch's ProcessGroupGloo.hpp plus the gloo
# headers (Debian: libgloo-dev) and -DUSE_C10D_GLOO; NCCL (CUDA) needs a CUDA LibTorch with
# ProcessGroupNCCL.hpp and -DUSE_C10D_NCCL. Without either, rarlhf_dist compiles its single-process
# fallback and a WORLD_SIZE > 1 run stops with a one-line error.
if(NOT TARGET rarlhf_dist)
  return()
endif()
find_path(RARLHF_C10D_GLOO_HEADER torch/csrc/distributed/c10d/ProcessGroupGloo.hpp
          HINTS ${TORCH_INCLUDE_DIRS} NO_CACHE)
find_path(RARLHF_GLOO_HEADER gloo/config.h HINTS ${TORCH_INCLUDE_DIRS} NO_CACHE)
find_path(RARLHF_C10D_NCCL_HEADER torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp
          HINTS ${TORCH_INCLUDE_DIRS} NO_CACHE)
set(have_gloo 0)
set(have_nccl 0)
if(RARLHF_C10D_GLOO_HEADER AND RARLHF_GLOO_HEADER)
  set(have_gloo 1)
  target_compile_definitions(rarlhf_dist PRIVATE USE_C10D_GLOO)
  target_include_directories(rarlhf_dist PRIVATE ${RARLHF_GLOO_HEADER})
endif()
if(RARLHF_C10D_NCCL_HEADER AND TORCH_CUDA_LIBRARIES)
  set(have_nccl 1)
  target_compile_definitions(rarlhf_dist PRIVATE USE_C10D_NCCL)
endif()
target_compile_definitions(rarlhf_dist PRIVATE RARLHF_HAVE_GLOO=${have_gloo} RARLHF_HAVE_NCCL=${have_nccl})
message(STATUS "rarlhf: c10d Gloo ${have_gloo}, NCCL ${have_nccl}")
