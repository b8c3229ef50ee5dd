# Every dependency is a Debian 12 package (see deploy/dev/install-deps.sh).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(simdjson 3 REQUIRED)
find_package(tomlplusplus 3 REQUIRED)
find_package(spdlog 1.10 REQUIRED)
find_package(fmt REQUIRED)
find_package(prometheus-cpp REQUIRED)
# RocksDB: Debian's librocksdb-dev, or, where CDR_ROCKSDB_PREFIX holds it, the
# same release built with NDEBUG and SSE4.2 by deploy/dev/build-rocksdb.sh
# (docs/architecture.md, "The RocksDB build"). The release preset and the
# container image point there; without that build they use Debian's.
set(CDR_ROCKSDB_PREFIX "" CACHE PATH "A release build of RocksDB (deploy/dev/build-rocksdb.sh); empty: Debian's")
set(cdr_rocksdb_from "debian")
if(CDR_ROCKSDB_PREFIX AND EXISTS "${CDR_ROCKSDB_PREFIX}/.complete")
  set(cdr_rocksdb_from "${CDR_ROCKSDB_PREFIX}")
endif()
if(NOT cdr_rocksdb_from STREQUAL CDR_ROCKSDB_FOUND_FROM)
  unset(RocksDB_DIR CACHE)  # found in the other place last time
endif()
set(CDR_ROCKSDB_FOUND_FROM "${cdr_rocksdb_from}" CACHE INTERNAL "where RocksDB_DIR was found")
if(cdr_rocksdb_from STREQUAL "debian")
  find_package(RocksDB 7 REQUIRED)
  if(CDR_ROCKSDB_PREFIX)
    message(STATUS "RocksDB: Debian's librocksdb-dev (assertions on, no SSE4.2): ${CDR_ROCKSDB_PREFIX} "
                   "holds no build; deploy/dev/build-rocksdb.sh makes it")
  endif()
else()
  find_package(RocksDB 7 REQUIRED PATHS "${CDR_ROCKSDB_PREFIX}" NO_DEFAULT_PATH)
  message(STATUS "RocksDB: the release build in ${CDR_ROCKSDB_PREFIX} (${RocksDB_DIR})")
endif()
find_package(Boost 1.74 REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka>=2.0)
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
# libphonenumber-dev ships neither a CMake package nor a pkg-config file.
find_path(PHONENUMBER_INCLUDE_DIR phonenumbers/phonenumberutil.h REQUIRED)
find_library(PHONENUMBER_LIBRARY phonenumber REQUIRED)
add_library(cdr_libphonenumber INTERFACE IMPORTED)
target_include_directories(cdr_libphonenumber INTERFACE ${PHONENUMBER_INCLUDE_DIR})
target_link_libraries(cdr_libphonenumber INTERFACE ${PHONENUMBER_LIBRARY})
