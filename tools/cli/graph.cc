#include "graph.h"

#include <map>
#include <set>
#include <vector>

#include "switchboard/internal/strings.h"

namespace switchboard::graph {
namespace {

constexpr std::string_view kEmbedded = "inproc";  // the node's embedded default transport

std::string_view StyleText(v1::Style s) {
  switch (s) {
    case v1::STYLE_COMMAND: return "command";
    case v1::STYLE_EVENT: return "event";
    default: return "request";
  }
}

std::string Percent(double p) {
  std::string s = Cat(p);
  return Cat(s, "%");
}

struct OpNode {
  std::string id;
  std::string transport;
  std::vector<std::string> label;  // lines
};

struct Edge {
  std::string from, to, label;
  bool dashed = false;
};

struct Model {
  // transport name -> its caption, in name order
  std::map<std::string, std::string> transports;
  std::vector<OpNode> ops;
  std::map<std::string, std::string> groups;  // group -> id
  std::vector<Edge> edges;
};

std::string DefaultTransport(const v1::Config& c) {
  if (!c.node().default_transport().empty()) return c.node().default_transport();
  if (c.transports_size() == 1) return c.transports().begin()->first;
  return std::string(kEmbedded);
}

std::string Caption(const v1::Config& c, const std::string& name) {
  auto it = c.transports().find(name);
  if (it == c.transports().end()) return Cat(name, ": inproc (embedded)");
  const v1::TransportConfig& t = it->second;
  std::string caption = Cat(name, ": ", t.type());
  if (t.type() == "nats") caption += t.nats().jetstream() ? " (jetstream)" : " (core)";
  return caption;
}

Model Build(const v1::Config& c) {
  Model m;
  std::map<std::string, const v1::OperationBinding*> ops;  // sorted by name
  for (const auto& [op, b] : c.operations()) ops[op] = &b;
  // Only transports that carry an operation appear (`switchboard lint`
  // reports the unused ones).

  std::set<std::string> group_names;
  for (const auto& [op, b] : ops) {
    for (const std::string& g : b->groups()) group_names.insert(g);
  }
  int gi = 0;
  for (const std::string& g : group_names) m.groups[g] = Cat("g", gi++);

  int i = 0;
  for (const auto& [op, b] : ops) {
    std::string transport = b->transport().empty() ? DefaultTransport(c) : b->transport();
    if (!m.transports.contains(transport)) m.transports[transport] = Caption(c, transport);
    v1::Style style = b->style() == v1::STYLE_UNSPECIFIED ? v1::STYLE_REQUEST : b->style();
    std::string policy = b->policy().empty() ? c.node().default_policy() : b->policy();

    OpNode n;
    n.id = Cat("o", i++);
    n.transport = transport;
    n.label.push_back(op);
    n.label.push_back(Cat(StyleText(style), b->reply() ? " + reply" : ""));
    if (!policy.empty()) n.label.push_back(Cat("policy ", policy));
    if (b->has_rollout()) n.label.push_back(Cat(Percent(100 - b->rollout().percent()), " of calls"));
    for (const std::string& g : b->groups()) m.edges.push_back({n.id, m.groups[g], "", false});

    if (b->has_rollout()) {
      const v1::Rollout& ro = b->rollout();
      std::string ro_transport = ro.transport().empty() ? transport : ro.transport();
      if (!m.transports.contains(ro_transport)) m.transports[ro_transport] = Caption(c, ro_transport);
      OpNode r;
      r.id = Cat(n.id, "r");
      r.transport = ro_transport;
      r.label.push_back(Cat(op, " (rollout)"));
      r.label.push_back(Cat(StyleText(ro.style()), ro.reply() ? " + reply" : ""));
      r.label.push_back(Cat(Percent(ro.percent()), " of calls"));
      m.edges.push_back({n.id, r.id, Cat("rollout ", Percent(ro.percent())), true});
      m.ops.push_back(std::move(n));
      m.ops.push_back(std::move(r));
    } else {
      m.ops.push_back(std::move(n));
    }
  }
  return m;
}

std::string MermaidText(std::string_view s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"') {
      out += "#quot;";
    } else {
      out += ch;
    }
  }
  return out;
}

std::string DotText(std::string_view s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

std::string Join(const std::vector<std::string>& lines, std::string_view sep,
                 std::string (*escape)(std::string_view)) {
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += sep;
    out += escape(lines[i]);
  }
  return out;
}

std::string RenderMermaid(const Model& m) {
  std::string out = "flowchart LR\n";
  int ti = 0;
  for (const auto& [name, caption] : m.transports) {
    out += Cat("  subgraph t", ti++, "[\"", MermaidText(caption), "\"]\n");
    for (const OpNode& n : m.ops) {
      if (n.transport != name) continue;
      out += Cat("    ", n.id, "[\"", Join(n.label, "<br/>", MermaidText), "\"]\n");
    }
    out += "  end\n";
  }
  for (const auto& [group, id] : m.groups) {
    out += Cat("  ", id, "([\"group ", MermaidText(group), "\"])\n");
  }
  for (const Edge& e : m.edges) {
    if (e.dashed) {
      out += Cat("  ", e.from, " -. \"", MermaidText(e.label), "\" .-> ", e.to, "\n");
    } else {
      out += Cat("  ", e.from, " --> ", e.to, "\n");
    }
  }
  return out;
}

std::string RenderDot(const Model& m) {
  std::string out = "digraph switchboard {\n  rankdir=LR;\n  node [shape=box];\n";
  int ti = 0;
  for (const auto& [name, caption] : m.transports) {
    out += Cat("  subgraph cluster_t", ti++, " {\n    label=\"", DotText(caption), "\";\n");
    for (const OpNode& n : m.ops) {
      if (n.transport != name) continue;
      out += Cat("    ", n.id, " [label=\"", Join(n.label, "\\n", DotText), "\"];\n");
    }
    out += "  }\n";
  }
  for (const auto& [group, id] : m.groups) {
    out += Cat("  ", id, " [label=\"group ", DotText(group), "\", shape=ellipse];\n");
  }
  for (const Edge& e : m.edges) {
    out += Cat("  ", e.from, " -> ", e.to);
    if (e.dashed) out += Cat(" [style=dashed, label=\"", DotText(e.label), "\"]");
    out += ";\n";
  }
  out += "}\n";
  return out;
}

}  // namespace

absl::StatusOr<Format> ParseFormat(std::string_view name) {
  if (name == "mermaid") return Format::kMermaid;
  if (name == "dot" || name == "graphviz") return Format::kDot;
  return absl::InvalidArgumentError(Cat("unknown graph format `", name, "`; use mermaid or dot"));
}

std::string Render(const v1::Config& config, Format format) {
  Model m = Build(config);
  return format == Format::kDot ? RenderDot(m) : RenderMermaid(m);
}

}  // namespace switchboard::graph
