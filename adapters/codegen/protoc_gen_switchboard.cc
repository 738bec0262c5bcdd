// protoc-gen-switchboard: typed clients, handler interfaces and registration
// functions from .proto services annotated with Switchboard options.
//
//   protoc --plugin=protoc-gen-switchboard=PATH --switchboard_out=DIR orders.proto
//
// For `orders/v1/orders.proto` it writes `orders/v1/orders.switchboard.h` and
// `.cc` next to protoc's own `orders.pb.h`. Per service `Orders`:
//   - `Orders`: the operations as constexpr switchboard::Operation values;
//   - `OrdersClient`: one method per operation returning Future<Reply>;
//   - `OrdersHandler`: the interface to implement, one pure virtual per method;
//   - `RegisterOrders(node, handler)`: binds an implementation to a node.
// Per message annotated with `(switchboard.v1.event)`: `<Message>Event` with
// typed Publish and Subscribe helpers.
//
// The style in the .proto is only the operation's default; configuration
// overrides it and the generated code does not depend on it. Streaming
// methods and names that would clash are refused with a protoc error naming
// the method or the name.
#include <set>
#include <string>
#include <vector>

#include "google/protobuf/compiler/code_generator.h"
#include "google/protobuf/compiler/plugin.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/io/printer.h"
#include "google/protobuf/io/zero_copy_stream.h"
#include "switchboard/v1/options.pb.h"

namespace switchboard::codegen {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FileDescriptor;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;
using google::protobuf::SourceLocation;
using google::protobuf::compiler::CodeGenerator;
using google::protobuf::compiler::GeneratorContext;
using google::protobuf::io::Printer;

std::string StripProto(const std::string& name) {
  return name.size() > 6 && name.substr(name.size() - 6) == ".proto" ? name.substr(0, name.size() - 6)
                                                                      : name;
}

// "orders.v1" -> "orders::v1"
std::string CppNamespace(const std::string& package) {
  std::string out;
  for (char c : package) {
    if (c == '.') {
      out += "::";
    } else {
      out += c;
    }
  }
  return out;
}

// The C++ name of a message relative to the global namespace, e.g.
// "::orders::v1::Outer_Inner".
std::string CppType(const Descriptor* d) {
  std::string name = d->name();
  for (const Descriptor* p = d->containing_type(); p != nullptr; p = p->containing_type()) {
    name = p->name() + "_" + name;
  }
  std::string ns = CppNamespace(d->file()->package());
  return ns.empty() ? "::" + name : "::" + ns + "::" + name;
}

// Leading comments of a descriptor as C++ `//` lines, indented.
template <class D>
std::string Comments(const D* d, const std::string& indent) {
  SourceLocation loc;
  if (!d->GetSourceLocation(&loc)) return "";
  std::string text = loc.leading_comments;
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line[0] == ' ') line.erase(0, 1);
    out += indent + "//" + (line.empty() ? "" : " " + line) + "\n";
    start = end + 1;
  }
  return out;
}

std::string StyleComment(const MethodDescriptor* m) {
  const auto& opts = m->options().GetExtension(v1::operation);
  switch (opts.style()) {
    case v1::STYLE_REQUEST:
      return "Default style: request.";
    case v1::STYLE_COMMAND:
      return opts.reply() ? "Default style: command with reply." : "Default style: command.";
    case v1::STYLE_EVENT:
      return "Default style: event.";
    default:
      return "Default style: request (none declared).";
  }
}

class Generator final : public CodeGenerator {
 public:
  uint64_t GetSupportedFeatures() const override { return FEATURE_PROTO3_OPTIONAL; }

  bool Generate(const FileDescriptor* file, const std::string& parameter, GeneratorContext* context,
                std::string* error) const override {
    (void)parameter;
    if (!Check(file, error)) return false;
    std::string base = StripProto(file->name());
    {
      std::unique_ptr<google::protobuf::io::ZeroCopyOutputStream> out(context->Open(base + ".switchboard.h"));
      Printer p(out.get(), '$');
      Header(file, base, p);
    }
    {
      std::unique_ptr<google::protobuf::io::ZeroCopyOutputStream> out(context->Open(base + ".switchboard.cc"));
      Printer p(out.get(), '$');
      Source(file, base, p);
    }
    return true;
  }

 private:
  static std::vector<const Descriptor*> Events(const FileDescriptor* file) {
    std::vector<const Descriptor*> out;
    for (int i = 0; i < file->message_type_count(); ++i) {
      const Descriptor* d = file->message_type(i);
      if (d->options().HasExtension(v1::event)) out.push_back(d);
    }
    return out;
  }

  // Refuses what Switchboard cannot carry, and generated names that collide
  // with names the .proto already declares in the same package.
  static bool Check(const FileDescriptor* file, std::string* error) {
    std::set<std::string> taken;
    for (int i = 0; i < file->message_type_count(); ++i) taken.insert(file->message_type(i)->name());
    for (int i = 0; i < file->enum_type_count(); ++i) taken.insert(file->enum_type(i)->name());
    std::set<std::string> generated;
    auto claim = [&](const std::string& name, const std::string& why) {
      if (taken.count(name) || !generated.insert(name).second) {
        *error = "switchboard: generated name `" + name + "` (" + why + ") clashes with a name already declared in " +
                 file->name() + "; rename the message, enum or service";
        return false;
      }
      return true;
    };
    for (int s = 0; s < file->service_count(); ++s) {
      const ServiceDescriptor* service = file->service(s);
      for (int m = 0; m < service->method_count(); ++m) {
        const MethodDescriptor* method = service->method(m);
        if (method->client_streaming() || method->server_streaming()) {
          *error = "switchboard: " + service->full_name() + "." + method->name() +
                   " is a streaming method; Switchboard operations are unary (request, command or event): "
                   "remove `stream` or move the method to a service without Switchboard codegen";
          return false;
        }
        if (method->options().GetExtension(v1::operation).style() == v1::STYLE_EVENT) {
          *error = "switchboard: " + service->full_name() + "." + method->name() +
                   " declares style STYLE_EVENT; an event is a message annotated with "
                   "(switchboard.v1.event), not a method";
          return false;
        }
      }
      if (!claim(service->name(), "operations of service " + service->name()) ||
          !claim(service->name() + "Client", "client of service " + service->name()) ||
          !claim(service->name() + "Handler", "handler of service " + service->name()) ||
          !claim("Register" + service->name(), "registration of service " + service->name())) {
        return false;
      }
    }
    for (const Descriptor* d : Events(file)) {
      if (!claim(d->name() + "Event", "helpers of event " + d->full_name())) return false;
    }
    return true;
  }

  static void Header(const FileDescriptor* file, const std::string& base, Printer& p) {
    p.Print(
        "// Generated by protoc-gen-switchboard from $file$. Do not edit.\n"
        "#pragma once\n\n"
        "#include <string>\n"
        "#include <utility>\n"
        "#include <vector>\n\n"
        "#include \"$base$.pb.h\"\n"
        "#include \"google/protobuf/empty.pb.h\"\n"
        "#include \"switchboard/node.h\"\n\n",
        "file", file->name(), "base", base);
    std::string ns = CppNamespace(file->package());
    if (!ns.empty()) p.Print("namespace $ns$ {\n\n", "ns", ns);

    for (int s = 0; s < file->service_count(); ++s) {
      const ServiceDescriptor* service = file->service(s);
      std::string name = service->name();
      p.Print("$comments$", "comments", Comments(service, ""));
      p.Print("// The operations of $full$.\nstruct $name$ {\n", "full", service->full_name(), "name", name);
      for (int m = 0; m < service->method_count(); ++m) {
        const MethodDescriptor* method = service->method(m);
        p.Print(
            "  static constexpr ::switchboard::Operation<$req$, $rep$> k$method${\"$svc$/$method$\"};\n",
            "req", CppType(method->input_type()), "rep", CppType(method->output_type()), "method",
            method->name(), "svc", service->full_name());
      }
      p.Print("};\n\n");

      p.Print(
          "// Calls the operations of $full$ through a Node. The style of each\n"
          "// comes from the node's configuration. Cheap to copy; the node must\n"
          "// outlive it. Thread-safe.\n"
          "class $name$Client {\n"
          " public:\n"
          "  explicit $name$Client(::switchboard::Node& node) : node_(&node) {}\n\n",
          "full", service->full_name(), "name", name);
      for (int m = 0; m < service->method_count(); ++m) {
        const MethodDescriptor* method = service->method(m);
        p.Print("$comments$  // $style$\n", "comments", Comments(method, "  "), "style", StyleComment(method));
        p.Print(
            "  ::switchboard::Future<$rep$> $method$(const $req$& request,\n"
            "      ::switchboard::CallOptions options = {}) const;\n\n",
            "req", CppType(method->input_type()), "rep", CppType(method->output_type()), "method",
            method->name());
      }
      p.Print(" private:\n  ::switchboard::Node* node_;\n};\n\n");

      p.Print(
          "// Implement this to serve $full$. Methods run on the node's handler\n"
          "// threads, possibly several at once: implementations must be thread-safe.\n"
          "// A returned error travels to the caller with its code and message.\n"
          "class $name$Handler {\n"
          " public:\n"
          "  virtual ~$name$Handler() = default;\n\n",
          "full", service->full_name(), "name", name);
      for (int m = 0; m < service->method_count(); ++m) {
        const MethodDescriptor* method = service->method(m);
        p.Print("$comments$", "comments", Comments(method, "  "));
        p.Print(
            "  virtual ::absl::StatusOr<$rep$> $method$(::switchboard::Context& ctx,\n"
            "      const $req$& request) = 0;\n$blank$",
            "req", CppType(method->input_type()), "rep", CppType(method->output_type()), "method",
            method->name(), "blank", m + 1 < service->method_count() ? "\n" : "");
      }
      p.Print("};\n\n");
      p.Print(
          "// Serves every operation of $full$ on `node` with `handler`, which must\n"
          "// outlive the returned registrations (destroying them stops serving).\n"
          "[[nodiscard]] ::absl::StatusOr<std::vector<::switchboard::HandlerRegistration>> Register$name$(\n"
          "    ::switchboard::Node& node, $name$Handler& handler,\n"
          "    ::switchboard::HandlerOptions options = {});\n\n",
          "full", service->full_name(), "name", name);
    }

    for (const Descriptor* d : Events(file)) {
      std::string type = CppType(d);
      p.Print("$comments$", "comments", Comments(d, ""));
      p.Print(
          "// Publish and subscribe helpers for the event $full$.\n"
          "struct $name$Event {\n"
          "  static constexpr ::switchboard::Operation<$type$, ::google::protobuf::Empty> kOperation{\"$full$\"};\n",
          "full", d->full_name(), "name", d->name(), "type", type);
      const auto& groups = d->options().GetExtension(v1::event).groups();
      if (!groups.empty()) {
        p.Print("  // The subscriber groups declared in the .proto.\n  static std::vector<std::string> DeclaredGroups() {\n    return {");
        for (int i = 0; i < groups.size(); ++i) {
          p.Print("$sep$\"$g$\"", "sep", i == 0 ? "" : ", ", "g", groups.Get(i));
        }
        p.Print("};\n  }\n");
      }
      p.Print(
          "\n  // Resolves once the transport holds the event.\n"
          "  static ::switchboard::Future<::google::protobuf::Empty> Publish(::switchboard::Node& node,\n"
          "      const $type$& event, ::switchboard::CallOptions options = {});\n\n"
          "  // Subscribes `fn` (`(Context&, const $name$&) -> absl::StatusOr<Empty>`)\n"
          "  // as one consumer of `group`.\n"
          "  template <class Fn>\n"
          "  static ::absl::StatusOr<::switchboard::HandlerRegistration> Subscribe(\n"
          "      ::switchboard::Node& node, std::string group, Fn fn, ::switchboard::HandlerOptions options = {}) {\n"
          "    options.group = std::move(group);\n"
          "    return node.Handle(kOperation, std::move(fn), std::move(options));\n"
          "  }\n"
          "};\n\n",
          "type", type, "name", d->name());
    }
    if (!ns.empty()) p.Print("}  // namespace $ns$\n", "ns", ns);
  }

  static void Source(const FileDescriptor* file, const std::string& base, Printer& p) {
    p.Print("// Generated by protoc-gen-switchboard from $file$. Do not edit.\n"
            "#include \"$base$.switchboard.h\"\n\n",
            "file", file->name(), "base", base);
    std::string ns = CppNamespace(file->package());
    if (!ns.empty()) p.Print("namespace $ns$ {\n\n", "ns", ns);
    for (int s = 0; s < file->service_count(); ++s) {
      const ServiceDescriptor* service = file->service(s);
      std::string name = service->name();
      for (int m = 0; m < service->method_count(); ++m) {
        const MethodDescriptor* method = service->method(m);
        p.Print(
            "::switchboard::Future<$rep$> $name$Client::$method$(const $req$& request,\n"
            "    ::switchboard::CallOptions options) const {\n"
            "  return node_->Call($name$::k$method$, request, std::move(options));\n"
            "}\n\n",
            "req", CppType(method->input_type()), "rep", CppType(method->output_type()), "method",
            method->name(), "name", name);
      }
      p.Print(
          "::absl::StatusOr<std::vector<::switchboard::HandlerRegistration>> Register$name$(\n"
          "    ::switchboard::Node& node, $name$Handler& handler, ::switchboard::HandlerOptions options) {\n"
          "  std::vector<::switchboard::HandlerRegistration> registrations;\n",
          "name", name);
      for (int m = 0; m < service->method_count(); ++m) {
        const MethodDescriptor* method = service->method(m);
        p.Print(
            "  {\n"
            "    auto r = node.Handle(\n"
            "        $name$::k$method$,\n"
            "        [&handler](::switchboard::Context& ctx, const $req$& request) {\n"
            "          return handler.$method$(ctx, request);\n"
            "        },\n"
            "        options);\n"
            "    if (!r.ok()) return r.status();\n"
            "    registrations.push_back(*std::move(r));\n"
            "  }\n",
            "req", CppType(method->input_type()), "method", method->name(), "name", name);
      }
      p.Print("  return registrations;\n}\n\n");
    }
    for (const Descriptor* d : Events(file)) {
      p.Print(
          "::switchboard::Future<::google::protobuf::Empty> $name$Event::Publish(::switchboard::Node& node,\n"
          "    const $type$& event, ::switchboard::CallOptions options) {\n"
          "  return node.Call(kOperation, event, std::move(options));\n"
          "}\n\n",
          "name", d->name(), "type", CppType(d));
    }
    if (!ns.empty()) p.Print("}  // namespace $ns$\n", "ns", ns);
  }
};

}  // namespace
}  // namespace switchboard::codegen

int main(int argc, char* argv[]) {
  switchboard::codegen::Generator generator;
  return google::protobuf::compiler::PluginMain(argc, argv, &generator);
}
