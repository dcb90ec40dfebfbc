# Helpers shared by every module: one library target per module, warnings, and a torch precompiled header
# reused by all ML targets (a TU that includes <torch/torch.h> costs ~15 s without it).

set(VIGIL_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare)

# vigil_add_module(NAME name SOURCES ... DEPS ... [TORCH])
function(vigil_add_module)
  cmake_parse_arguments(M "TORCH" "NAME" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(vigil_${M_NAME} STATIC ${M_SOURCES})
  target_include_directories(vigil_${M_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/include
                                                   PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(vigil_${M_NAME} PRIVATE ${VIGIL_WARNINGS})
  target_link_libraries(vigil_${M_NAME} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  if(M_TORCH)
    target_link_libraries(vigil_${M_NAME} PUBLIC torch)
    vigil_use_torch_pch(vigil_${M_NAME})
  endif()
  add_library(vigil::${M_NAME} ALIAS vigil_${M_NAME})
endfunction()

# One precompiled header for every target that includes torch, built once and reused.
function(vigil_use_torch_pch target)
  if(NOT TARGET vigil_torch_pch)
    add_library(vigil_torch_pch STATIC ${PROJECT_SOURCE_DIR}/cmake/pch_anchor.cpp)
    target_link_libraries(vigil_torch_pch PUBLIC torch)
    target_compile_options(vigil_torch_pch PRIVATE ${VIGIL_WARNINGS})
    target_precompile_headers(vigil_torch_pch PRIVATE <torch/torch.h> <vector> <string> <memory>)
  endif()
  target_precompile_headers(${target} REUSE_FROM vigil_torch_pch)
  target_compile_options(${target} PRIVATE ${VIGIL_WARNINGS})
endfunction()

# vigil_add_test(NAME name SOURCES ... DEPS ... LABELS ... [TIMEOUT s])
function(vigil_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} ${OpenCV_LIBS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_options(${T_NAME} PRIVATE ${VIGIL_WARNINGS})
  target_compile_definitions(${T_NAME} PRIVATE
    VIGIL_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    VIGIL_BINARY="$<TARGET_FILE:vigil>")
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
                       ENVIRONMENT "VIGIL_SHARED_DIR=${PROJECT_SOURCE_DIR}/../shared")
endfunction()
