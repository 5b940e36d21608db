# pgring_component(NAME DEPS...): one folder = one static library target `pgring_<NAME>`,
# built from every .cc in the folder except main.cc.
function(pgring_component name)
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  list(FILTER srcs EXCLUDE REGEX ".*/main\\.cc$")
  if(srcs)
    add_library(pgring_${name} STATIC ${srcs})
    target_link_libraries(pgring_${name} PUBLIC ${ARGN})
  else()
    add_library(pgring_${name} INTERFACE)
    target_link_libraries(pgring_${name} INTERFACE ${ARGN})
  endif()
endfunction()
