# All dependencies come from Debian 12 packages (see cmake/install-deps.sh).
find_package(Threads REQUIRED)
# Debian's protobuf ships no working CONFIG package: module mode.
find_package(Protobuf REQUIRED)
# Needs protobuf-compiler-grpc installed (its targets file checks the plugins).
find_package(gRPC CONFIG REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(RocksDB CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(GTest CONFIG REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(MNL REQUIRED IMPORTED_TARGET libmnl)
