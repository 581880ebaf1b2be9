# cmake -P script run after a doctest program is built (see GradDoctest.cmake): lists its test cases
# and writes OUTPUT, a CTest file with one add_test per case.
# Inputs (-D): TARGET, EXECUTABLE, WORKING_DIRECTORY, OUTPUT.

cmake_minimum_required(VERSION 3.21) # policies of script mode (IN_LIST)

execute_process(COMMAND "${EXECUTABLE}" --list-test-cases
                WORKING_DIRECTORY "${WORKING_DIRECTORY}"
                OUTPUT_VARIABLE listing ERROR_VARIABLE errors RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE "${OUTPUT}")
  message(FATAL_ERROR "${TARGET}: listing its test cases failed (exit ${rc}):\n${listing}\n${errors}")
endif()

# A case name may contain ';', which would split it when the listing becomes a CMake list of lines, or
# an unbalanced '[' or ']', which would glue two lines together: park them as control characters.
string(ASCII 1 semicolon)
string(ASCII 2 lbracket)
string(ASCII 3 rbracket)
string(REPLACE ";" "${semicolon}" listing "${listing}")
string(REPLACE "[" "${lbracket}" listing "${listing}")
string(REPLACE "]" "${rbracket}" listing "${listing}")
string(REPLACE "\n" ";" lines "${listing}")

set(script "")
set(seen "") # names still in parked form, so that list operations cannot trip over them
foreach(line IN LISTS lines)
  if(line STREQUAL "" OR line MATCHES "^${lbracket}doctest${rbracket} " OR line MATCHES "^=+$")
    continue() # doctest's header and separator lines
  endif()
  if(line IN_LIST seen)
    continue() # two cases with one name: the filter below runs both
  endif()
  list(APPEND seen "${line}")
  string(REPLACE "${lbracket}" "[" line "${line}")
  string(REPLACE "${rbracket}" "]" line "${line}")
  # CTest name: a ';' cannot be part of one, show it as ','.
  string(REPLACE "${semicolon}" "," name "${TARGET}/${line}")
  # doctest filter: ',' separates patterns, so escape it; '?' (any one character) stands for ';'.
  string(REPLACE "," "\\," filter "${line}")
  string(REPLACE "${semicolon}" "?" filter "${filter}")
  string(APPEND script
    "add_test([==[${name}]==] [==[${EXECUTABLE}]==] [==[--test-case=${filter}]==])\n"
    "set_tests_properties([==[${name}]==] PROPERTIES WORKING_DIRECTORY [==[${WORKING_DIRECTORY}]==]\n"
    # doctest exits 0 when its filter selects nothing; that must not count as a pass.
    "  FAIL_REGULAR_EXPRESSION [==[test cases: +0 [|]]==])\n")
endforeach()

if(seen STREQUAL "")
  string(APPEND script "add_test([==[${TARGET}/NO_TEST_CASES]==] [==[${TARGET}_has_no_test_cases]==])\n")
endif()
file(WRITE "${OUTPUT}" "${script}")
