# rarlhf_area(<area> DEPS ...): src/<area>/*.cpp -> static library rarlhf_<area>.
# Files named *_cuda.cpp use torch's CUDA API and are compiled only when the kernels are linked.
set(RARLHF_AREA_TARGETS "" CACHE INTERNAL "")

function(rarlhf_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()

function(rarlhf_area area)
  cmake_parse_arguments(A "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/${area}/*.cpp)
  if(NOT RARLHF_CUDA_KERNELS_LINKED)
    list(FILTER srcs EXCLUDE REGEX "_cuda\\.cpp$")
  endif()
  set(deps "")
  foreach(d ${A_DEPS})
    if(d MATCHES "^rarlhf_" AND NOT TARGET ${d})
      continue()  # an area with no sources yet
    endif()
    list(APPEND deps ${d})
  endforeach()
  if(NOT srcs)
    return()
  endif()
  add_library(rarlhf_${area} STATIC ${srcs})
  target_include_directories(rarlhf_${area} PUBLIC
    ${CMAKE_CURRENT_SOURCE_DIR}/include ${CMAKE_CURRENT_BINARY_DIR}/generated)
  target_link_libraries(rarlhf_${area} PUBLIC ${deps} Threads::Threads)
  target_compile_definitions(rarlhf_${area} PUBLIC RARLHF_CUDA_KERNELS=${RARLHF_CUDA_KERNELS_LINKED})
  rarlhf_warnings(rarlhf_${area})
  set(RARLHF_AREA_TARGETS ${RARLHF_AREA_TARGETS} rarlhf_${area} CACHE INTERNAL "")
endfunction()

# tests/<area>/*.cpp -> test_<area>; tests/cuda -> test_cuda (CTest label "cuda"). tests/support/*.cpp
# (temp dirs, a tiny policy, fake rewards: "support/....h") is a library linked into every one.
# DISCOVERY_MODE PRE_TEST: a crashing test binary is a failed test, not a failed build.
function(rarlhf_tests)
  file(GLOB support_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/support/*.cpp)
  add_library(rarlhf_test_support STATIC ${support_srcs})
  target_link_libraries(rarlhf_test_support PUBLIC rarlhf_core GTest::gtest)
  target_include_directories(rarlhf_test_support PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/tests)
  target_compile_definitions(rarlhf_test_support PRIVATE RARLHF_SOURCE_DIR="${CMAKE_CURRENT_SOURCE_DIR}"
    RARLHF_BINARY_DIR="${CMAKE_CURRENT_BINARY_DIR}")
  rarlhf_warnings(rarlhf_test_support)
  file(GLOB dirs LIST_DIRECTORIES true ${CMAKE_CURRENT_SOURCE_DIR}/tests/*)
  foreach(dir ${dirs})
    get_filename_component(area ${dir} NAME)
    if(NOT IS_DIRECTORY ${dir} OR area STREQUAL "support")
      continue()
    endif()
    file(GLOB srcs CONFIGURE_DEPENDS ${dir}/*.cpp)
    if(NOT srcs)
      continue()
    endif()
    add_executable(test_${area} ${srcs})
    target_link_libraries(test_${area} PRIVATE rarlhf_test_support rarlhf_core GTest::gtest_main)
    target_include_directories(test_${area} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/tests)
    target_compile_definitions(test_${area} PRIVATE
      RARLHF_SOURCE_DIR="${CMAKE_CURRENT_SOURCE_DIR}"
      RARLHF_BINARY_DIR="${CMAKE_CURRENT_BINARY_DIR}")
    set(labels ${area})
    if(area STREQUAL "cuda")
      list(APPEND labels cuda)
    endif()
    gtest_discover_tests(test_${area} DISCOVERY_MODE PRE_TEST
      WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
      PROPERTIES LABELS "${labels}" ENVIRONMENT "RARLHF_SOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}")
  endforeach()
endfunction()
