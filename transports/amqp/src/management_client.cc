#include "management_client.h"

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "httplib.h"
#include "sv.h"

namespace switchboard::amqp {
namespace {

std::string PercentDecode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    int v = 0;
    if (in[i] == '%' && i + 2 < in.size() && absl::SimpleHexAtoi(Sv(in.substr(i + 1, 2)), &v)) {
      out.push_back(static_cast<char>(v));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

}  // namespace

std::string EncodePathSegment(std::string_view segment) {
  std::string out;
  for (unsigned char c : segment) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<ManagementClient>> ManagementClient::Create(
    std::string_view url, std::string user, std::string password, absl::Duration timeout) {
  std::string_view rest = url;
  if (absl::StartsWith(Sv(rest), "http://")) {
    rest.remove_prefix(7);
  } else if (absl::StartsWith(Sv(rest), "https://")) {
    return absl::InvalidArgumentError(
        "amqp: management_url over https is not supported; use http:// on a trusted network");
  }
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) rest = rest.substr(0, slash);
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    size_t colon = userinfo.find(':');
    user = PercentDecode(userinfo.substr(0, colon));
    password = colon == std::string_view::npos ? "" : PercentDecode(userinfo.substr(colon + 1));
  }
  size_t colon = rest.rfind(':');
  int port = 0;
  if (colon == std::string_view::npos || !absl::SimpleAtoi(Sv(rest.substr(colon + 1)), &port) ||
      port <= 0 || port > 65535 || colon == 0) {
    return absl::InvalidArgumentError(
        "amqp: management_url must be http://[user:password@]host:port or host:port");
  }
  return std::unique_ptr<ManagementClient>(new ManagementClient(
      std::string(rest.substr(0, colon)), port, std::move(user), std::move(password), timeout));
}

ManagementClient::ManagementClient(std::string host, int port, std::string user,
                                   std::string password, absl::Duration timeout)
    : host_(std::move(host)),
      port_(port),
      user_(std::move(user)),
      password_(std::move(password)),
      timeout_(timeout),
      base_(absl::StrCat("http://", host_, ":", port_)) {}

absl::StatusOr<ManagementClient::Response> ManagementClient::Call(std::string_view method,
                                                                  const std::string& path,
                                                                  const std::string& body) {
  httplib::Client cli(host_, port_);
  const int64_t usec = absl::ToInt64Microseconds(timeout_);
  cli.set_connection_timeout(usec / 1000000, usec % 1000000);
  cli.set_read_timeout(usec / 1000000, usec % 1000000);
  cli.set_write_timeout(usec / 1000000, usec % 1000000);
  cli.set_basic_auth(user_.c_str(), password_.c_str());
  httplib::Result res = method == "GET"    ? cli.Get(path.c_str())
                        : method == "PUT"  ? cli.Put(path.c_str(), body, "application/json")
                        : method == "POST" ? cli.Post(path.c_str(), body, "application/json")
                                           : cli.Delete(path.c_str());
  if (!res) {
    return absl::UnavailableError(absl::StrCat("amqp: management API ", base_, " ", Sv(method), " ",
                                               path, " failed: ", httplib::to_string(res.error()),
                                               " (check management_url)"));
  }
  return Response{res->status, res->body};
}

absl::Status ManagementClient::DeclareQueue(std::string_view queue, bool durable, bool auto_delete) {
  const std::string path = absl::StrCat("/api/queues/", vhost_, "/", EncodePathSegment(queue));
  auto r = Call("PUT", path,
                absl::StrFormat(R"({"durable":%s,"auto_delete":%s,"arguments":{}})",
                                durable ? "true" : "false", auto_delete ? "true" : "false"));
  if (!r.ok()) return r.status();
  if (r->status == 201 || r->status == 204) return absl::OkStatus();
  if (r->status == 400 || r->status == 406) {
    return absl::FailedPreconditionError(absl::StrCat(
        "amqp: queue ", Sv(queue), " exists with other settings: ", r->body.substr(0, 300)));
  }
  if (r->status == 401) {
    return absl::PermissionDeniedError("amqp: management API refused the credentials");
  }
  return absl::UnavailableError(absl::StrCat("amqp: declaring queue ", Sv(queue), " returned HTTP ",
                                             r->status, ": ", r->body.substr(0, 300)));
}

absl::Status ManagementClient::Bind(std::string_view exchange, std::string_view queue,
                                    std::string_view routing_key) {
  const std::string path = absl::StrCat("/api/bindings/", vhost_, "/e/", EncodePathSegment(exchange),
                                        "/q/", EncodePathSegment(queue));
  std::string key;
  for (char c : routing_key) {
    if (c == '"' || c == '\\') key.push_back('\\');
    key.push_back(c);
  }
  auto r = Call("POST", path, absl::StrCat(R"({"routing_key":")", key, R"("})"));
  if (!r.ok()) return r.status();
  if (r->status == 201 || r->status == 204) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("amqp: binding queue ", Sv(queue), " to ", Sv(exchange),
                                             " returned HTTP ", r->status, ": ",
                                             r->body.substr(0, 300)));
}

absl::StatusOr<bool> ManagementClient::QueueExists(std::string_view queue) {
  auto r = Call("GET", absl::StrCat("/api/queues/", vhost_, "/", EncodePathSegment(queue)), "");
  if (!r.ok()) return r.status();
  if (r->status == 200) return true;
  if (r->status == 404) return false;
  return absl::UnavailableError(absl::StrCat("amqp: queue lookup returned HTTP ", r->status));
}

absl::StatusOr<int64_t> ManagementClient::QueueMessages(std::string_view queue) {
  auto r = Call("GET", absl::StrCat("/api/queues/", vhost_, "/", EncodePathSegment(queue)), "");
  if (!r.ok()) return r.status();
  if (r->status == 404) return absl::NotFoundError(absl::StrCat("amqp: no queue ", Sv(queue)));
  if (r->status != 200) {
    return absl::UnavailableError(absl::StrCat("amqp: queue lookup returned HTTP ", r->status));
  }
  // The body is a JSON object; the top-level "messages" count is enough here.
  size_t pos = r->body.find("\"messages\":");
  if (pos == std::string::npos) return int64_t{0};
  int64_t n = 0;
  size_t start = pos + 11;
  size_t end = start;
  while (end < r->body.size() && absl::ascii_isdigit(static_cast<unsigned char>(r->body[end]))) {
    ++end;
  }
  if (!absl::SimpleAtoi(absl::string_view(r->body).substr(start, end - start), &n)) n = 0;
  return n;
}

absl::Status ManagementClient::DeleteQueue(std::string_view queue) {
  auto r = Call("DELETE", absl::StrCat("/api/queues/", vhost_, "/", EncodePathSegment(queue)), "");
  if (!r.ok()) return r.status();
  if (r->status == 204 || r->status == 404) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("amqp: deleting queue returned HTTP ", r->status));
}

}  // namespace switchboard::amqp
