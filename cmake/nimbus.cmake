# Compiler flags shared by every nimbus target, and nimbus_add_part() which
# declares one part (src/<part>/) as the static library nimbus::<part>.

add_library(nimbus_flags INTERFACE)
target_compile_options(nimbus_flags INTERFACE -Wall -Wextra -Wpedantic -Wnon-virtual-dtor
  -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(nimbus_flags INTERFACE -Wshadow=local)
  # GCC 12 misreads Asio's coroutine frame allocator (awaitable_frame_base's
  # sized operator delete) as a mismatched new/delete at -O2; a false positive.
  target_compile_options(nimbus_flags INTERFACE -Wno-mismatched-new-delete)
endif()
# Line tables only (-g1): backtraces, sanitizer reports and perf keep file:line,
# and a build compiles about a third faster than with full -g (measured on
# src/events/invoke_config.cpp: 18.2 s -> 11.6 s at -O2). Configure with
# -DNIMBUS_FULL_DEBUG_INFO=ON for variables and types in gdb.
option(NIMBUS_FULL_DEBUG_INFO "Full debug info (-g) instead of line tables" OFF)
if(NOT NIMBUS_FULL_DEBUG_INFO)
  target_compile_options(nimbus_flags INTERFACE $<$<CONFIG:RelWithDebInfo,Debug>:-g1>)
endif()
# Unity builds (CMAKE_UNITY_BUILD, used by the sanitizer tree): each .cpp is
# included into a batch file, so GCC sees the anonymous-namespace types of
# one file as "used from another" and warns; the types are still internal.
if(CMAKE_UNITY_BUILD AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(nimbus_flags INTERFACE -Wno-subobject-linkage)
endif()
if(NIMBUS_WERROR)
  target_compile_options(nimbus_flags INTERFACE -Werror)
endif()
# Boost.Asio: C++20 coroutines, no deprecated interfaces.
target_compile_definitions(nimbus_flags INTERFACE BOOST_ASIO_NO_DEPRECATED
 )
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  target_compile_options(nimbus_flags INTERFACE -Wthread-safety)
endif()

if(NIMBUS_SANITIZE)
  string(REPLACE "," ";" _san_list "${NIMBUS_SANITIZE}")
  foreach(_san IN LISTS _san_list)
    if(NOT _san MATCHES "^(address|undefined|thread|leak)$")
      message(FATAL_ERROR "NIMBUS_SANITIZE: unknown sanitizer '${_san}'")
    endif()
  endforeach()
  set(_san_flags -fsanitize=${NIMBUS_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  # Clang 14's -fsanitize=function cannot emit the split functions of C++20
  # coroutines ("Cannot represent a difference across sections"); the other
  # UBSan checks stay.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND _san_list MATCHES "undefined")
    list(APPEND _san_flags -fno-sanitize=function)
  endif()
  target_compile_options(nimbus_flags INTERFACE ${_san_flags})
  target_link_options(nimbus_flags INTERFACE ${_san_flags})
endif()

# The fuzz tree: every part compiled with libFuzzer's coverage instrumentation.
if(NIMBUS_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "NIMBUS_FUZZ needs Clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++-14")
  endif()
  target_compile_options(nimbus_flags INTERFACE -fsanitize=fuzzer-no-link)
endif()

# nimbus_add_part(<name> SOURCES ... DEPS ...)
function(nimbus_add_part name)
  cmake_parse_arguments(P "" "" "SOURCES;DEPS" ${ARGN})
  add_library(nimbus_${name} STATIC ${P_SOURCES})
  add_library(nimbus::${name} ALIAS nimbus_${name})
  target_include_directories(nimbus_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(nimbus_${name} PUBLIC nimbus_flags ${P_DEPS})
endfunction()
