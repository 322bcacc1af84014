# CUDA language detection. Runs before find_package(Torch) (a CUDA LibTorch wants the language on).
# RARLHF_ENABLE_CUDA: AUTO builds the .cu kernels when nvcc is found, ON requires it, OFF skips it.
# With a CPU-only LibTorch (Debian's) the kernels are compiled but not linked, so CI still
# catches CUDA syntax errors; deps.cmake decides about linking once Torch is known.
set(RARLHF_CUDA_LANG OFF)
if(NOT RARLHF_ENABLE_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # 75 is the oldest arch CUDA 13 accepts; 90 is Hopper. Users override on the command line.
      set(CMAKE_CUDA_ARCHITECTURES 75 90)
    endif()
    set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
    set(CMAKE_CUDA_STANDARD 17)
    enable_language(CUDA)
    set(RARLHF_CUDA_LANG ON)
  elseif(RARLHF_ENABLE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "RARLHF_ENABLE_CUDA=ON but no CUDA compiler (nvcc) was found; "
                        "put nvcc on PATH or set CMAKE_CUDA_COMPILER")
  endif()
endif()
