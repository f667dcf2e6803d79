# parley_build_flags: warnings (errors on our code) and optional sanitizers.
add_library(parley_build_flags INTERFACE)
target_compile_options(parley_build_flags INTERFACE -Wall -Wextra -Werror -Wno-unused-parameter)
if(PARLEY_SANITIZE)
  # UBSan's null check fires inside CAF 0.17's own headers (see DESIGN.md).
  target_compile_options(parley_build_flags INTERFACE
    -fsanitize=address,undefined -fno-sanitize=null -fno-omit-frame-pointer)
  target_link_options(parley_build_flags INTERFACE -fsanitize=address,undefined -fno-sanitize=null)
endif()

# parley_library(NAME <name> SOURCES ... DEPS ...): one library target per folder,
# exported as parley::<name>, with include root at the repository top.
function(parley_library)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(parley_${ARG_NAME} STATIC ${ARG_SOURCES})
  add_library(parley::${ARG_NAME} ALIAS parley_${ARG_NAME})
  target_include_directories(parley_${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_link_libraries(parley_${ARG_NAME} PUBLIC parley_build_flags ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
endfunction()

include(GoogleTest)
# parley_test(NAME <name> LABEL unit|integration|cluster [TIMEOUT <s>] SOURCES ... DEPS ...):
# a GoogleTest binary whose tests are discovered at test time and labelled; TIMEOUT
# bounds each of its tests (else ctest's --timeout applies).
# Non-unit tests share the servers scripts/test started, so they hold a resource
# lock: they run one at a time while unit tests run beside them.
function(parley_test)
  cmake_parse_arguments(ARG "" "NAME;LABEL;TIMEOUT" "SOURCES;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE parley_build_flags ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  set(props LABELS ${ARG_LABEL})
  if(NOT ARG_LABEL STREQUAL "unit")
    list(APPEND props RESOURCE_LOCK servers)
  endif()
  if(ARG_TIMEOUT)
    list(APPEND props TIMEOUT ${ARG_TIMEOUT})
  endif()
  gtest_discover_tests(${ARG_NAME}
    DISCOVERY_MODE PRE_TEST
    TEST_PREFIX "${ARG_LABEL}."
    PROPERTIES ${props}
    DISCOVERY_TIMEOUT 60)
endfunction()
