# Build settings for grad's OWN programs (tests, examples, benchmarks). None of this is attached to
# grad::grad: a library must not impose its warnings, -Werror, sanitizers or -march on its users.

include(CheckCXXCompilerFlag)

# grad_dev_options: warnings, -Werror and sanitizers, shared by every own program. Not installed.
add_library(grad_dev_options INTERFACE)
target_compile_options(grad_dev_options INTERFACE -Wall -Wextra -Wpedantic)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC PR105593: g++ 12 warns about its own AVX-512 intrinsics headers in any TU that uses xt::exp.
  target_compile_options(grad_dev_options INTERFACE -Wno-maybe-uninitialized)
  if(CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    # GCC PR105651: g++ 12 at -O3 warns that std::string's operator+ "may overlap" in memcpy (inlined
    # from <bits/char_traits.h>); a false positive that floods the log of any test building messages.
    target_compile_options(grad_dev_options INTERFACE -Wno-restrict)
  endif()
elseif(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  # xsimd 8.1's avx512 fma is a plain x*y+z; g++ fuses it by default, clang only with this flag.
  target_compile_options(grad_dev_options INTERFACE -ffp-contract=fast)
endif()
if(GRAD_WERROR)
  target_compile_options(grad_dev_options INTERFACE -Werror)
endif()
if(GRAD_SANITIZE)
  # -fno-sanitize-recover=all: a UBSan finding aborts the test (non-zero exit) instead of a log line
  # that CTest would report as a pass.
  set(_grad_san -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_compile_options(grad_dev_options INTERFACE ${_grad_san})
  target_link_options(grad_dev_options INTERFACE ${_grad_san})
endif()

if(GRAD_NATIVE)
  check_cxx_compiler_flag(-march=native GRAD_COMPILER_HAS_MARCH_NATIVE)
  if(NOT GRAD_COMPILER_HAS_MARCH_NATIVE)
    message(FATAL_ERROR "grad: GRAD_NATIVE=ON but ${CMAKE_CXX_COMPILER} does not accept -march=native")
  endif()
endif()

# grad_add_program(<name> <source> [MARCH <arch>] [LIBRARIES <lib>...])
#   An executable of grad's own, linked to grad::grad with grad_dev_options. It is compiled for
#   -march=<arch> when MARCH is given, else for -march=native when GRAD_NATIVE is ON, else for the
#   compiler's default architecture.
function(grad_add_program name source)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "MARCH" "LIBRARIES")
  add_executable(${name} "${source}")
  target_link_libraries(${name} PRIVATE grad::grad grad_dev_options ${arg_LIBRARIES})
  if(arg_MARCH)
    target_compile_options(${name} PRIVATE -march=${arg_MARCH})
  elseif(GRAD_NATIVE)
    target_compile_options(${name} PRIVATE -march=native)
  endif()
endfunction()
