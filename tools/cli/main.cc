// switchboard: lint, draw, and try a Switchboard configuration by hand.
//
//   switchboard lint CONFIG
//   switchboard rules
//   switchboard graph CONFIG [--format mermaid|dot]
//   switchboard call CONFIG OPERATION JSON [--proto FILE]... [-I DIR]... [--timeout 2s]
//                    [--idempotency-key KEY] [--wait 60s]
//   switchboard publish CONFIG EVENT JSON [--proto FILE]... [-I DIR]...
//
// Exit codes: 0 success (lint: no error finding); 1 lint found an error, the
// config does not load, or the call was made and failed; 2 bad usage or a
// call that could not be made (bad JSON, no descriptor, no node).
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "call.h"
#include "graph.h"
#include "lint.h"
#include "switchboard/config.h"
#include "switchboard/node.h"
#include "switchboard/status.h"

namespace {

constexpr int kOk = 0;
constexpr int kFailed = 1;
constexpr int kUsage = 2;

constexpr const char* kUsageText =
    "usage:\n"
    "  switchboard lint CONFIG\n"
    "  switchboard rules\n"
    "  switchboard graph CONFIG [--format mermaid|dot]\n"
    "  switchboard call CONFIG OPERATION JSON [--proto FILE]... [-I DIR]... [--timeout 2s]\n"
    "                   [--idempotency-key KEY] [--wait 60s]\n"
    "  switchboard publish CONFIG EVENT JSON [--proto FILE]... [-I DIR]...\n";

int Usage(const std::string& why) {
  if (!why.empty()) std::cerr << "switchboard: " << why << "\n";
  std::cerr << kUsageText;
  return kUsage;
}

struct Args {
  std::vector<std::string> positional;
  std::vector<std::string> protos;
  std::vector<std::string> import_dirs;
  std::string format = "mermaid";
  std::string timeout;
  std::string wait = "60s";
  std::string idempotency_key;
};

bool Parse(int argc, char** argv, Args* args, std::string* error) {
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) {
        *error = a + " needs a value";
        return false;
      }
      *out = argv[++i];
      return true;
    };
    std::string v;
    if (a == "--proto") {
      if (!value(&v)) return false;
      args->protos.push_back(v);
    } else if (a == "-I" || a == "--proto_path") {
      if (!value(&v)) return false;
      args->import_dirs.push_back(v);
    } else if (a.starts_with("-I") && a.size() > 2) {
      args->import_dirs.push_back(a.substr(2));
    } else if (a == "--format") {
      if (!value(&args->format)) return false;
    } else if (a == "--timeout") {
      if (!value(&args->timeout)) return false;
    } else if (a == "--wait") {
      if (!value(&args->wait)) return false;
    } else if (a == "--idempotency-key") {
      if (!value(&args->idempotency_key)) return false;
    } else if (a.starts_with("--")) {
      *error = "unknown option " + a;
      return false;
    } else {
      args->positional.push_back(a);
    }
  }
  return true;
}

void PrintWarnings(const switchboard::LoadedConfig& loaded) {
  for (const auto& w : loaded.warnings) std::cerr << "warning: " << w.location << ": " << w.message << "\n";
}

int Lint(const Args& args) {
  if (args.positional.size() != 1) return Usage("lint takes one CONFIG");
  auto findings = switchboard::lint::LintFile(args.positional[0]);
  if (!findings.ok()) {
    std::cerr << findings.status().message() << "\n";
    return kFailed;
  }
  for (const auto& f : *findings) std::cout << switchboard::lint::Format(f) << "\n";
  return switchboard::lint::HasErrors(*findings) ? kFailed : kOk;
}

int Rules() {
  for (const auto& r : switchboard::lint::Rules()) {
    std::cout << r.id << "  " << switchboard::lint::SeverityName(r.severity) << "  " << r.name << ": "
              << r.summary << "\n";
  }
  return kOk;
}

int Graph(const Args& args) {
  if (args.positional.size() != 1) return Usage("graph takes one CONFIG");
  auto format = switchboard::graph::ParseFormat(args.format);
  if (!format.ok()) return Usage(std::string(format.status().message()));
  auto loaded = switchboard::LoadConfigFile(args.positional[0]);
  if (!loaded.ok()) {
    std::cerr << loaded.status().message() << "\n";
    return kFailed;
  }
  std::cout << switchboard::graph::Render(loaded->config, *format);
  return kOk;
}

int CallOrPublish(const Args& args, bool publish) {
  if (args.positional.size() != 3) {
    return Usage(publish ? "publish takes CONFIG EVENT JSON" : "call takes CONFIG OPERATION JSON");
  }
  const std::string& config_path = args.positional[0];
  const std::string& name = args.positional[1];
  const std::string& json = args.positional[2];

  switchboard::CallOptions options;
  options.idempotency_key = args.idempotency_key;
  if (!args.timeout.empty()) {
    auto timeout = switchboard::ParseDurationText(args.timeout);
    if (!timeout.ok()) return Usage("--timeout: " + std::string(timeout.status().message()));
    options.timeout = *timeout;
  }
  auto wait = switchboard::ParseDurationText(args.wait);
  if (!wait.ok()) return Usage("--wait: " + std::string(wait.status().message()));

  auto protos = switchboard::cli::ProtoSource::Create(args.protos, args.import_dirs);
  if (!protos.ok()) {
    std::cerr << "error: " << protos.status() << "\n";
    return kUsage;
  }
  auto loaded = switchboard::LoadConfigFile(config_path);
  if (!loaded.ok()) {
    std::cerr << loaded.status().message() << "\n";
    return kFailed;
  }
  PrintWarnings(*loaded);
  auto node = switchboard::Node::Create(loaded->config);
  if (!node.ok()) {
    std::cerr << "error: " << node.status() << "\n";
    return kUsage;
  }
  // A payload that does not fit its type is refused before anything is
  // sent: a usage error (2), not a failed call (1).
  const google::protobuf::Descriptor* type = nullptr;
  if (publish) {
    type = (*protos)->FindMessage(name);
  } else if (const auto* method = (*protos)->FindMethod(name)) {
    type = method->input_type();
  }
  if (type == nullptr) {
    std::cerr << "error: " << absl::NotFoundError(
                                  "no descriptor for `" + name + "`; pass its .proto with --proto FILE -I DIR")
              << "\n";
    return kUsage;
  }
  if (auto bytes = switchboard::cli::JsonToBytes(*type, json); !bytes.ok()) {
    std::cerr << "error: " << bytes.status() << "\n";
    return kUsage;
  }
  auto result = publish ? switchboard::cli::PublishJson(**node, **protos, name, json, options, *wait)
                        : switchboard::cli::CallJson(**node, **protos, name, json, options, *wait);
  if (!result.ok()) {
    std::cerr << "error: " << result.status() << "\n";
    return kFailed;
  }
  std::cout << result->json << "\n";
  std::cerr << (publish ? "published" : "done") << ": message " << result->info.message_id << ", trace "
            << result->info.trace_id << ", idempotency key " << result->info.idempotency_key << "\n";
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage("");
  std::string command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") {
    std::cout << kUsageText;
    return kOk;
  }
  Args args;
  std::string error;
  if (!Parse(argc, argv, &args, &error)) return Usage(error);
  if (command == "lint") return Lint(args);
  if (command == "rules") return Rules();
  if (command == "graph") return Graph(args);
  if (command == "call") return CallOrPublish(args, false);
  if (command == "publish") return CallOrPublish(args, true);
  return Usage("unknown command " + command);
}
