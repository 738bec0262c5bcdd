// lint.h: the rules of `switchboard lint`.
//
// Each rule turns one of the known ways a messaging setup fails (a request
// that can wait forever, a retried mutation without an idempotency key, a
// command that is dropped instead of dead-lettered, ...) into a finding with
// a stable id, a severity and the fix:
//
//   auto findings = switchboard::lint::LintFile("orders.yaml");
//   if (!findings.ok()) { std::cerr << findings.status() << "\n"; return 1; }
//   for (const auto& f : *findings) std::cout << switchboard::lint::Format(f) << "\n";
//
// The rules read the typed config (what the loader accepted) and, for the
// line numbers and for what the loader replaced (secrets written literally
// instead of `${ENV}`), the YAML text itself. docs/lint-rules.md lists them.
//
// Thread safety: the functions are pure; call them from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard::lint {

enum class Severity { kInfo, kWarning, kError };

[[nodiscard]] std::string_view SeverityName(Severity s);  // "info", "warning", "error"

struct Rule {
  std::string_view id;     // "SB001"
  std::string_view name;   // "request-without-timeout"
  Severity severity;
  std::string_view summary;
};

// Every rule, in id order.
[[nodiscard]] const std::vector<Rule>& Rules();
[[nodiscard]] const Rule* FindRule(std::string_view id);

struct Finding {
  std::string rule;  // the rule's id
  Severity severity = Severity::kWarning;
  std::string file;
  int line = 0;  // 1-based; 0 when unknown
  std::string message;
  std::string fix;
};

// "file:line: SB001 error: message. fix: ..."
[[nodiscard]] std::string Format(const Finding& finding);

// Lints `config` (as loaded from `yaml`, the file's text; `filename` labels
// findings). InvalidArgument if `yaml` does not parse.
[[nodiscard]] absl::StatusOr<std::vector<Finding>> Lint(const v1::Config& config, std::string_view yaml,
                                                        std::string_view filename);

// Loads `path` with switchboard::LoadConfigFile (its error as is) and lints it.
[[nodiscard]] absl::StatusOr<std::vector<Finding>> LintFile(const std::string& path);

// True when one finding is an error (the exit code of `switchboard lint`).
[[nodiscard]] bool HasErrors(const std::vector<Finding>& findings);

}  // namespace switchboard::lint
