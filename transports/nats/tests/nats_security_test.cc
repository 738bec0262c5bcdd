// The NATS transport against nats-server processes of its own that demand
// TLS, mutual TLS, a token or a user/password: the right settings carry a
// request, wrong ones are refused quickly with an error that names the
// transport and the setting to fix, and never the secret. Certificates are
// generated at test time (switchboard/testing/tls_certs.h); each test starts
// its own server on a port chosen by the OS and stops it at the end.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nats_test_env.h"
#include "switchboard/envelope.h"
#include "switchboard/nats/nats_transport.h"
#include "switchboard/testing/nats_server.h"
#include "switchboard/testing/tls_certs.h"

namespace switchboard::nats {
namespace {

using ::switchboard::nats::testing::ServersRequired;
using ::switchboard::nats::testing::UniqueId;
using ::switchboard::testing::NatsServerProcess;
using ::switchboard::testing::TestCerts;
using ::testing::HasSubstr;
using ::testing::Not;

// Connection failures must come back well before this: a refused
// credential is not retried until some timeout.
constexpr absl::Duration kRefusedWithin = absl::Seconds(5);

Endpoint Ep(const std::string& operation) {
  Endpoint e;
  e.operation = operation;
  e.group = operation;
  return e;
}

// One request through `t` to a handler on `t` that echoes the data.
absl::StatusOr<std::string> RoundTrip(Transport& t) {
  const std::string op = absl::StrCat("sec.v1.Echo/Say_", UniqueId());
  auto sub = t.Serve(Ep(op), [](Envelope req, ReplyCallback reply) {
    Envelope out = req;
    out.id = NewMessageId();
    out.data = "echo:" + req.data;
    std::move(reply)(std::move(out));
  });
  if (!sub.ok()) return sub.status();
  Envelope req;
  req.id = NewMessageId();
  req.type = op;
  req.time = absl::Now();
  req.deadline = absl::Now() + absl::Seconds(5);
  req.data = "hello";
  struct Result {
    absl::Mutex mu;
    std::optional<absl::StatusOr<Envelope>> reply ABSL_GUARDED_BY(mu);
  };
  auto result = std::make_shared<Result>();
  t.Request(req, [result](absl::StatusOr<Envelope> r) {
    absl::MutexLock lock(&result->mu);
    result->reply = std::move(r);
  });
  absl::MutexLock lock(&result->mu);
  auto done = [&result]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(result->mu) {
    return result->reply.has_value();
  };
  if (!result->mu.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(10))) {
    return absl::DeadlineExceededError("no reply within 10 s");
  }
  if (!result->reply->ok()) return result->reply->status();
  // An error reply (the server could not read the request) says why.
  if (!(*result->reply)->status.ok()) return (*result->reply)->status;
  return (*result->reply)->data;
}

class NatsSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!NatsServerProcess::Installed()) {
      if (ServersRequired()) GTEST_FAIL() << "nats-server is not installed";
      GTEST_SKIP() << "nats-server is not installed";
    }
    absl::StatusOr<TestCerts> certs = TestCerts::Create();
    ASSERT_TRUE(certs.ok()) << certs.status();
    certs_ = std::make_unique<TestCerts>(*std::move(certs));
  }

  // Starts the server; `block` is its TLS/authorization configuration.
  void Start(const std::string& block) {
    server_ = std::make_unique<NatsServerProcess>(certs_->dir(), block);
    ASSERT_TRUE(server_->ready()) << "nats-server did not start, see " << server_->log();
  }
  std::string TlsBlock(bool verify_clients) const {
    return absl::StrCat("tls {\n  cert_file: \"", certs_->server_cert(), "\"\n  key_file: \"",
                        certs_->server_key(), "\"\n  ca_file: \"", certs_->ca(),
                        "\"\n  verify: ", verify_clients ? "true" : "false", "\n  timeout: 2\n}\n");
  }
  v1::TransportConfig Config(const std::string& scheme = "nats") const {
    v1::TransportConfig c;
    c.set_type("nats");
    v1::NatsOptions* o = c.mutable_nats();
    o->set_url(server_->url(scheme));
    o->set_subject_prefix(absl::StrCat("sbsec.", UniqueId()));
    o->set_max_reconnect(1);
    o->mutable_reconnect_wait()->set_nanos(100'000'000);
    return c;
  }
  // Creates the transport and measures how long the factory took.
  absl::StatusOr<std::unique_ptr<Transport>> Make(const v1::TransportConfig& c) {
    TransportEnv env;
    env.source = absl::StrCat("//nats-security-test/", UniqueId());
    const absl::Time start = absl::Now();
    auto t = MakeNatsTransport("secure", c, env);
    took_ = absl::Now() - start;
    return t;
  }

  std::unique_ptr<TestCerts> certs_;
  std::unique_ptr<NatsServerProcess> server_;
  absl::Duration took_;
};

TEST_F(NatsSecurityTest, TlsWithTheServersCaCarriesARequest) {
  Start(TlsBlock(/*verify_clients=*/false));
  v1::TransportConfig c = Config("tls");
  c.mutable_nats()->mutable_tls()->set_ca_file(certs_->ca());
  auto t = Make(c);
  ASSERT_TRUE(t.ok()) << t.status();
  absl::StatusOr<std::string> r = RoundTrip(**t);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "echo:hello");
}

TEST_F(NatsSecurityTest, MutualTlsWithAClientCertificateCarriesARequest) {
  Start(TlsBlock(/*verify_clients=*/true));
  v1::TransportConfig c = Config();
  v1::TlsOptions* tls = c.mutable_nats()->mutable_tls();
  tls->set_ca_file(certs_->ca());
  tls->set_cert_file(certs_->client_cert());
  tls->set_key_file(certs_->client_key());
  auto t = Make(c);
  ASSERT_TRUE(t.ok()) << t.status();
  absl::StatusOr<std::string> r = RoundTrip(**t);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "echo:hello");
}

TEST_F(NatsSecurityTest, AClientThatDoesNotTrustTheServersCaIsRefused) {
  Start(TlsBlock(/*verify_clients=*/false));
  v1::TransportConfig c = Config();
  c.mutable_nats()->mutable_tls()->set_ca_file(certs_->other_ca());
  auto t = Make(c);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnavailable) << t.status();
  const std::string text(t.status().message());
  EXPECT_THAT(text, HasSubstr("nats transport \"secure\""));
  EXPECT_THAT(text, HasSubstr("TLS"));
  EXPECT_THAT(text, HasSubstr("`tls.ca_file`"));
  EXPECT_LT(took_, kRefusedWithin);
  std::printf("wrong CA: %s after %.0f ms\n", text.c_str(), absl::ToDoubleMilliseconds(took_));
}

TEST_F(NatsSecurityTest, AServerThatVerifiesClientsRefusesAClientWithoutCertificate) {
  Start(TlsBlock(/*verify_clients=*/true));
  v1::TransportConfig c = Config();
  c.mutable_nats()->mutable_tls()->set_ca_file(certs_->ca());
  auto t = Make(c);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnavailable) << t.status();
  const std::string text(t.status().message());
  EXPECT_THAT(text, HasSubstr("nats transport \"secure\""));
  EXPECT_THAT(text, HasSubstr("`tls.cert_file`"));
  EXPECT_LT(took_, kRefusedWithin);
  std::printf("no client certificate: %s after %.0f ms\n", text.c_str(),
              absl::ToDoubleMilliseconds(took_));

  // A certificate from a CA the server does not trust is refused as well.
  v1::TlsOptions* tls = c.mutable_nats()->mutable_tls();
  tls->set_cert_file(certs_->other_client_cert());
  tls->set_key_file(certs_->other_client_key());
  auto stranger = Make(c);
  ASSERT_FALSE(stranger.ok());
  EXPECT_EQ(stranger.status().code(), absl::StatusCode::kUnavailable) << stranger.status();
  EXPECT_THAT(std::string(stranger.status().message()), HasSubstr("`tls.cert_file`"));
  EXPECT_LT(took_, kRefusedWithin);
}

TEST_F(NatsSecurityTest, AWrongTokenIsRefusedNamingTheSetting) {
  const std::string right = absl::StrCat("right-", UniqueId());
  const std::string wrong = absl::StrCat("wrong-", UniqueId());
  Start(absl::StrCat("authorization { token: \"", right, "\" }"));

  v1::TransportConfig c = Config();
  c.mutable_nats()->set_token(wrong);
  auto t = Make(c);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kPermissionDenied) << t.status();
  const std::string text(t.status().message());
  EXPECT_THAT(text, HasSubstr("nats transport \"secure\""));
  EXPECT_THAT(text, HasSubstr("`token`"));
  EXPECT_THAT(text, Not(HasSubstr(wrong)));
  EXPECT_LT(took_, kRefusedWithin);
  std::printf("wrong token: %s after %.0f ms\n", text.c_str(), absl::ToDoubleMilliseconds(took_));

  // No token at all is refused the same way.
  c.mutable_nats()->clear_token();
  auto none = Make(c);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kPermissionDenied) << none.status();

  c.mutable_nats()->set_token(right);
  auto good = Make(c);
  ASSERT_TRUE(good.ok()) << good.status();
  absl::StatusOr<std::string> r = RoundTrip(**good);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "echo:hello");
}

TEST_F(NatsSecurityTest, AWrongPasswordIsRefusedNamingTheSetting) {
  const std::string right = absl::StrCat("right-", UniqueId());
  const std::string wrong = absl::StrCat("wrong-", UniqueId());
  Start(absl::StrCat("authorization { user: \"svc\", password: \"", right, "\" }"));

  v1::TransportConfig c = Config();
  c.mutable_nats()->set_user("svc");
  c.mutable_nats()->set_password(wrong);
  auto t = Make(c);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kPermissionDenied) << t.status();
  const std::string text(t.status().message());
  EXPECT_THAT(text, HasSubstr("nats transport \"secure\""));
  EXPECT_THAT(text, HasSubstr("`user`/`password`"));
  EXPECT_THAT(text, Not(HasSubstr(wrong)));
  EXPECT_LT(took_, kRefusedWithin);
  std::printf("wrong password: %s after %.0f ms\n", text.c_str(),
              absl::ToDoubleMilliseconds(took_));

  c.mutable_nats()->set_password(right);
  auto good = Make(c);
  ASSERT_TRUE(good.ok()) << good.status();
  absl::StatusOr<std::string> r = RoundTrip(**good);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "echo:hello");
}

}  // namespace
}  // namespace switchboard::nats
