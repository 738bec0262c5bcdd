// The AMQP transport against RabbitMQ's mutual-TLS listener and its
// password check (scripts/with-servers.sh; certificates generated when the
// broker starts, in SWITCHBOARD_TEST_TLS_DIR): the right certificate carries
// a request, a wrong CA, a missing or foreign client certificate and a wrong
// password are refused quickly with an error that names the transport and
// the setting to fix, and never the password. A broker that accepts the
// connection but never answers is bounded by `connect_timeout`.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "amqp_test_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "switchboard/amqp/amqp_transport.h"
#include "switchboard/envelope.h"

namespace switchboard::amqp {
namespace {

using ::switchboard::amqp::testing::ServersRequired;
using ::switchboard::amqp::testing::TestAmqpUrl;
using ::switchboard::amqp::testing::TestConfig;
using ::switchboard::amqp::testing::UniqueId;
using ::testing::HasSubstr;
using ::testing::Not;

// Refusals must come back well before `connect_timeout` (10 s, 30 s for
// the password): a refused credential or certificate is not retried until
// the deadline.
constexpr absl::Duration kRefusedWithin = absl::Seconds(8);

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

// "amqp://guest:guest@127.0.0.1:5672" -> "amqp://127.0.0.1:5672".
std::string WithoutCredentials(const std::string& url) {
  size_t scheme = url.find("://");
  size_t at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos) return url;
  return url.substr(0, scheme + 3) + url.substr(at + 1);
}

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
  return (*result->reply)->data;
}

class AmqpSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Env("SWITCHBOARD_TEST_AMQPS_URL").empty() || Env("SWITCHBOARD_TEST_TLS_DIR").empty()) {
      if (ServersRequired()) {
        GTEST_FAIL() << "SWITCHBOARD_TEST_AMQPS_URL / SWITCHBOARD_TEST_TLS_DIR are not set "
                        "(SWITCHBOARD_REQUIRE_SERVERS=1)";
      }
      GTEST_SKIP() << "SWITCHBOARD_TEST_AMQPS_URL is not set; run under scripts/with-servers.sh";
    }
  }

  static std::string Tls(const std::string& file) {
    return absl::StrCat(Env("SWITCHBOARD_TEST_TLS_DIR"), "/", file);
  }
  // A TLS config for the broker's mutual-TLS listener; no certificate set.
  static v1::TransportConfig TlsConfig(const std::string& ca) {
    v1::TransportConfig c = TestConfig(absl::StrCat("sbsec.", UniqueId(), "."));
    v1::AmqpOptions* a = c.mutable_amqp();
    a->set_url(Env("SWITCHBOARD_TEST_AMQPS_URL"));
    a->clear_management_url();
    a->set_user("guest");
    a->set_password("guest");
    a->mutable_tls()->set_ca_file(Tls(ca));
    return c;
  }
  absl::StatusOr<std::unique_ptr<Transport>> Make(const v1::TransportConfig& c) {
    TransportEnv env;
    env.source = absl::StrCat("//amqp-security-test/", UniqueId());
    const absl::Time start = absl::Now();
    auto t = MakeAmqpTransport("secure", c, env);
    took_ = absl::Now() - start;
    return t;
  }

  absl::Duration took_;
};

TEST_F(AmqpSecurityTest, MutualTlsWithAClientCertificateCarriesARequest) {
  v1::TransportConfig c = TlsConfig("ca.pem");
  c.mutable_amqp()->mutable_tls()->set_cert_file(Tls("client.pem"));
  c.mutable_amqp()->mutable_tls()->set_key_file(Tls("client.key"));
  auto t = Make(c);
  ASSERT_TRUE(t.ok()) << t.status();
  absl::StatusOr<std::string> r = RoundTrip(**t);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "echo:hello");
}

TEST_F(AmqpSecurityTest, AClientThatDoesNotTrustTheBrokersCaIsRefused) {
  v1::TransportConfig c = TlsConfig("other-ca.pem");
  c.mutable_amqp()->mutable_tls()->set_cert_file(Tls("client.pem"));
  c.mutable_amqp()->mutable_tls()->set_key_file(Tls("client.key"));
  auto t = Make(c);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnavailable) << t.status();
  const std::string text(t.status().message());
  EXPECT_THAT(text, HasSubstr("amqp transport \"secure\""));
  EXPECT_THAT(text, HasSubstr("TLS"));
  EXPECT_THAT(text, HasSubstr("`tls.ca_file`"));
  EXPECT_LT(took_, kRefusedWithin);
  std::printf("wrong CA: %s after %.0f ms\n", text.c_str(), absl::ToDoubleMilliseconds(took_));
}

TEST_F(AmqpSecurityTest, TheBrokerRefusesAClientWithoutATrustedCertificate) {
  v1::TransportConfig c = TlsConfig("ca.pem");
  auto t = Make(c);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnavailable) << t.status();
  const std::string text(t.status().message());
  EXPECT_THAT(text, HasSubstr("amqp transport \"secure\""));
  EXPECT_THAT(text, HasSubstr("`tls.cert_file`"));
  EXPECT_LT(took_, kRefusedWithin);
  std::printf("no client certificate: %s after %.0f ms\n", text.c_str(),
              absl::ToDoubleMilliseconds(took_));

  // A certificate from a CA the broker does not trust is refused as well.
  c.mutable_amqp()->mutable_tls()->set_cert_file(Tls("other-client.pem"));
  c.mutable_amqp()->mutable_tls()->set_key_file(Tls("other-client.key"));
  auto stranger = Make(c);
  ASSERT_FALSE(stranger.ok());
  EXPECT_EQ(stranger.status().code(), absl::StatusCode::kUnavailable) << stranger.status();
  EXPECT_THAT(std::string(stranger.status().message()), HasSubstr("`tls.cert_file`"));
  EXPECT_LT(took_, kRefusedWithin);
}

TEST_F(AmqpSecurityTest, AWrongPasswordIsRefusedNamingTheSetting) {
  const std::string wrong = absl::StrCat("wrong-", UniqueId());
  v1::TransportConfig c = TestConfig(absl::StrCat("sbsec.", UniqueId(), "."));
  v1::AmqpOptions* a = c.mutable_amqp();
  a->set_url(WithoutCredentials(TestAmqpUrl()));
  a->clear_management_url();
  a->set_user("guest");
  a->set_password(wrong);
  // RabbitMQ answers a failed login after about 3 s; far from this.
  a->mutable_connect_timeout()->set_seconds(30);
  auto t = Make(c);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kPermissionDenied) << t.status();
  const std::string text(t.status().message());
  EXPECT_THAT(text, HasSubstr("amqp transport \"secure\""));
  EXPECT_THAT(text, HasSubstr("`user`/`password`"));
  EXPECT_THAT(text, Not(HasSubstr(wrong)));
  EXPECT_LT(took_, kRefusedWithin);
  std::printf("wrong password: %s after %.0f ms\n", text.c_str(),
              absl::ToDoubleMilliseconds(took_));

  // The same password in the URL is refused the same way, and not echoed.
  a->clear_user();
  a->clear_password();
  a->set_url(absl::StrCat("amqp://guest:", wrong, "@",
                          WithoutCredentials(TestAmqpUrl()).substr(sizeof("amqp://") - 1)));
  auto in_url = Make(c);
  ASSERT_FALSE(in_url.ok());
  EXPECT_EQ(in_url.status().code(), absl::StatusCode::kPermissionDenied) << in_url.status();
  EXPECT_THAT(std::string(in_url.status().message()), HasSubstr("`url`"));
  EXPECT_THAT(std::string(in_url.status().message()), Not(HasSubstr(wrong)));
  EXPECT_LT(took_, kRefusedWithin);
}

TEST_F(AmqpSecurityTest, ABrokerThatNeverAnswersIsBoundedByConnectTimeout) {
  // A socket that listens (the kernel completes the TCP handshake) but is
  // never accepted: the AMQP header goes unanswered.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 8), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);

  v1::TransportConfig c = TestConfig(absl::StrCat("sbsec.", UniqueId(), "."));
  c.mutable_amqp()->set_url(absl::StrCat("amqp://guest:guest@127.0.0.1:", ntohs(addr.sin_port)));
  c.mutable_amqp()->clear_management_url();
  c.mutable_amqp()->mutable_connect_timeout()->set_seconds(1);
  auto t = Make(c);
  close(fd);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnavailable) << t.status();
  const std::string text(t.status().message());
  EXPECT_THAT(text, HasSubstr("within 1s"));
  EXPECT_THAT(text, HasSubstr("`connect_timeout`"));
  EXPECT_THAT(text, Not(HasSubstr("guest:guest")));
  EXPECT_GE(took_, absl::Milliseconds(900));
  EXPECT_LT(took_, absl::Seconds(3));
  std::printf("silent broker: %s after %.0f ms\n", text.c_str(),
              absl::ToDoubleMilliseconds(took_));
}

}  // namespace
}  // namespace switchboard::amqp
