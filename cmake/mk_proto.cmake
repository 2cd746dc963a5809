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
        mk_proto_descriptor_set(${target}_descriptor OUTPUT ${P_DESCRIPTOR_SET} PROTOS ${P_PROTOS})
        add_dependencies(${target} ${target}_descriptor)
        set(${target}_DESCRIPTOR_SET ${${target}_descriptor_FILE} PARENT_SCOPE)
    endif()
endfunction()

#   mk_proto_descriptor_set(target OUTPUT x.pb PROTOS a.proto ...)
#     -> custom target building only the descriptor set (--include_imports; imports are found
#        from the folder of the first proto); its path is in <target>_FILE.
function(mk_proto_descriptor_set target)
    cmake_parse_arguments(P "" "OUTPUT" "PROTOS" ${ARGN})
    set(abs_protos)
    set(deps)
    foreach(proto ${P_PROTOS})
        get_filename_component(abs ${proto} ABSOLUTE)
        list(APPEND abs_protos ${abs})
    endforeach()
    list(GET abs_protos 0 first)
    get_filename_component(dir ${first} DIRECTORY)
    file(GLOB_RECURSE deps CONFIGURE_DEPENDS ${dir}/*.proto)
    set(ds ${CMAKE_CURRENT_BINARY_DIR}/${P_OUTPUT})
    add_custom_command(OUTPUT ${ds}
        COMMAND ${MK_PROTOC_C} --descriptor_set_out=${ds} --include_imports -I${dir} ${abs_protos}
        DEPENDS ${abs_protos} ${deps}
        COMMENT "descriptor set ${P_OUTPUT}")
    add_custom_target(${target} DEPENDS ${ds})
    set(${target}_FILE ${ds} PARENT_SCOPE)
endfunction()
