# Third-party dependencies, all from Debian 12 packages (see scripts/lib/deps.sh).
find_package(Threads REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(Boost 1.74 REQUIRED)
find_package(Protobuf 3.21 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(simdjson 3 REQUIRED)  # the channels' JSON reader (On-Demand API)
find_package(CLI11 REQUIRED)
find_package(spdlog 1.10 REQUIRED)
find_package(prometheus-cpp REQUIRED)  # Debian ships no version file
find_package(PostgreSQL REQUIRED)
find_package(GTest REQUIRED)
find_package(benchmark REQUIRED)

# CAF 0.17.6 ships no CMake package: find the libraries and headers ourselves.
find_path(CAF_INCLUDE_DIR caf/all.hpp REQUIRED)
find_library(CAF_CORE_LIBRARY caf_core REQUIRED)
find_library(CAF_IO_LIBRARY caf_io REQUIRED)
add_library(caf::core INTERFACE IMPORTED)
target_include_directories(caf::core SYSTEM INTERFACE ${CAF_INCLUDE_DIR})
target_link_libraries(caf::core INTERFACE ${CAF_CORE_LIBRARY} Threads::Threads)
add_library(caf::io INTERFACE IMPORTED)
target_link_libraries(caf::io INTERFACE ${CAF_IO_LIBRARY} caf::core)

find_path(HIREDIS_INCLUDE_DIR hiredis/hiredis.h REQUIRED)
find_library(HIREDIS_LIBRARY hiredis REQUIRED)
add_library(hiredis::hiredis INTERFACE IMPORTED)
target_include_directories(hiredis::hiredis SYSTEM INTERFACE ${HIREDIS_INCLUDE_DIR})
target_link_libraries(hiredis::hiredis INTERFACE ${HIREDIS_LIBRARY})

find_library(PQXX_LIBRARY NAMES pqxx-6.4 pqxx REQUIRED)
add_library(pqxx::pqxx INTERFACE IMPORTED)
target_link_libraries(pqxx::pqxx INTERFACE ${PQXX_LIBRARY} PostgreSQL::PostgreSQL)

# jemalloc for the programs of non-sanitizer builds: CAF actors and protobuf messages
# are many mid-sized allocations, where glibc malloc spends its time consolidating
# (bench/README.md, "Conversation runtime").
find_library(JEMALLOC_LIBRARY jemalloc)
