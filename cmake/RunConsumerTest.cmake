# cmake -P script run by the CTest tests package_consumer and fetchcontent_consumer (tests/CMakeLists.txt):
# build tests/consumer against this build of grad the way a user would, then run it.
#
#   MODE=install       `cmake --install` grad into PREFIX, then find_package(grad) from there
#   MODE=fetchcontent  the consumer pulls grad's source tree in with FetchContent
#
# Also given with -D: GRAD_SOURCE_DIR, GRAD_BINARY_DIR, CONSUMER_SOURCE_DIR, WORK_DIR, CONFIG, GENERATOR,
# GENERATOR_PLATFORM, GENERATOR_TOOLSET, MAKE_PROGRAM, CXX_COMPILER, CXX_FLAGS, USE_OPENMP, and
# PREFIX_PATH (the parent build's CMAKE_PREFIX_PATH, :-separated). The consumer uses the same
# generator, compiler and prefix path as the build under test, so it finds the same xtensor/xsimd.

cmake_minimum_required(VERSION 3.21)

function(grad_run step)
  message(STATUS "[${MODE}] ${step}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "[${MODE}] ${step} failed (exit ${rc})")
  endif()
endfunction()

if(NOT CONFIG)
  set(CONFIG Release) # single-config build with no CMAKE_BUILD_TYPE
endif()

# Start from scratch each run: a stale prefix or cache would hide a broken install.
file(REMOVE_RECURSE "${WORK_DIR}")
set(consumer_build "${WORK_DIR}/build")

set(configure_args -S "${CONSUMER_SOURCE_DIR}" -B "${consumer_build}" -G "${GENERATOR}"
    "-DCMAKE_BUILD_TYPE=${CONFIG}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
if(GENERATOR_PLATFORM)
  list(APPEND configure_args -A "${GENERATOR_PLATFORM}")
endif()
if(GENERATOR_TOOLSET)
  list(APPEND configure_args -T "${GENERATOR_TOOLSET}")
endif()
if(MAKE_PROGRAM)
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()

# The environment form of CMAKE_PREFIX_PATH is :-separated, which avoids escaping a ;-list here.
set(prefix_path "${PREFIX_PATH}")

if(MODE STREQUAL "install")
  file(REMOVE_RECURSE "${PREFIX}")
  grad_run("install" "${CMAKE_COMMAND}" --install "${GRAD_BINARY_DIR}" --prefix "${PREFIX}" --config "${CONFIG}")

  # What gets installed must not force the project's own build flags on users.
  file(GLOB_RECURSE targets_file "${PREFIX}/*/gradTargets.cmake")
  if(NOT targets_file)
    message(FATAL_ERROR "[install] no gradTargets.cmake under ${PREFIX}")
  endif()
  file(READ "${targets_file}" targets)
  if(targets MATCHES "march|-W[a-z]|fsanitize")
    message(FATAL_ERROR "[install] ${targets_file} forces build flags on users:\n${targets}")
  endif()
  if(NOT EXISTS "${PREFIX}/include/grad/config.hpp")
    message(FATAL_ERROR "[install] headers were not installed under ${PREFIX}/include/grad")
  endif()

  set(prefix_path "${PREFIX}:${prefix_path}")
elseif(MODE STREQUAL "fetchcontent")
  list(APPEND configure_args "-DGRAD_CONSUMER_FETCH_FROM=${GRAD_SOURCE_DIR}"
       # Same OpenMP choice as the build under test (e.g. a build without libomp).
       "-DGRAD_USE_OPENMP=${USE_OPENMP}")
else()
  message(FATAL_ERROR "unknown MODE '${MODE}'")
endif()

set(ENV{CMAKE_PREFIX_PATH} "${prefix_path}")
grad_run("configure" "${CMAKE_COMMAND}" ${configure_args})
grad_run("build" "${CMAKE_COMMAND}" --build "${consumer_build}" --config "${CONFIG}")

# Single-config generators put the program in the build dir, multi-config ones in a per-config subdir.
set(app "${consumer_build}/${CONFIG}/app")
if(NOT EXISTS "${app}")
  set(app "${consumer_build}/app")
endif()
grad_run("run" "${app}")
