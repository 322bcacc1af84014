# Dependencies: find_package first; for the header/source libraries a FetchContent fallback with a
# pinned URL + hash. FETCHCONTENT_SOURCE_DIR_<NAME> points at a local copy for offline machines:
# either a source tree with a CMakeLists.txt or a bare include folder (e.g. Debian's headers copied).
include(FetchContent)

# TorchConfig.cmake finds LibTorch's own libraries with find_library(... PATHS <prefix>/lib), which
# looks in the system's directories first: where Debian's libtorch-dev is installed too, pip's torch
# (CMAKE_PREFIX_PATH=.../torch/share/cmake) got its 2.x headers linked against Debian's libtorch.so.
# Search the lib/ beside each LibTorch config named here before the system's.
string(REPLACE ":" ";" _rarlhf_env_prefix "$ENV{CMAKE_PREFIX_PATH}")
set(_rarlhf_torch_cfgs ${Torch_DIR})
foreach(_p IN LISTS CMAKE_PREFIX_PATH _rarlhf_env_prefix)
  list(APPEND _rarlhf_torch_cfgs "${_p}/Torch")
endforeach()
foreach(_d IN LISTS _rarlhf_torch_cfgs)
  if(EXISTS "${_d}/TorchConfig.cmake" AND EXISTS "${_d}/../../../lib")
    get_filename_component(_lib "${_d}/../../../lib" ABSOLUTE)
    list(PREPEND CMAKE_LIBRARY_PATH "${_lib}")
  endif()
endforeach()
find_package(Torch REQUIRED)
message(STATUS "rarlhf: LibTorch ${Torch_VERSION} from ${TORCH_LIBRARY}")
# Every TU must agree with LibTorch on the libstdc++ ABI, also the torch-free ones.
string(APPEND CMAKE_CXX_FLAGS " ${TORCH_CXX_FLAGS}")
find_package(Threads REQUIRED)

# rarlhf_dep(<Name> <target> <url> <sha256> [HEADER_ONLY_DEFS defs...])
# Defines <target> from an installed package, a local copy, or a download.
function(rarlhf_dep name target url hash)
  cmake_parse_arguments(D "" "" "DEFS;LIBS" ${ARGN})
  if(TARGET ${target})
    return()
  endif()
  find_package(${name} QUIET CONFIG)
  if(TARGET ${target})
    message(STATUS "rarlhf: ${name}: installed package")
    return()
  endif()
  string(TOUPPER ${name} upper)
  set(local "${FETCHCONTENT_SOURCE_DIR_${upper}}")
  if(local AND NOT EXISTS "${local}/CMakeLists.txt")
    # A bare include folder: wrap it as an interface target.
    string(REPLACE "::" "_" plain ${target})
    add_library(${plain} INTERFACE)
    target_include_directories(${plain} SYSTEM INTERFACE ${local})
    target_compile_definitions(${plain} INTERFACE ${D_DEFS})
    target_link_libraries(${plain} INTERFACE ${D_LIBS})
    add_library(${target} ALIAS ${plain})
    message(STATUS "rarlhf: ${name}: include folder ${local}")
    return()
  endif()
  message(STATUS "rarlhf: ${name}: FetchContent (${url})")
  FetchContent_Declare(${name} URL ${url} URL_HASH SHA256=${hash})
  FetchContent_MakeAvailable(${name})
endfunction()

# Hashes are the release archives' SHA-256 as pinned by other build systems (Spack, Bazel
# WORKSPACE files) and cross-checked between several of them.
rarlhf_dep(nlohmann_json nlohmann_json::nlohmann_json
  https://github.com/nlohmann/json/releases/download/v3.11.3/json.tar.xz
  d6c65aca6b1ed68e7a182f4757257b107ae403032760ed6ef121c9d55e81757d)
rarlhf_dep(CLI11 CLI11::CLI11
  https://github.com/CLIUtils/CLI11/archive/refs/tags/v2.3.2.tar.gz
  aac0ab42108131ac5d3344a9db0fdf25c4db652296641955720a4fbe52334e22)
# spdlog from a bare include folder is used header-only with fmt bundled or FMT_HEADER_ONLY.
rarlhf_dep(spdlog spdlog::spdlog
  https://github.com/gabime/spdlog/archive/refs/tags/v1.12.0.tar.gz
  4dccf2d10f410c1e2feaff89966bfc49a1abb29ef6f08246335b110e001e09a9
  DEFS SPDLOG_HEADER_ONLY SPDLOG_FMT_EXTERNAL FMT_HEADER_ONLY)
# pip's torch ships fmt's headers in its include folder (2.13: fmt 12). An installed spdlog built on the
# system's fmt (Debian 12: spdlog 1.10 + fmt 9) then saw fmt 12 in every TU that includes torch
# (the system's /usr/include is searched last) and did not compile. Put the system fmt's headers in
# front of LibTorch's for every target.
if(TARGET fmt::fmt)
  get_target_property(_rarlhf_fmt_inc fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
  foreach(_d IN LISTS TORCH_INCLUDE_DIRS)
    if(_rarlhf_fmt_inc AND EXISTS "${_d}/fmt/core.h" AND NOT "${_d}" IN_LIST _rarlhf_fmt_inc)
      list(GET _rarlhf_fmt_inc 0 _rarlhf_fmt_dir)
      set(_rarlhf_fmt_front "${CMAKE_BINARY_DIR}/rarlhf-system-fmt")
      file(MAKE_DIRECTORY "${_rarlhf_fmt_front}")
      file(CREATE_LINK "${_rarlhf_fmt_dir}/fmt" "${_rarlhf_fmt_front}/fmt" SYMBOLIC)
      include_directories(BEFORE SYSTEM "${_rarlhf_fmt_front}")
      message(STATUS "rarlhf: fmt: ${_rarlhf_fmt_dir}/fmt ahead of LibTorch's bundled ${_d}/fmt")
      break()
    endif()
  endforeach()
endif()

if(RARLHF_BUILD_TESTS)
  find_package(GTest QUIET)
  if(NOT TARGET GTest::gtest_main)
    set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
    FetchContent_Declare(googletest
      URL https://github.com/google/googletest/archive/refs/tags/release-1.12.1.tar.gz
      URL_HASH SHA256=81964fe578e9bd7c94dfdb09c8e4d6e6759e19967e397dbea48d1c10e45d0df2)
    FetchContent_MakeAvailable(googletest)
    if(NOT TARGET GTest::gtest_main)
      add_library(GTest::gtest_main ALIAS gtest_main)
    endif()
  endif()
endif()
if(RARLHF_BUILD_BENCH)
  find_package(benchmark QUIET)
endif()

# CUDA kernels: linked only when this LibTorch has CUDA; otherwise compile-only (see cuda.cmake).
set(RARLHF_CUDA_KERNELS_LINKED 0)
set(RARLHF_CUDA_KERNEL_LIB "")
if(RARLHF_CUDA_LANG)
  file(GLOB RARLHF_CU_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/kernels/*.cu)
  if(RARLHF_CU_SOURCES)
    add_library(rarlhf_cuda_kernels STATIC ${RARLHF_CU_SOURCES})
    # The .cu files include only src/kernels/cuda_kernels.h (beside them) and CUDA's own headers.
    target_compile_options(rarlhf_cuda_kernels PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -lineinfo>)
    if(TORCH_CUDA_LIBRARIES)
      set(RARLHF_CUDA_KERNELS_LINKED 1)
      set(RARLHF_CUDA_KERNEL_LIB rarlhf_cuda_kernels)
      message(STATUS "rarlhf: CUDA kernels: built and linked (LibTorch has CUDA)")
    else()
      message(STATUS "rarlhf: CUDA kernels: compile-only (this LibTorch has no CUDA)")
    endif()
  endif()
endif()
