#include "lint.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/time/time.h"
#include "switchboard/config.h"
#include "switchboard/internal/strings.h"
#include "yaml-cpp/yaml.h"

namespace switchboard::lint {
namespace {

using v1::OperationBinding;
using v1::Policy;

const std::vector<Rule> kRules = {
    {"SB001", "call-without-timeout", Severity::kError,
     "a call that waits for a reply (request, or command with reply) has no timeout"},
    {"SB002", "retry-without-idempotency", Severity::kError,
     "a mutating operation is retried or redelivered without an idempotency key store"},
    {"SB003", "dead-letter-off", Severity::kWarning,
     "a command or event drops what it cannot process (dead_letter: false)"},
    {"SB004", "unbounded-payload", Severity::kWarning, "no max_payload_bytes on the policy"},
    {"SB005", "retry-without-budget", Severity::kWarning, "retries without a retry budget"},
    {"SB006", "breaker-missing", Severity::kWarning,
     "a request to another service (grpc, nats, amqp) has no circuit breaker"},
    {"SB007", "retry-without-backoff", Severity::kWarning, "retries without a backoff"},
    {"SB008", "redelivery-without-backoff", Severity::kWarning,
     "max_deliveries without a redelivery backoff"},
    {"SB009", "timeout-shorter-than-retries", Severity::kWarning,
     "the timeout is spent before the retry backoff lets every attempt run"},
    {"SB010", "event-without-groups", Severity::kWarning, "an event lists no subscriber groups"},
    {"SB011", "durable-style-on-non-durable-transport", Severity::kWarning,
     "a command or event on a transport that does not keep messages across a restart"},
    {"SB012", "literal-secret", Severity::kError,
     "a password, token or secret written in the file instead of ${ENV}"},
    {"SB013", "rollout-to-same-binding", Severity::kError,
     "a rollout whose style and transport settings are those of its binding"},
    {"SB014", "rollout-no-split", Severity::kWarning, "a rollout with percent 0 or 100"},
    {"SB015", "groups-on-non-event", Severity::kWarning, "groups on an operation that is not an event"},
    {"SB016", "bulkhead-missing", Severity::kInfo,
     "a request or command handler without a bulkhead (no concurrency limit, no load shedding)"},
    {"SB017", "unused-definition", Severity::kInfo, "a policy or transport that nothing uses"},
};

// Method names that change state: a duplicate of such a call has a side effect.
constexpr std::string_view kMutatingPrefixes[] = {
    "Create", "Update", "Delete", "Place",   "Set",      "Add",    "Remove", "Cancel",
    "Submit", "Put",    "Post",   "Patch",   "Insert",   "Upsert", "Charge", "Pay",
    "Refund", "Send",   "Transfer", "Book",  "Reserve",  "Register", "Write", "Modify",
    "Apply",  "Approve", "Reject", "Assign", "Increment", "Decrement", "Move", "Replace"};

absl::Duration ToAbsl(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

std::string Str(absl::Duration d) { return absl::FormatDuration(d); }

bool IsMutatingMethod(std::string_view operation) {
  size_t slash = operation.rfind('/');
  if (slash == std::string_view::npos) return false;
  std::string_view method = operation.substr(slash + 1);
  for (std::string_view p : kMutatingPrefixes) {
    if (method.starts_with(p) &&
        (method.size() == p.size() || !std::islower(static_cast<unsigned char>(method[p.size()])))) {
      return true;
    }
  }
  return false;
}

// Finds the line of a key path in the YAML text ("operations", op, ...): the
// line of the deepest key present.
class Lines {
 public:
  explicit Lines(YAML::Node root) : root_(std::move(root)) {}

  int Of(const std::vector<std::string>& path) const {
    int line = 0;
    YAML::Node node;
    node.reset(root_);
    for (const std::string& key : path) {
      if (!node.IsMap()) break;
      bool found = false;
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (it->first.IsScalar() && it->first.Scalar() == key) {
          line = it->first.Mark().line + 1;
          node.reset(it->second);  // operator= would overwrite the tree
          found = true;
          break;
        }
      }
      if (!found) break;
    }
    return line;
  }
  const YAML::Node& root() const { return root_; }

 private:
  YAML::Node root_;
};

struct Context {
  const v1::Config& config;
  const Lines& lines;
  std::string file;
  std::vector<Finding>* out;

  void Add(std::string_view id, int line, std::string message, std::string fix) const {
    const Rule* rule = FindRule(id);
    Finding f;
    f.rule = std::string(id);
    f.severity = rule->severity;
    f.file = file;
    f.line = line;
    f.message = std::move(message);
    f.fix = std::move(fix);
    out->push_back(std::move(f));
  }
};

std::string DefaultTransport(const v1::Config& c) {
  if (!c.node().default_transport().empty()) return c.node().default_transport();
  if (c.transports_size() == 1) return c.transports().begin()->first;
  return "";  // the embedded inproc transport
}

std::string TransportType(const v1::Config& c, const std::string& name) {
  if (name.empty()) return "inproc";
  auto it = c.transports().find(name);
  return it == c.transports().end() ? "" : it->second.type();
}

// Empty when durable, else why not.
std::string NotDurableReason(const v1::Config& c, const std::string& name) {
  std::string type = TransportType(c, name);
  if (type == "inproc") return "inproc keeps messages in memory";
  if (type == "grpc") return "grpc hands a command to a live node and keeps nothing";
  if (type == "nats" && !c.transports().at(name).nats().jetstream()) {
    return "core NATS (jetstream: false) keeps nothing";
  }
  return "";
}

bool CrossService(const std::string& type) { return type == "grpc" || type == "nats" || type == "amqp"; }

std::string_view StyleText(v1::Style s) {
  switch (s) {
    case v1::STYLE_REQUEST: return "request";
    case v1::STYLE_COMMAND: return "command";
    case v1::STYLE_EVENT: return "event";
    default: return "request";
  }
}

// A binding with its defaults applied the way the node applies them.
struct Effective {
  v1::Style style = v1::STYLE_REQUEST;
  bool reply = false;
  std::string transport;  // "" = embedded inproc
  std::string policy_name;
  Policy policy;
};

Effective Resolve(const v1::Config& c, const OperationBinding& b) {
  Effective e;
  e.style = b.style() == v1::STYLE_UNSPECIFIED ? v1::STYLE_REQUEST : b.style();
  e.reply = b.reply();
  e.transport = b.transport().empty() ? DefaultTransport(c) : b.transport();
  e.policy_name = b.policy().empty() ? c.node().default_policy() : b.policy();
  if (auto it = c.policies().find(e.policy_name); it != c.policies().end()) e.policy = it->second;
  return e;
}

std::string PolicyRef(const Effective& e) {
  return e.policy_name.empty() ? "it has no policy" : Cat("its policy `", e.policy_name, "`");
}

// "its policy `p` has no WHAT", or "it has no policy, so no WHAT".
std::string Lacks(const Effective& e, std::string_view what) {
  return e.policy_name.empty() ? Cat("it has no policy, so no ", what)
                               : Cat("its policy `", e.policy_name, "` has no ", what);
}

// ---- operation rules ----

void CheckWaitsWithTimeout(const Context& ctx, const std::string& op, v1::Style style, bool reply,
                           const Effective& e, int line, std::string_view what) {
  bool waits = style == v1::STYLE_REQUEST || (style == v1::STYLE_COMMAND && reply);
  if (!waits || e.policy.has_timeout()) return;
  ctx.Add("SB001", line,
          Cat("operation `", op, "` ", what, " as ", StyleText(style), reply ? " with reply" : "",
              ", so the caller waits for a reply, but ", Lacks(e, "`timeout`"),
              " (the node falls back to 30s)"),
          e.policy_name.empty() ? "give it a policy with `timeout: 2s` (or what the caller can afford)"
                                : Cat("add `timeout:` to policy `", e.policy_name, "`"));
}

void CheckOperation(const Context& ctx, const std::string& op, const OperationBinding& b) {
  const v1::Config& c = ctx.config;
  Effective e = Resolve(c, b);
  int line = ctx.lines.Of({"operations", op});
  const Policy& p = e.policy;

  CheckWaitsWithTimeout(ctx, op, e.style, e.reply, e, line, "is bound");

  bool mutating = e.style == v1::STYLE_COMMAND || (e.style == v1::STYLE_REQUEST && IsMutatingMethod(op));
  bool retried = p.retry().attempts() > 1;
  bool redelivered = e.style == v1::STYLE_COMMAND && p.max_deliveries() != 1;
  if (mutating && (retried || redelivered) && !p.has_idempotency()) {
    ctx.Add("SB002", line,
            Cat("operation `", op, "` changes state (", e.style == v1::STYLE_COMMAND ? "a command" : "its method name",
                ") and is ", retried ? Cat("retried (", p.retry().attempts(), " attempts)") : "redelivered until acked",
                ", but ", Lacks(e, "`idempotency`"), ": a duplicate repeats the side effect"),
            e.policy_name.empty() ? "give it a policy with `idempotency: { ttl: 24h }`"
                                  : Cat("add `idempotency: { ttl: 24h }` to policy `", e.policy_name, "`"));
  }

  if (e.style != v1::STYLE_REQUEST && p.has_dead_letter() && !p.dead_letter()) {
    ctx.Add("SB003", line,
            Cat(StyleText(e.style), " `", op, "`: ", PolicyRef(e),
                " sets `dead_letter: false`, so a message that fails every delivery is dropped silently"),
            Cat("remove `dead_letter: false` from policy `", e.policy_name, "` so failures land in `", op,
                ".dlq`"));
  }

  if (p.max_payload_bytes() == 0) {
    ctx.Add("SB004", line,
            Cat("operation `", op, "`: ", Lacks(e, "`max_payload_bytes`"),
                ": payload size is bounded only by the 4 MiB default"),
            e.policy_name.empty() ? "give it a policy with `max_payload_bytes: 1MiB` (what the operation needs)"
                                  : Cat("add `max_payload_bytes:` to policy `", e.policy_name, "`"));
  }

  std::string type = TransportType(c, e.transport);
  if (e.style == v1::STYLE_REQUEST && CrossService(type) && !p.has_circuit_breaker()) {
    ctx.Add("SB006", line,
            Cat("request `", op, "` goes to another service over ", type, " (transport `", e.transport,
                "`), but ", Lacks(e, "`circuit_breaker`"), ": a slow dependency holds every caller"),
            Cat("add `circuit_breaker: { failure_rate: 50%, window: 10s, min_calls: 20, open_for: 5s }` to ",
                e.policy_name.empty() ? "its policy" : Cat("policy `", e.policy_name, "`")));
  }

  auto durable = [&](v1::Style style, const std::string& transport, std::string_view what) {
    if (style == v1::STYLE_REQUEST) return;
    std::string why = NotDurableReason(c, transport);
    if (why.empty()) return;
    ctx.Add("SB011", line,
            Cat("operation `", op, "` ", what, " as ", StyleText(style), " on transport `",
                transport.empty() ? "inproc (embedded)" : transport, "`: ", why,
                ", so queued messages do not survive a restart"),
            "use a durable transport (nats with `jetstream: true`, amqp) or accept the loss on restart");
  };
  durable(e.style, e.transport, "is bound");

  if (e.style == v1::STYLE_EVENT && b.groups().empty()) {
    ctx.Add("SB010", line,
            Cat("event `", op, "` lists no subscriber `groups`: nobody can tell who must receive it"),
            "add `groups: [payment, ...]` naming the groups that subscribe");
  }
  if (e.style != v1::STYLE_EVENT && !b.groups().empty()) {
    ctx.Add("SB015", ctx.lines.Of({"operations", op, "groups"}),
            Cat("operation `", op, "` is a ", StyleText(e.style),
                " but lists `groups`: only events fan out to groups"),
            "remove `groups`, or bind it as `style: event`");
  }

  if (e.style != v1::STYLE_EVENT && !p.has_bulkhead()) {
    ctx.Add("SB016", line,
            Cat(StyleText(e.style), " `", op, "`: ", Lacks(e, "`bulkhead`"),
                ": its handler takes any number of concurrent calls"),
            "add `bulkhead: { max_concurrent: 64, max_queue: 256 }` to the policy");
  }

  if (b.has_rollout()) {
    const v1::Rollout& ro = b.rollout();
    int ro_line = ctx.lines.Of({"operations", op, "rollout"});
    std::string ro_transport = ro.transport().empty() ? e.transport : ro.transport();
    CheckWaitsWithTimeout(ctx, op, ro.style(), ro.reply(), e, ro_line, "is rolled out");
    durable(ro.style(), ro_transport, "is rolled out");
    std::string ro_type = TransportType(c, ro_transport);
    if (ro.style() == v1::STYLE_REQUEST && CrossService(ro_type) && !p.has_circuit_breaker() &&
        !(e.style == v1::STYLE_REQUEST && CrossService(type))) {
      ctx.Add("SB006", ro_line,
              Cat("the rollout of `", op, "` sends requests to another service over ", ro_type, " (transport `",
                  ro_transport, "`), but ", Lacks(e, "`circuit_breaker`"), ": a slow dependency holds every caller"),
              Cat("add `circuit_breaker: { failure_rate: 50%, window: 10s, min_calls: 20, open_for: 5s }` to ",
                  e.policy_name.empty() ? "its policy" : Cat("policy `", e.policy_name, "`")));
    }
    if (ro.style() == e.style && ro.reply() == e.reply && ro_transport != e.transport) {
      auto a = c.transports().find(e.transport);
      auto r = c.transports().find(ro_transport);
      if (a != c.transports().end() && r != c.transports().end() &&
          a->second.SerializeAsString() == r->second.SerializeAsString()) {
        ctx.Add("SB013", ro_line,
                Cat("the rollout of `", op, "` goes to transport `", ro_transport, "`, configured exactly like `",
                    e.transport, "`, with the same style: the split changes nothing"),
                "roll out to another style or to a differently configured transport, or remove `rollout`");
      }
    }
    if (ro.percent() <= 0 || ro.percent() >= 100) {
      ctx.Add("SB014", ro_line,
              Cat("the rollout of `", op, "` takes ", ro.percent(), "% of the calls: ",
                  ro.percent() <= 0 ? "it is never used" : "the binding itself is never used"),
              ro.percent() <= 0 ? "raise `percent`, or remove `rollout`"
                                : "make the rollout's style and transport the binding's and remove `rollout`");
    }
  }
}

// ---- policy rules ----

void CheckPolicy(const Context& ctx, const std::string& name, const Policy& p) {
  const v1::RetryPolicy& r = p.retry();
  int retry_line = ctx.lines.Of({"policies", name, "retry"});
  if (r.attempts() > 1) {
    if (r.budget() <= 0) {
      ctx.Add("SB005", retry_line,
              Cat("policy `", name, "` retries (", r.attempts(),
                  " attempts) without a `budget`: when a dependency fails, every caller multiplies its load"),
              Cat("add `budget: 10%` to `retry` of policy `", name, "`"));
    }
    if (!r.has_backoff()) {
      ctx.Add("SB007", retry_line,
              Cat("policy `", name, "` retries (", r.attempts(), " attempts) with no `backoff`: ",
                  "attempts follow each other at once and hit a struggling dependency together"),
              Cat("add `backoff: 20ms..200ms` to `retry` of policy `", name, "`"));
    } else if (p.has_timeout()) {
      const v1::Backoff& b = r.backoff();
      double mult = b.multiplier() > 0 ? b.multiplier() : 2;
      absl::Duration initial = ToAbsl(b.initial());
      absl::Duration max = b.has_max() ? ToAbsl(b.max()) : absl::InfiniteDuration();
      absl::Duration total = absl::ZeroDuration();
      for (int i = 0; i < r.attempts() - 1; ++i) {
        total += std::min(initial * std::pow(mult, i), max);
      }
      absl::Duration timeout = ToAbsl(p.timeout());
      if (total >= timeout) {
        ctx.Add("SB009", ctx.lines.Of({"policies", name, "timeout"}),
                Cat("policy `", name, "`: ", r.attempts(), " attempts wait ", Str(total),
                    " in backoff alone, but `timeout` is ", Str(timeout), ": the last attempts never run"),
                Cat("raise `timeout` above ", Str(total), " plus the time of the attempts, or lower ",
                    "`retry.attempts` / `retry.backoff`"));
      }
    }
  }
  if (p.max_deliveries() > 1 && !p.has_redelivery() && !r.has_backoff()) {
    ctx.Add("SB008", ctx.lines.Of({"policies", name, "max_deliveries"}),
            Cat("policy `", name, "` redelivers up to ", p.max_deliveries(),
                " times with no `redelivery` backoff set: a poison message comes back on a fixed schedule"),
            Cat("add `redelivery: 100ms..10s` to policy `", name, "`"));
  }
}

// ---- whole-file rules ----

bool IsSecretKey(std::string key) {
  key = absl::AsciiStrToLower(key);
  return key == "password" || key == "token" || key == "passphrase" || key.find("secret") != std::string::npos ||
         key == "api_key" || key == "apikey";
}

// "scheme://user:password@host": the password part, if any.
std::string UrlPassword(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "";
  size_t start = scheme + 3;
  size_t at = url.find('@', start);
  if (at == std::string::npos) return "";
  size_t colon = url.find(':', start);
  if (colon == std::string::npos || colon > at) return "";
  return url.substr(colon + 1, at - colon - 1);
}

void CheckSecrets(const Context& ctx, const YAML::Node& node, const std::string& path) {
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar()) continue;
      std::string key = it->first.Scalar();
      std::string child = path.empty() ? key : Cat(path, ".", key);
      // By value: `it->` points into a proxy that dies with this statement.
      const YAML::Node value = it->second;
      if (value.IsScalar()) {
        const std::string& text = value.Scalar();
        int line = it->first.Mark().line + 1;
        if (IsSecretKey(key) && !text.empty() && text.find("${") == std::string::npos) {
          ctx.Add("SB012", line,
                  Cat("`", child, "` is written in the file (value not shown): anyone who reads the config ",
                      "or its history has it"),
                  Cat("write `", key, ": ${ENV_NAME}` and set ENV_NAME in the environment"));
        }
        std::string pw = UrlPassword(text);
        if (!pw.empty() && pw.find("${") == std::string::npos) {
          ctx.Add("SB012", line,
                  Cat("`", child, "` has a password in its URL (not shown)"),
                  "write the password as `${ENV_NAME}` inside the URL, or move it to `password: ${ENV_NAME}`");
        }
      } else {
        CheckSecrets(ctx, value, child);
      }
    }
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      const YAML::Node& v = node[i];
      if (v.IsScalar()) {
        std::string pw = UrlPassword(v.Scalar());
        if (!pw.empty() && pw.find("${") == std::string::npos) {
          ctx.Add("SB012", v.Mark().line + 1, Cat("`", path, "[", i, "]` has a password in its URL (not shown)"),
                  "write the password as `${ENV_NAME}` inside the URL");
        }
      } else {
        CheckSecrets(ctx, v, Cat(path, "[", i, "]"));
      }
    }
  }
}

void CheckUnused(const Context& ctx) {
  const v1::Config& c = ctx.config;
  std::set<std::string> policies{c.node().default_policy()};
  std::set<std::string> transports{DefaultTransport(c)};
  for (const auto& [op, b] : c.operations()) {
    policies.insert(b.policy());
    transports.insert(b.transport());
    if (b.has_rollout()) transports.insert(b.rollout().transport());
  }
  for (const auto& [name, p] : c.policies()) {
    if (!policies.contains(name)) {
      ctx.Add("SB017", ctx.lines.Of({"policies", name}),
              Cat("policy `", name, "` is used by no operation"),
              "remove it, or name it in an operation's `policy:` or in `node.default_policy`");
    }
  }
  for (const auto& [name, t] : c.transports()) {
    if (!transports.contains(name)) {
      ctx.Add("SB017", ctx.lines.Of({"transports", name}),
              Cat("transport `", name, "` is used by no operation"),
              "remove it, or name it in an operation's `transport:` or in `node.default_transport`");
    }
  }
}

}  // namespace

std::string_view SeverityName(Severity s) {
  switch (s) {
    case Severity::kInfo: return "info";
    case Severity::kWarning: return "warning";
    case Severity::kError: return "error";
  }
  return "error";
}

const std::vector<Rule>& Rules() { return kRules; }

const Rule* FindRule(std::string_view id) {
  for (const Rule& r : kRules) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

std::string Format(const Finding& f) {
  return Cat(f.file, ":", f.line, ": ", f.rule, " ", SeverityName(f.severity), ": ", f.message, ". fix: ", f.fix);
}

absl::StatusOr<std::vector<Finding>> Lint(const v1::Config& config, std::string_view yaml,
                                          std::string_view filename) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(Cat(filename, ": ", e.what()));
  }
  Lines lines(root);
  std::vector<Finding> findings;
  Context ctx{config, lines, std::string(filename), &findings};

  // Map iteration order of a proto map is unspecified: sort by name.
  std::map<std::string, const OperationBinding*> ops;
  for (const auto& [op, b] : config.operations()) ops[op] = &b;
  for (const auto& [op, b] : ops) CheckOperation(ctx, op, *b);
  std::map<std::string, const Policy*> policies;
  for (const auto& [name, p] : config.policies()) policies[name] = &p;
  for (const auto& [name, p] : policies) CheckPolicy(ctx, name, *p);
  CheckSecrets(ctx, root, "");
  CheckUnused(ctx);

  std::stable_sort(findings.begin(), findings.end(), [](const Finding& a, const Finding& b) {
    return std::tie(a.line, a.rule) < std::tie(b.line, b.rule);
  });
  return findings;
}

absl::StatusOr<std::vector<Finding>> LintFile(const std::string& path) {
  absl::StatusOr<LoadedConfig> loaded = LoadConfigFile(path);
  if (!loaded.ok()) return loaded.status();
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return Lint(loaded->config, text.str(), path);
}

bool HasErrors(const std::vector<Finding>& findings) {
  return std::any_of(findings.begin(), findings.end(),
                     [](const Finding& f) { return f.severity == Severity::kError; });
}

}  // namespace switchboard::lint
