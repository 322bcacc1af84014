# Sanitizer and fuzzing builds (scripts/sanitize.sh, scripts/fuzz.sh; docs/fuzzing.md).
#   RARLHF_SANITIZE=address,undefined  every target of ours is compiled and linked with these
#                                      -fsanitize= checks (UBSan findings abort, not just print)
#   RARLHF_FUZZ=ON                     clang only: libFuzzer coverage on our code
#                                      (-fsanitize=fuzzer-no-link) and fuzz/fuzz_<reader>.cpp ->
#                                      fuzz_<reader> executables (-fsanitize=fuzzer)
# LibTorch, ICU, GoogleTest and the SentencePiece shim's library stay uninstrumented; the shim
# module itself is built without the flags (it is dlmopen'd into its own namespace, where no
# sanitizer runtime is loaded).
set(RARLHF_SANITIZE "" CACHE STRING "Comma-separated -fsanitize= list for a checking build (e.g. address,undefined)")
option(RARLHF_FUZZ "Build the libFuzzer harnesses in fuzz/ (clang)" OFF)

set(RARLHF_SANITIZE_FLAGS "")
if(RARLHF_SANITIZE)
  list(APPEND RARLHF_SANITIZE_FLAGS -fsanitize=${RARLHF_SANITIZE} -fno-omit-frame-pointer -g)
  if(RARLHF_SANITIZE MATCHES "undefined")
    list(APPEND RARLHF_SANITIZE_FLAGS -fno-sanitize-recover=undefined)
  endif()
endif()
if(RARLHF_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "RARLHF_FUZZ=ON needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang")
  endif()
  list(APPEND RARLHF_SANITIZE_FLAGS -fsanitize=fuzzer-no-link)
endif()
if(RARLHF_SANITIZE_FLAGS)
  add_compile_options(${RARLHF_SANITIZE_FLAGS})
  add_link_options(${RARLHF_SANITIZE_FLAGS})
  message(STATUS "rarlhf: instrumented build: ${RARLHF_SANITIZE_FLAGS}")
endif()

# Targets loaded where no sanitizer runtime is (the dlmopen'd SentencePiece shim).
function(rarlhf_uninstrumented target)
  if(RARLHF_SANITIZE_FLAGS)
    target_compile_options(${target} PRIVATE -fno-sanitize=all)
    if(RARLHF_FUZZ)
      target_compile_options(${target} PRIVATE -fsanitize-coverage=0)
    endif()
    target_link_options(${target} PRIVATE -fno-sanitize=all)
  endif()
endfunction()

# fuzz/fuzz_<reader>.cpp -> fuzz_<reader>, linked with libFuzzer's main.
function(rarlhf_fuzzers)
  if(NOT RARLHF_FUZZ)
    return()
  endif()
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_*.cpp)
  foreach(src ${srcs})
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src})
    target_link_libraries(${name} PRIVATE rarlhf_io rarlhf_config rarlhf_data rarlhf_text)  # the readers only
    target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})  # "fuzz/fuzz_support.h"
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    rarlhf_warnings(${name})
  endforeach()
endfunction()
