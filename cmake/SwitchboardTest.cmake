include(GoogleTest)
# switchboard_add_test(NAME SOURCES src... LIBS lib... [LABELS label...]
#                      [SERIAL gtest-filter])
# One gtest binary; each of its tests becomes a ctest test. Tests matching
# SERIAL (e.g. the ones that restart a broker every other test uses) run
# alone: RUN_SERIAL keeps ctest -j from running anything beside them.
function(switchboard_add_test name)
  cmake_parse_arguments(ARG "" "SERIAL" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gmock GTest::gtest_main)
  set(labels unit)
  if(ARG_LABELS)
    set(labels ${ARG_LABELS})
  endif()
  if(ARG_SERIAL)
    gtest_discover_tests(${name} TEST_FILTER "-${ARG_SERIAL}" DISCOVERY_TIMEOUT 60
                         PROPERTIES TIMEOUT 300 LABELS "${labels}")
    gtest_discover_tests(${name} TEST_FILTER "${ARG_SERIAL}" DISCOVERY_TIMEOUT 60
                         PROPERTIES RUN_SERIAL TRUE TIMEOUT 300 LABELS "${labels}")
  else()
    gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300 LABELS "${labels}")
  endif()
endfunction()
