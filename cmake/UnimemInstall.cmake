# cmake --install: the library, its headers (with the generated config.hpp), the CLI, and a CMake package so
# that consumers write find_package(unimem CONFIG REQUIRED) and link unimem::unimem.
include(CMakePackageConfigHelpers)

install(TARGETS unimem EXPORT unimemTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/unimem DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/unimem/config.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/unimem)
if(UNIMEM_BUILD_TOOLS)
  install(TARGETS unimem_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

set(UNIMEM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/unimem)
install(EXPORT unimemTargets NAMESPACE unimem:: DESTINATION ${UNIMEM_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/unimemConfig.cmake.in
  ${PROJECT_BINARY_DIR}/unimemConfig.cmake INSTALL_DESTINATION ${UNIMEM_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/unimemConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/unimemConfig.cmake ${PROJECT_BINARY_DIR}/unimemConfigVersion.cmake
  DESTINATION ${UNIMEM_CMAKE_DIR})
