// tls_certs.h: TLS material generated at test time, for tests of TLS and
// mutual TLS against real servers.
//
// TestCerts::Create() runs tests/support/gen-test-certs.sh (openssl) into a
// fresh temporary directory: a CA, a server certificate it signed (SAN
// localhost and 127.0.0.1), a client certificate it signed, and an unrelated
// second CA with a client certificate of its own. The directory is removed
// when the TestCerts is destroyed. Not thread-safe; one per test is cheap
// (about 0.1 s).
//
//   absl::StatusOr<TestCerts> certs = TestCerts::Create();
//   ASSERT_TRUE(certs.ok()) << certs.status();
//   tls->set_ca_file(certs->ca());
#pragma once

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#ifndef SWITCHBOARD_TEST_CERTS_SCRIPT
#error "link switchboard::testing, which defines SWITCHBOARD_TEST_CERTS_SCRIPT"
#endif

namespace switchboard::testing {

class TestCerts {
 public:
  static absl::StatusOr<TestCerts> Create() {
    std::random_device rd;
    std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                ("sb-certs-" + std::to_string(rd()) + std::to_string(rd()));
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return absl::InternalError("cannot create " + dir.string() + ": " + ec.message());
    const std::string cmd = std::string("bash '") + SWITCHBOARD_TEST_CERTS_SCRIPT + "' '" +
                            dir.string() + "' > '" + dir.string() + "/script.log' 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      return absl::InternalError("openssl failed; see " + dir.string() + "/openssl.log");
    }
    return TestCerts(std::move(dir));
  }

  TestCerts(TestCerts&& other) noexcept : dir_(std::exchange(other.dir_, {})) {}
  TestCerts& operator=(TestCerts&& other) noexcept {
    Remove();
    dir_ = std::exchange(other.dir_, {});
    return *this;
  }
  ~TestCerts() { Remove(); }

  std::string dir() const { return dir_.string(); }
  std::string File(const std::string& name) const { return (dir_ / name).string(); }
  std::string ca() const { return File("ca.pem"); }
  std::string server_cert() const { return File("server.pem"); }
  std::string server_key() const { return File("server.key"); }
  std::string client_cert() const { return File("client.pem"); }
  std::string client_key() const { return File("client.key"); }
  // A CA that signed none of the above.
  std::string other_ca() const { return File("other-ca.pem"); }
  // A client certificate signed by other_ca().
  std::string other_client_cert() const { return File("other-client.pem"); }
  std::string other_client_key() const { return File("other-client.key"); }

 private:
  explicit TestCerts(std::filesystem::path dir) : dir_(std::move(dir)) {}
  void Remove() {
    if (dir_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }

  std::filesystem::path dir_;
};

}  // namespace switchboard::testing
