// --ca/--cert/--key for the benchmarks (docs/security.md): with them the
// benchmark's clients speak mTLS with that certificate, and the ila-server
// the benchmark starts serves TLS with --server-cert/--server-key (default:
// server.pem/server.key next to the CA, as deploy/make-test-certs.sh makes
// them), so the cost of TLS can be measured; without them, plaintext on
// loopback as before. The client certificate needs a role that may do what
// the benchmark does (admin does everything).
//
// Thread-safety: set up before the benchmark's threads start; read-only
// afterwards.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/tls.h"

namespace ila::bench {

class BenchTls {
 public:
  void AddFlags(CLI::App& app) {
    app.add_option("--ca", client_.ca,
                   "TLS: the CA (PEM); with --cert/--key the benchmark uses "
                   "mTLS and starts ila-server with TLS");
    app.add_option("--cert", client_.cert,
                   "TLS: the clients' certificate (needs a role that may "
                   "do the workload, e.g. admin)");
    app.add_option("--key", client_.key, "TLS: the clients' private key");
    app.add_option("--server-cert", server_cert_,
                   "TLS: the started ila-server's certificate (default "
                   "server.pem next to --ca)");
    app.add_option("--server-key", server_key_,
                   "TLS: the started ila-server's key (default server.key "
                   "next to --ca)");
  }

  // After parsing: checks the files and makes the credentials; exits with
  // the reason when they are unusable.
  void Init() {
    if (!client_.enabled()) {
      credentials_ = grpc::InsecureChannelCredentials();
      return;
    }
    const auto dir = std::filesystem::path(client_.ca).parent_path();
    if (server_cert_.empty()) server_cert_ = (dir / "server.pem").string();
    if (server_key_.empty()) server_key_ = (dir / "server.key").string();
    auto creds = ClientCredentials(client_);
    if (creds.ok()) {
      auto server = LoadTlsFiles(ServerFiles());
      if (!server.ok()) creds = server.status();
    }
    if (!creds.ok()) {
      std::cerr << "bench: " << creds.status().message() << "\n";
      std::exit(2);
    }
    credentials_ = *creds;
  }

  bool enabled() const { return client_.enabled(); }
  std::shared_ptr<grpc::ChannelCredentials> credentials() const {
    return credentials_;
  }
  // For an in-process server (ServerOptions.tls).
  TlsFiles ServerFiles() const {
    if (!enabled()) return {};
    return {client_.ca, server_cert_, server_key_};
  }
  // For a child ila-server.
  std::vector<std::string> ServerFlags() const {
    if (!enabled()) return {};
    return {"--ca", client_.ca, "--cert", server_cert_, "--key", server_key_};
  }

 private:
  TlsFiles client_;
  std::string server_cert_, server_key_;
  // Set by Init() (not at static initialization: the benchmarks' BenchTls
  // are globals, and gRPC objects are made once main() runs).
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
};

}  // namespace ila::bench
