# protobuf-c code and descriptor sets generated at build time from .proto files (never committed).
#
#   mk_proto_library(mk_proto_coordinator PROTOS coordinator.proto DESCRIPTOR_SET coordinator.pb)
#     -> static library with <name>.pb-c.{c,h} in the current binary dir (on its include path),
#        and, with DESCRIPTOR_SET, that file (--include_imports) in the current binary dir,
#        built with the library (all PROTOS of one call share a folder, their import root); its path is in the variable <target>_DESCRIPTOR_SET.
include_guard(GLOBAL)

find_program(MK_PROTOC_C protoc-c REQUIRED)
pkg_check_modules(PROTOBUF_C REQUIRED IMPORTED_TARGET GLOBAL libprotobuf-c)

function(mk_proto_library target)
    cmake_parse_arguments(P "" "DESCRIPTOR_SET" "PROTOS" ${ARGN})
    set(srcs)
    set(abs_protos)
    foreach(proto ${P_PROTOS})
        get_filename_component(we ${proto} NAME_WE)
        get_filename_component(abs ${proto} ABSOLUTE)
        get_filename_component(dir ${abs} DIRECTORY)
        list(APPEND abs_protos ${abs})
        set(c ${CMAKE_CURRENT_BINARY_DIR}/${we}.pb-c.c)
        set(h ${CMAKE_CURRENT_BINARY_DIR}/${we}.pb-c.h)
        add_custom_command(OUTPUT ${c} ${h}
            COMMAND ${MK_PROTOC_C} --c_out=${CMAKE_CURRENT_BINARY_DIR}
                    -I${dir} ${abs}
            DEPENDS ${abs}
            COMMENT "protoc-c ${proto}")
        list(APPEND srcs ${c})
    endforeach()
    add_library(${target} STATIC ${srcs})
    target_include_directories(${target} PUBLIC ${CMAKE_CURRENT_BINARY_DIR})
    target_link_libraries(${target} PUBLIC PkgConfig::PROTOBUF_C)
    # Generated code is not ours to warn about.
    target_compile_options(${target} PRIVATE -w)
    if(P_DESCRIPTOR_SET)
        set(ds ${CMAKE_CURRENT_BINARY_DIR}/${P_DESCRIPTOR_SET})
        add_custom_command(OUTPUT ${ds}
            COMMAND ${MK_PROTOC_C} --descriptor_set_out=${ds} --include_imports
                    -I${dir} ${abs_protos}
            DEPENDS ${abs_protos}
            COMMENT "descriptor set ${P_DESCRIPTOR_SET}")
        add_custom_target(${target}_descriptor DEPENDS ${ds})
        add_dependencies(${target} ${target}_descriptor)
        set(${target}_DESCRIPTOR_SET ${ds} PARENT_SCOPE)
    endif()
endfunction()
