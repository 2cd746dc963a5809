# Helpers shared by every module's CMakeLists.txt.
#
#   mk_module(route SOURCES route.c DEPS mk_str)        -> static library mk_route
#   mk_test(route_test SOURCES route_test.c DEPS mk_route)  -> executable registered with ctest
#
# A module's public header sits beside its sources; dependents include it as "route/route.h"
# because pkg/ is on the include path.

function(mk_module name)
    cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
    add_library(mk_${name} STATIC ${M_SOURCES})
    target_include_directories(mk_${name} PUBLIC ${CMAKE_SOURCE_DIR}/pkg)
    target_link_libraries(mk_${name} PUBLIC ${M_DEPS})
endfunction()

function(mk_test name)
    cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;DEPS" ${ARGN})
    foreach(src ${T_SOURCES})
        if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${src})
            message(FATAL_ERROR "${name}: missing test source ${src}")
        endif()
    endforeach()
    add_executable(${name} ${T_SOURCES})
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/pkg)
    target_link_libraries(${name} PRIVATE mk_testing ${T_DEPS})
    add_test(NAME ${name} COMMAND ${name})
    if(T_TIMEOUT)
        set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT})
    else()
        set_tests_properties(${name} PROPERTIES TIMEOUT 120)
    endif()
endfunction()
