# Build out-of-tree kernel modules through Kbuild from CMake.
#
# The sources are mirrored into the build tree so that Kbuild's objects
# never land in the source folder, one tree per kernel release so that
# modules for several releases can coexist.

if(NOT RSWAP_KVER)
  execute_process(COMMAND ${CMAKE_SOURCE_DIR}/scripts/vm-kernel-release
                  OUTPUT_VARIABLE RSWAP_KVER OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE kver_rc)
  if(NOT kver_rc EQUAL 0 OR NOT RSWAP_KVER)
    message(FATAL_ERROR "no Debian kernel image found: run scripts/install-deps, or pass -DRSWAP_KVER=RELEASE")
  endif()
endif()
if(NOT RSWAP_KDIR)
  set(RSWAP_KDIR /lib/modules/${RSWAP_KVER}/build)
endif()
if(NOT EXISTS ${RSWAP_KDIR}/Makefile)
  message(FATAL_ERROR "no kernel build tree at ${RSWAP_KDIR}: install linux-headers-${RSWAP_KVER} or pass -DRSWAP_KDIR")
endif()
message(STATUS "kernel modules for ${RSWAP_KVER} (${RSWAP_KDIR})")

# rswap_kbuild_module(TARGET KO_NAME SOURCES... [EXTRA_FILES files...])
# Builds KO_NAME.ko from the current source dir's Kbuild and SOURCES into
# ${CMAKE_CURRENT_BINARY_DIR}/${RSWAP_KVER}/, as part of ALL.
function(rswap_kbuild_module target ko_name)
  cmake_parse_arguments(KB "" "" "SOURCES;EXTRA_FILES" ${ARGN})
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${RSWAP_KVER})
  set(ko ${out}/${ko_name}.ko)
  set(inputs ${KB_SOURCES} ${CMAKE_CURRENT_SOURCE_DIR}/Kbuild ${KB_EXTRA_FILES})
  add_custom_command(
    OUTPUT ${ko}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
    COMMAND ${CMAKE_COMMAND} -E copy_if_different ${inputs} ${out}/
    COMMAND $(MAKE) -C ${RSWAP_KDIR} M=${out} modules
    DEPENDS ${inputs}
    COMMENT "Kbuild ${ko_name}.ko for ${RSWAP_KVER}"
    VERBATIM)
  add_custom_target(${target} ALL DEPENDS ${ko})
endfunction()
