# grad_doctest_discover_tests(<target>)
#   Registers every TEST_CASE of the doctest program <target> as its own CTest test named
#   "<target>/<case name>". The cases are listed by running the program after each build
#   (cmake/GradDoctestAddTests.cmake), so adding a case needs no re-configure.
#
# Used instead of doctest's own doctest_discover_tests (doctest 2.4.9), which splits a case name that
# contains ';' (CMake's list separator) into two CTest tests whose filters select no case at all, so
# both "pass" without running anything. Here a ';' survives, and a test whose filter selects no case
# fails instead of passing.

set(_GRAD_DOCTEST_ADD_TESTS_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/GradDoctestAddTests.cmake")

function(grad_doctest_discover_tests target)
  set(tests_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_tests.cmake")
  add_custom_command(TARGET ${target} POST_BUILD
    BYPRODUCTS "${tests_file}"
    COMMAND "${CMAKE_COMMAND}" -D "TARGET=${target}" -D "EXECUTABLE=$<TARGET_FILE:${target}>"
            -D "WORKING_DIRECTORY=${CMAKE_CURRENT_BINARY_DIR}" -D "OUTPUT=${tests_file}"
            -P "${_GRAD_DOCTEST_ADD_TESTS_SCRIPT}"
    VERBATIM)

  # Read by CTest at test time. Until the program has built there is no list: register one test
  # that fails, so a file that does not compile shows up in the summary instead of vanishing.
  set(include_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_include.cmake")
  file(WRITE "${include_file}"
       "if(EXISTS \"${tests_file}\")\n"
       "  include(\"${tests_file}\")\n"
       "else()\n"
       "  add_test(\"${target}/NOT_BUILT\" \"${target}_did_not_build\")\n"
       "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${include_file}")
endfunction()
