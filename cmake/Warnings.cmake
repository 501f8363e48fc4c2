# Warnings are errors for the project's own code. Generated protobuf code is
# compiled without them (see proto/CMakeLists.txt).
set(ILA_WARNING_FLAGS
    -Wall -Wextra -Werror -Werror=unused-result -Wno-unused-parameter
    -Wnon-virtual-dtor)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  list(APPEND ILA_WARNING_FLAGS -Wshadow=local)
else()
  list(APPEND ILA_WARNING_FLAGS -Wshadow-uncaptured-local)
endif()

# -DILA_SANITIZE=ON (with clang): the whole project, tests included, under
# AddressSanitizer + UndefinedBehaviorSanitizer (`make test-asan`). Any
# finding aborts the process, so a test that triggers one fails.
option(ILA_SANITIZE "Build with ASan + UBSan" OFF)
# -DILA_FUZZ=ON (with clang; `make fuzz`): also the libFuzzer binaries of
# tests/fuzz, with the project's code instrumented for coverage.
option(ILA_FUZZ "Build the libFuzzer targets" OFF)
if(ILA_FUZZ)
  set(ILA_SANITIZE ON)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
if(ILA_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

function(ila_target_warnings target)
  target_compile_options(${target} PRIVATE ${ILA_WARNING_FLAGS})
endfunction()

# ila_test(NAME SOURCES... LIBS ... [LABELS ...] [TIMEOUT seconds])
function(ila_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${name} ${T_SOURCES}
                         ${PROJECT_SOURCE_DIR}/tests/testing/test_main.cc)
  ila_target_warnings(${name})
  target_link_libraries(${name} PRIVATE ${T_LIBS} ila_common GTest::gmock
                                        GTest::gtest)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                                           ${CMAKE_BINARY_DIR}/tests)
  set(props TIMEOUT ${T_TIMEOUT})
  if(T_LABELS)
    list(APPEND props LABELS "${T_LABELS}")
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES ${props})
endfunction()
