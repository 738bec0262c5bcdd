// config.cc: YAML -> switchboard.v1.Config, and its validation.
//
// The YAML tree is walked against the Config descriptor with protobuf
// reflection, so config.proto stays the single source of truth for key
// names and types; only the short forms (durations, ratios, sizes, backoff
// ranges, enum short names) and the flat transport options are special.
//
// While parsing, the Mark of every key and value is recorded by its path
// (`operations["x"].transport`), so that the checks run after parsing
// (references, bindings) report file:line too. A Config built in code has
// no marks: its errors name the path instead.
#include "switchboard/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/struct.pb.h"
#include "switchboard/transport_registry.h"
#include "switchboard/v1/config.pb.h"
#include "switchboard/v1/envelope.pb.h"
#include "switchboard/v1/options.pb.h"

namespace switchboard {
namespace {

namespace pb = google::protobuf;

constexpr absl::string_view kDurationName = "google.protobuf.Duration";
constexpr absl::string_view kStructName = "google.protobuf.Struct";
constexpr absl::string_view kEmptyName = "google.protobuf.Empty";
// The transport types whose options have their own sub-message in
// TransportConfig (the field has the type's name).
constexpr const char* kBuiltinTypes[] = {"inproc", "grpc", "nats", "amqp"};
// Largest duration google.protobuf.Duration can hold (10000 years).
constexpr int64_t kMaxDurationSeconds = 315576000000;

// ---------------------------------------------------------------------------
// Small text helpers

// A problem with a piece of text: what is wrong and how to fix it.
struct TextError {
  std::string what;
  std::string hint;
  // The hint without any part of the text, for values that are not shown
  // (secrets, environment values); empty when `hint` has none.
  std::string safe_hint = "";
};

constexpr char kDurationHint[] =
    "write a number followed by a unit (ns, us, ms, s, m, h) with no space, e.g. `250ms`, `1.5s`, `24h`";

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const bool same = absl::ascii_tolower(static_cast<unsigned char>(a[i - 1])) ==
                        absl::ascii_tolower(static_cast<unsigned char>(b[j - 1]));
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The candidate closest to `word`, if it is close enough to be a typo.
std::optional<std::string> Closest(absl::string_view word, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const std::string& candidate : candidates) {
    const size_t d = EditDistance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  const size_t allowed = std::max<size_t>(2, word.size() / 3);
  if (!best || best_distance > allowed || best_distance >= std::max(word.size(), best->size())) {
    return std::nullopt;
  }
  return best;
}

std::string Backticked(const std::vector<std::string>& names) {
  std::vector<std::string> quoted;
  quoted.reserve(names.size());
  for (const std::string& n : names) quoted.push_back(absl::StrCat("`", n, "`"));
  return absl::StrJoin(quoted, ", ");
}

// "did you mean `x`?" or "valid ...: a, b, c".
std::string SuggestHint(absl::string_view word, const std::vector<std::string>& candidates,
                        absl::string_view what_they_are) {
  if (auto closest = Closest(word, candidates)) {
    return absl::StrCat("did you mean `", *closest, "`?");
  }
  if (candidates.empty()) return absl::StrCat("there are no ", what_they_are, " to choose from");
  return absl::StrCat("valid ", what_they_are, ": ", Backticked(candidates));
}

bool IsSecretName(absl::string_view name) {
  return name == "password" || name == "token" || absl::StrContains(name, "secret") ||
         absl::StrContains(name, "password") || absl::StrContains(name, "token");
}

bool IsRatioField(const pb::FieldDescriptor* f) {
  if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_DOUBLE) return false;
  const std::string& n = f->name();
  return n == "budget" || n == "failure_rate" || n == "sample_ratio" || absl::EndsWith(n, "_ratio");
}

bool IsPercentField(const pb::FieldDescriptor* f) {
  return f->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE && f->name() == "percent";
}

bool IsSizeField(const pb::FieldDescriptor* f) {
  return f->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT64 && absl::EndsWith(f->name(), "_bytes");
}

bool IsBuiltinType(absl::string_view type) {
  return std::find(std::begin(kBuiltinTypes), std::end(kBuiltinTypes), type) != std::end(kBuiltinTypes);
}

// A decimal number without sign: digits with an optional fraction.
size_t ScanNumber(absl::string_view text, size_t i) {
  while (i < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) ++i;
  }
  return i;
}

// Turns "20 sec", "5 minutes", "2d" into what was probably meant.
std::optional<std::string> GuessDuration(absl::string_view text) {
  std::string compact;
  for (char c : text) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) compact.push_back(c);
  }
  const size_t end = ScanNumber(compact, 0);
  if (end == 0 || end == compact.size()) return std::nullopt;
  const std::string number = compact.substr(0, end);
  const std::string unit = absl::AsciiStrToLower(compact.substr(end));
  static const std::map<std::string, std::string> kUnits = {
      {"ns", "ns"},      {"nanos", "ns"},     {"us", "us"},       {"micros", "us"},
      {"ms", "ms"},      {"msec", "ms"},      {"msecs", "ms"},    {"millis", "ms"},
      {"millisecond", "ms"}, {"milliseconds", "ms"}, {"s", "s"},  {"sec", "s"},
      {"secs", "s"},     {"second", "s"},     {"seconds", "s"},   {"m", "m"},
      {"min", "m"},      {"mins", "m"},       {"minute", "m"},    {"minutes", "m"},
      {"h", "h"},        {"hr", "h"},         {"hrs", "h"},       {"hour", "h"},
      {"hours", "h"}};
  auto it = kUnits.find(unit);
  if (it != kUnits.end()) return absl::StrCat(number, it->second);
  if (unit == "d" || unit == "day" || unit == "days") {
    double days = 0;
    if (absl::SimpleAtod(number, &days)) return absl::StrCat(days * 24, "h");
  }
  return std::nullopt;
}

std::optional<TextError> ParseDurationImpl(absl::string_view text, absl::Duration* out) {
  const std::string shown = absl::StrCat("`", text, "`");
  if (text.empty()) {
    return TextError{"is empty, not a duration", "write a duration such as `250ms` or `2s`"};
  }
  if (text == "0") {
    *out = absl::ZeroDuration();
    return std::nullopt;
  }
  if (text[0] == '-') {
    return TextError{absl::StrCat(shown, " is negative; a duration cannot be negative"),
                     "write a positive duration such as `1s`"};
  }
  absl::Duration total = absl::ZeroDuration();
  size_t i = 0;
  bool bad = false;
  bool no_unit = false;
  while (i < text.size()) {
    const size_t start = i;
    i = ScanNumber(text, i);
    if (i == start || (i == start + 1 && text[start] == '.')) {
      bad = true;
      break;
    }
    double value = 0;
    if (!absl::SimpleAtod(text.substr(start, i - start), &value)) {
      bad = true;
      break;
    }
    const size_t unit_start = i;
    while (i < text.size() && (absl::ascii_isalpha(static_cast<unsigned char>(text[i])) ||
                               static_cast<unsigned char>(text[i]) >= 0x80)) {
      ++i;
    }
    const absl::string_view unit = text.substr(unit_start, i - unit_start);
    absl::Duration scale;
    if (unit == "ns") {
      scale = absl::Nanoseconds(1);
    } else if (unit == "us" || unit == "\xC2\xB5s") {
      scale = absl::Microseconds(1);
    } else if (unit == "ms") {
      scale = absl::Milliseconds(1);
    } else if (unit == "s") {
      scale = absl::Seconds(1);
    } else if (unit == "m") {
      scale = absl::Minutes(1);
    } else if (unit == "h") {
      scale = absl::Hours(1);
    } else {
      no_unit = unit.empty() && i == text.size() && start == 0;
      bad = true;
      break;
    }
    total += scale * value;
  }
  if (no_unit) {
    return TextError{absl::StrCat(shown, " has no unit"),
                     absl::StrCat("write `", text, "s` for seconds or `", text,
                                  "ms` for milliseconds (units: ns, us, ms, s, m, h)"),
                     kDurationHint};
  }
  if (bad) {
    if (auto guess = GuessDuration(text)) {
      return TextError{absl::StrCat(shown, " is not a duration"), absl::StrCat("did you mean `", *guess, "`?"),
                       kDurationHint};
    }
    return TextError{absl::StrCat(shown, " is not a duration"), kDurationHint};
  }
  if (total == absl::InfiniteDuration() || total > absl::Seconds(kMaxDurationSeconds)) {
    return TextError{absl::StrCat(shown, " is too long a duration"),
                     "write a duration below 10000 years"};
  }
  *out = total;
  return std::nullopt;
}

// "10%" -> 0.10 (or 10 when `as_percent`), "0.1" -> 0.1.
std::optional<TextError> ParseRatioImpl(absl::string_view text, bool as_percent, double* out) {
  const std::string shown = absl::StrCat("`", text, "`");
  const bool has_percent = absl::EndsWith(text, "%");
  absl::string_view number = text;
  if (has_percent) number.remove_suffix(1);
  double value = 0;
  if (number.empty() || !absl::SimpleAtod(number, &value) || !std::isfinite(value)) {
    return TextError{absl::StrCat(shown, " is not a ", as_percent ? "percentage" : "ratio"),
                     as_percent ? "write a number from 0 to 100, e.g. `10` or `10%`"
                                : "write a percentage like `10%` or a fraction like `0.1`"};
  }
  if (as_percent) {
    if (value < 0 || value > 100) {
      return TextError{absl::StrCat(shown, " is outside 0..100"),
                       "write a percentage from 0 to 100, e.g. `10` or `10%`"};
    }
    *out = value;
    return std::nullopt;
  }
  if (has_percent) value /= 100;
  if (value < 0 || value > 1) {
    return TextError{absl::StrCat(shown, value < 0 ? " is negative" : (has_percent ? " is more than 100%" : " is more than 1"),
                                  "; a ratio is between 0% and 100%"),
                     has_percent ? "write a percentage from 0% to 100%, e.g. `10%`"
                                 : "write a fraction from 0 to 1 (e.g. `0.1`) or a percentage (e.g. `10%`)"};
  }
  *out = value;
  return std::nullopt;
}

std::optional<TextError> ParseSizeImpl(absl::string_view text, uint64_t* out) {
  const std::string shown = absl::StrCat("`", text, "`");
  const std::string hint =
      "write a number of bytes, optionally with a unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. `4096`, "
      "`512KiB`, `1MiB`";
  if (!text.empty() && text[0] == '-') {
    return TextError{absl::StrCat(shown, " is negative; a size cannot be negative"), hint};
  }
  const size_t end = ScanNumber(text, 0);
  double value = 0;
  if (end == 0 || !absl::SimpleAtod(text.substr(0, end), &value)) {
    return TextError{absl::StrCat(shown, " is not a size"), hint};
  }
  const std::string unit = absl::AsciiStrToLower(text.substr(end));
  static const std::map<std::string, double> kUnits = {
      {"", 1},           {"b", 1},
      {"k", 1e3},        {"kb", 1e3},       {"ki", 1024.0},        {"kib", 1024.0},
      {"m", 1e6},        {"mb", 1e6},       {"mi", 1048576.0},     {"mib", 1048576.0},
      {"g", 1e9},        {"gb", 1e9},       {"gi", 1073741824.0},  {"gib", 1073741824.0},
      {"t", 1e12},       {"tb", 1e12},      {"ti", 1099511627776.0}, {"tib", 1099511627776.0}};
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) return TextError{absl::StrCat(shown, " is not a size"), hint};
  const double bytes = std::floor(value * it->second);
  if (bytes >= 18446744073709551615.0) {
    return TextError{absl::StrCat(shown, " is too large a size"), hint};
  }
  *out = static_cast<uint64_t>(bytes);
  return std::nullopt;
}

void ToProtoDuration(absl::Duration d, pb::Duration* out) {
  const int64_t seconds = absl::ToInt64Seconds(d);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d - absl::Seconds(seconds))));
}

absl::Duration FromProtoDuration(const pb::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// "STYLE_REQUEST" -> "request" for an enum named Style.
std::string EnumPrefix(const pb::EnumDescriptor* e) {
  std::string prefix;
  const std::string& name = e->name();
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (i > 0 && absl::ascii_isupper(static_cast<unsigned char>(c))) prefix.push_back('_');
    prefix.push_back(absl::ascii_toupper(static_cast<unsigned char>(c)));
  }
  prefix.push_back('_');
  return prefix;
}

std::vector<std::string> EnumShortNames(const pb::EnumDescriptor* e) {
  const std::string prefix = EnumPrefix(e);
  std::vector<std::string> names;
  for (int i = 0; i < e->value_count(); ++i) {
    const pb::EnumValueDescriptor* v = e->value(i);
    if (v->number() == 0 && absl::EndsWith(v->name(), "_UNSPECIFIED")) continue;
    std::string n = v->name();
    if (absl::StartsWith(n, prefix)) n = n.substr(prefix.size());
    names.push_back(absl::AsciiStrToLower(n));
  }
  return names;
}

const pb::EnumValueDescriptor* FindEnumValue(const pb::EnumDescriptor* e, absl::string_view text) {
  const std::string upper = absl::AsciiStrToUpper(text);
  if (const auto* v = e->FindValueByName(upper)) return v;
  return e->FindValueByName(EnumPrefix(e) + upper);
}

std::vector<std::string> FieldNames(const pb::Descriptor* d) {
  std::vector<std::string> names;
  for (int i = 0; i < d->field_count(); ++i) names.push_back(d->field(i)->name());
  return names;
}

std::string StyleShort(v1::Style style) {
  switch (style) {
    case v1::STYLE_REQUEST:
      return "request";
    case v1::STYLE_COMMAND:
      return "command";
    case v1::STYLE_EVENT:
      return "event";
    default:
      return "unspecified";
  }
}

template <typename Map>
std::vector<std::string> Keys(const Map& map) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : map) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  return keys;
}

// ---------------------------------------------------------------------------
// Paths and their locations

std::string Join(const std::string& parent, absl::string_view field) {
  return parent.empty() ? std::string(field) : absl::StrCat(parent, ".", field);
}

std::string KeyPath(const std::string& parent, absl::string_view key) {
  return absl::StrCat(parent, "[\"", key, "\"]");
}

std::string IndexPath(const std::string& parent, size_t index) {
  return absl::StrCat(parent, "[", index, "]");
}

// `policies["p"].retry` -> `policies.p.retry`, the way the YAML nests it.
std::string YamlPath(const std::string& path) {
  std::string out;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path.compare(i, 2, "[\"") == 0) {
      out.push_back('.');
      ++i;
    } else if (path.compare(i, 2, "\"]") == 0) {
      ++i;
    } else {
      out.push_back(path[i]);
    }
  }
  return out;
}

std::string ParentPath(const std::string& path) {
  if (path.empty()) return path;
  if (path.back() == ']') {
    const size_t open = path.size() >= 2 && path[path.size() - 2] == '"' ? path.rfind("[\"") : path.rfind('[');
    return open == std::string::npos ? std::string() : path.substr(0, open);
  }
  const size_t dot = path.rfind('.');
  return dot == std::string::npos ? std::string() : path.substr(0, dot);
}

// Where each path was written. Empty for a Config built in code.
class Locations {
 public:
  explicit Locations(std::string filename) : filename_(std::move(filename)) {}

  const std::string& filename() const { return filename_; }
  bool Has(const std::string& path) const { return marks_.count(path) > 0; }
  const YAML::Mark* Find(const std::string& path) const {
    auto it = marks_.find(path);
    return it == marks_.end() ? nullptr : &it->second;
  }
  // Returns the earlier mark if `path` was already recorded.
  std::optional<YAML::Mark> Record(const std::string& path, const YAML::Mark& mark) {
    auto [it, inserted] = marks_.emplace(path, mark);
    if (!inserted) return it->second;
    return std::nullopt;
  }

  std::string At(const YAML::Mark& mark, bool column = true) const {
    if (mark.is_null()) return filename_;
    if (!column) return absl::StrCat(filename_, ":", mark.line + 1);
    return absl::StrCat(filename_, ":", mark.line + 1, ":", mark.column + 1);
  }

  // "file:line:col" of `path` or of its nearest recorded ancestor; the path
  // itself when nothing was recorded (a Config built in code).
  std::string Where(const std::string& path, bool column = true) const {
    if (marks_.empty()) return path.empty() ? "<config>" : path;
    for (std::string p = path;; p = ParentPath(p)) {
      if (const YAML::Mark* m = Find(p)) return At(*m, column);
      if (p.empty()) break;
    }
    return filename_;
  }

 private:
  std::string filename_;
  std::map<std::string, YAML::Mark> marks_;
};

// The transport types a config may name, sorted. The default registry holds
// the built-in transports only once switchboard::transports is linked and
// registered; a config loaded before that may still name them (the node
// reports a type this build lacks when it creates the transport).
std::vector<std::string> KnownTypes(const ConfigOptions& options) {
  const TransportRegistry& registry =
      options.registry != nullptr ? *options.registry : TransportRegistry::Default();
  std::set<std::string> types;
  for (std::string& t : registry.Types()) types.insert(std::move(t));
  if (options.registry == nullptr) types.insert(std::begin(kBuiltinTypes), std::end(kBuiltinTypes));
  types.insert(options.extra_types.begin(), options.extra_types.end());
  return {types.begin(), types.end()};
}

absl::Status Invalid(absl::string_view where, absl::string_view what, absl::string_view hint) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what, ". hint: ", hint));
}

// ---------------------------------------------------------------------------
// YAML -> Config

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a single value";
    default:
      return "nothing";
  }
}

class Parser {
 public:
  Parser(const ConfigOptions& options, Locations* locations)
      : options_(options), locations_(*locations) {
    known_types_ = KnownTypes(options);
  }

  absl::Status ParseRoot(const YAML::Node& root, v1::Config* config) {
    if (!root.IsDefined() || root.IsNull()) {
      return Invalid(absl::StrCat(locations_.filename(), ":1:1"), "the configuration is empty",
                     "write a map with the sections `transports`, `policies`, `operations` (and "
                     "optionally `node`, `telemetry`)");
    }
    if (!root.IsMap()) {
      return Error(root.Mark(),
                   absl::StrCat("the configuration must be a map of sections, got ", Describe(root)),
                   "start with a section name such as `transports:` at the beginning of a line");
    }
    return ParseMessage(root, config, "", "configuration");
  }

 private:
  absl::Status Error(const YAML::Mark& mark, absl::string_view what, absl::string_view hint) const {
    return Invalid(locations_.At(mark), what, hint);
  }

  // Where `node` was written; an empty value (`key:` and nothing) is
  // reported at its key, since YAML marks it where the next token starts.
  YAML::Mark MarkOf(const YAML::Node& node) const {
    if (node.IsDefined() && !node.IsNull() && !node.Mark().is_null()) return node.Mark();
    return last_key_mark_;
  }

  absl::Status Record(const std::string& path, const YAML::Mark& mark, absl::string_view label) {
    if (auto earlier = locations_.Record(path, mark)) {
      return Error(mark, absl::StrCat("`", label, "` is set twice (first at line ", earlier->line + 1, ")"),
                   "keep only one of them");
    }
    return absl::OkStatus();
  }

  // The text of a scalar, "${NAME}" expanded. `*from_env` tells whether the
  // environment supplied part of it (such text is never shown in errors).
  absl::StatusOr<std::string> Text(const YAML::Node& node, absl::string_view label, bool* from_env) {
    *from_env = false;
    const std::string& raw = node.Scalar();
    if (!options_.expand_env || raw.find('$') == std::string::npos) return raw;
    std::string out;
    size_t i = 0;
    while (i < raw.size()) {
      if (raw.compare(i, 3, "$${") == 0) {
        out += "${";
        i += 3;
        continue;
      }
      if (raw.compare(i, 2, "${") != 0) {
        out.push_back(raw[i++]);
        continue;
      }
      const size_t close = raw.find('}', i + 2);
      if (close == std::string::npos) {
        return Error(node.Mark(), absl::StrCat("unterminated `${` in the value of `", label, "`"),
                     "write `${NAME}` to read the environment variable NAME, or `$${` for a literal `${`");
      }
      std::string name = raw.substr(i + 2, close - i - 2);
      std::optional<std::string> fallback;
      if (const size_t dash = name.find(":-"); dash != std::string::npos) {
        fallback = name.substr(dash + 2);
        name = name.substr(0, dash);
      }
      const bool valid_name =
          !name.empty() && !absl::ascii_isdigit(static_cast<unsigned char>(name[0])) &&
          std::all_of(name.begin(), name.end(),
                      [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; });
      if (!valid_name) {
        return Error(node.Mark(), absl::StrCat("`${", name, "}` in the value of `", label,
                                               "` is not a valid environment variable name"),
                     "use letters, digits and `_`, e.g. `${DB_PASSWORD}`");
      }
      const char* value = std::getenv(name.c_str());
      if (value == nullptr && !fallback) {
        return Error(node.Mark(),
                     absl::StrCat("environment variable `", name, "` (for `", label, "`) is not set"),
                     absl::StrCat("set ", name, " in the environment of the process, or give a default: `${",
                                  name, ":-default}`"));
      }
      out += value != nullptr ? std::string(value) : *fallback;
      *from_env = true;
      i = close + 1;
    }
    return out;
  }

  // How a value is shown in an error: secrets and environment values never are.
  static std::string Shown(absl::string_view text, absl::string_view label, bool from_env) {
    if (from_env) return absl::StrCat("the value of `", label, "` (from the environment)");
    if (IsSecretName(label)) return absl::StrCat("the value of `", label, "`");
    return absl::StrCat("`", text, "`");
  }

  absl::Status TextFailure(const YAML::Node& node, absl::string_view label, absl::string_view text, bool from_env,
                           const TextError& e) {
    if (!from_env && !IsSecretName(label)) {
      return Error(node.Mark(), absl::StrCat("`", label, "`: ", e.what), e.hint);
    }
    // The message starts with the backticked text: name the key instead.
    std::string what = e.what;
    const std::string shown = absl::StrCat("`", text, "`");
    if (absl::StartsWith(what, shown)) what = what.substr(shown.size());
    return Error(node.Mark(), absl::StrCat("`", label, "`: ", Shown(text, label, from_env), what),
                 e.safe_hint.empty() ? e.hint : e.safe_hint);
  }

  // What a field expects, and an example value, for wrong-type errors.
  static std::pair<std::string, std::string> Expectation(const pb::FieldDescriptor* f) {
    if (f->is_map()) return {"a map", "{ name: ... }"};
    if (f->is_repeated()) return {"a list", "[a, b]"};
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      const std::string& full = f->message_type()->full_name();
      if (full == kDurationName) return {"a duration", "250ms"};
      if (full == v1::Backoff::descriptor()->full_name()) return {"a backoff range or map", "20ms..200ms"};
      const std::vector<std::string> keys = FieldNames(f->message_type());
      return {absl::StrCat("a map (keys: ", absl::StrJoin(keys, ", "), ")"),
              absl::StrCat("{ ", keys.empty() ? "..." : keys[0], ": ... }")};
    }
    if (IsRatioField(f)) return {"a ratio", "10%"};
    if (IsPercentField(f)) return {"a percentage", "10"};
    if (IsSizeField(f)) return {"a size", "1MiB"};
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_BOOL:
        return {"true or false", "true"};
      case pb::FieldDescriptor::CPPTYPE_INT32:
      case pb::FieldDescriptor::CPPTYPE_INT64:
      case pb::FieldDescriptor::CPPTYPE_UINT32:
      case pb::FieldDescriptor::CPPTYPE_UINT64:
        return {"a whole number", "3"};
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      case pb::FieldDescriptor::CPPTYPE_FLOAT:
        return {"a number", "1.5"};
      case pb::FieldDescriptor::CPPTYPE_ENUM: {
        const auto names = EnumShortNames(f->enum_type());
        return {absl::StrCat("one of ", absl::StrJoin(names, ", ")), names.empty() ? "..." : names[0]};
      }
      default:
        return {"a single value", "..."};
    }
  }

  // `element`: the node is one element of the list field `f`.
  absl::Status WrongType(const YAML::Node& node, absl::string_view label, const pb::FieldDescriptor* f,
                         bool element) {
    if (element) {
      // Scalar lists only reach here: message elements are checked as maps.
      return Error(node.Mark(), absl::StrCat("`", label, "` expects a single value, got ", Describe(node)),
                   absl::StrCat("write the list as `", f->name(), ": [a, b]`"));
    }
    const auto [expected, example] = Expectation(f);
    return Error(node.Mark(), absl::StrCat("`", label, "` expects ", expected, ", got ", Describe(node)),
                 absl::StrCat("write `", label, ": ", example, "`"));
  }

  absl::Status ParseMessage(const YAML::Node& node, pb::Message* msg, const std::string& path,
                            absl::string_view label) {
    const pb::Descriptor* d = msg->GetDescriptor();
    if (d->full_name() == kDurationName) {
      return ParseDurationNode(node, static_cast<pb::Duration*>(msg), label);
    }
    if (d->full_name() == kStructName) {
      if (node.IsNull()) return absl::OkStatus();
      if (!node.IsMap()) {
        return Error(node.Mark(), absl::StrCat("`", label, "` expects a map, got ", Describe(node)),
                     absl::StrCat("write `", label, ": { key: value }`"));
      }
      return ParseStruct(node, static_cast<pb::Struct*>(msg), path);
    }
    if (d == v1::Backoff::descriptor() && node.IsScalar()) {
      return ParseBackoffRange(node, static_cast<v1::Backoff*>(msg), label);
    }
    if (d == v1::TransportConfig::descriptor()) {
      return ParseTransport(node, static_cast<v1::TransportConfig*>(msg), path, label);
    }
    if (node.IsNull()) return absl::OkStatus();
    if (!node.IsMap()) {
      const std::vector<std::string> keys = FieldNames(d);
      std::string example = absl::StrCat(label, ": { ", keys.empty() ? "..." : keys[0], ": ... }");
      if (d == v1::Backoff::descriptor()) example = absl::StrCat(label, ": 20ms..200ms");
      return Error(node.Mark(),
                   absl::StrCat("`", label, "` expects a map (keys: ", absl::StrJoin(keys, ", "), "), got ",
                                Describe(node)),
                   absl::StrCat("write `", example, "`"));
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: it->first is a temporary
      const YAML::Node value = it->second;
      if (!key.IsScalar()) {
        return Error(key.Mark(), absl::StrCat("a key in `", label, "` is ", Describe(key), ", not a name"),
                     "write keys as plain names");
      }
      const std::string& name = key.Scalar();
      const pb::FieldDescriptor* f = d->FindFieldByName(name);
      if (f == nullptr) {
        const std::string where = path.empty() ? "at the top level" : absl::StrCat("in `", YamlPath(path), "`");
        return Error(key.Mark(), absl::StrCat("unknown key `", name, "` ", where),
                     SuggestHint(name, FieldNames(d), "keys"));
      }
      const std::string field_path = Join(path, name);
      if (auto st = Record(field_path, key.Mark(), name); !st.ok()) return st;
      last_key_mark_ = key.Mark();
      if (auto st = ParseField(value, msg, f, field_path, name); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

  // One key's value: a map field, a list field or a singular field.
  absl::Status ParseField(const YAML::Node& value, pb::Message* msg, const pb::FieldDescriptor* f,
                          const std::string& path, absl::string_view label) {
    const pb::Reflection* r = msg->GetReflection();
    if (f->is_map()) {
      if (value.IsNull()) return absl::OkStatus();
      if (!value.IsMap()) return WrongType(value, label, f, false);
      const pb::FieldDescriptor* key_field = f->message_type()->map_key();
      const pb::FieldDescriptor* value_field = f->message_type()->map_value();
      for (auto it = value.begin(); it != value.end(); ++it) {
        const YAML::Node key = it->first;  // a copy: it->first is a temporary
        if (!key.IsScalar()) {
          return Error(key.Mark(), absl::StrCat("a key in `", label, "` is ", Describe(key), ", not a name"),
                       "write keys as plain names");
        }
        const std::string& name = key.Scalar();
        if (name.empty()) {
          return Error(key.Mark(), absl::StrCat("an entry of `", label, "` has an empty name"),
                       "give it a name");
        }
        const std::string entry_path = KeyPath(path, name);
        if (auto st = Record(entry_path, key.Mark(), name); !st.ok()) return st;
        last_key_mark_ = key.Mark();
        pb::Message* entry = r->AddMessage(msg, f);
        entry->GetReflection()->SetString(entry, key_field, name);
        if (auto st = ParseOne(it->second, entry, value_field, entry_path, name, false); !st.ok()) return st;
      }
      return absl::OkStatus();
    }
    if (f->is_repeated()) {
      if (value.IsNull()) return absl::OkStatus();
      if (!value.IsSequence()) return WrongType(value, label, f, false);
      for (size_t i = 0; i < value.size(); ++i) {
        const YAML::Node element = value[i];
        const std::string element_path = IndexPath(path, i);
        (void)locations_.Record(element_path, element.Mark());
        if (auto st = ParseOne(element, msg, f, element_path, absl::StrCat(label, "[", i, "]"), true);
            !st.ok()) {
          return st;
        }
      }
      return absl::OkStatus();
    }
    return ParseOne(value, msg, f, path, label, false);
  }

  // One value of `f`: set (singular) or appended (`add`, a list element).
  absl::Status ParseOne(const YAML::Node& node, pb::Message* msg, const pb::FieldDescriptor* f,
                        const std::string& path, absl::string_view label, bool add) {
    const pb::Reflection* r = msg->GetReflection();
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      pb::Message* sub = add ? r->AddMessage(msg, f) : r->MutableMessage(msg, f);
      return ParseMessage(node, sub, path, label);
    }
    if (!node.IsScalar()) {
      if (node.IsNull() || !node.IsDefined()) {
        if (add) {
          return Error(MarkOf(node), absl::StrCat("`", label, "` is empty"), "remove the empty list element");
        }
        return Error(MarkOf(node), absl::StrCat("`", label, "` has no value"),
                     absl::StrCat("write `", label, ": ", Expectation(f).second, "` or remove the key"));
      }
      return WrongType(node, label, f, add);
    }
    bool from_env = false;
    auto text_or = Text(node, label, &from_env);
    if (!text_or.ok()) return text_or.status();
    const std::string& text = *text_or;
    (void)locations_.Record(path, node.Mark());

    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_STRING: {
        add ? r->AddString(msg, f, text) : r->SetString(msg, f, text);
        return absl::OkStatus();
      }
      case pb::FieldDescriptor::CPPTYPE_BOOL: {
        const std::string lower = absl::AsciiStrToLower(text);
        bool value;
        if (lower == "true" || lower == "yes" || lower == "on") {
          value = true;
        } else if (lower == "false" || lower == "no" || lower == "off") {
          value = false;
        } else {
          return Error(node.Mark(), absl::StrCat("`", label, "`: ", Shown(text, label, from_env), " is not true or false"),
                       absl::StrCat("write `", label, ": true` or `", label, ": false`"));
        }
        add ? r->AddBool(msg, f, value) : r->SetBool(msg, f, value);
        return absl::OkStatus();
      }
      case pb::FieldDescriptor::CPPTYPE_ENUM: {
        const pb::EnumValueDescriptor* v = FindEnumValue(f->enum_type(), text);
        if (v == nullptr) {
          const auto names = EnumShortNames(f->enum_type());
          return Error(node.Mark(),
                       absl::StrCat("`", label, "`: unknown value ", Shown(text, label, from_env)),
                       absl::StrCat("write one of ", absl::StrJoin(names, ", ")));
        }
        add ? r->AddEnum(msg, f, v) : r->SetEnum(msg, f, v);
        return absl::OkStatus();
      }
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      case pb::FieldDescriptor::CPPTYPE_FLOAT: {
        double value = 0;
        if (IsRatioField(f) || IsPercentField(f)) {
          if (auto e = ParseRatioImpl(text, IsPercentField(f), &value)) {
            return TextFailure(node, label, text, from_env, *e);
          }
        } else if (!absl::SimpleAtod(text, &value) || !std::isfinite(value)) {
          return Error(node.Mark(), absl::StrCat("`", label, "`: ", Shown(text, label, from_env), " is not a number"),
                       absl::StrCat("write a number, e.g. `", label, ": 1.5`"));
        }
        if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_FLOAT) {
          add ? r->AddFloat(msg, f, static_cast<float>(value)) : r->SetFloat(msg, f, static_cast<float>(value));
        } else {
          add ? r->AddDouble(msg, f, value) : r->SetDouble(msg, f, value);
        }
        return absl::OkStatus();
      }
      case pb::FieldDescriptor::CPPTYPE_UINT64:
      case pb::FieldDescriptor::CPPTYPE_UINT32: {
        uint64_t value = 0;
        if (IsSizeField(f)) {
          if (auto e = ParseSizeImpl(text, &value)) return TextFailure(node, label, text, from_env, *e);
        } else if (!absl::SimpleAtoi(text, &value) ||
                   (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT32 &&
                    value > std::numeric_limits<uint32_t>::max())) {
          return NotWhole(node, label, text, from_env, true);
        }
        if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT32) {
          add ? r->AddUInt32(msg, f, static_cast<uint32_t>(value))
              : r->SetUInt32(msg, f, static_cast<uint32_t>(value));
        } else {
          add ? r->AddUInt64(msg, f, value) : r->SetUInt64(msg, f, value);
        }
        return absl::OkStatus();
      }
      case pb::FieldDescriptor::CPPTYPE_INT32: {
        int32_t value = 0;
        if (!absl::SimpleAtoi(text, &value)) return NotWhole(node, label, text, from_env, false);
        add ? r->AddInt32(msg, f, value) : r->SetInt32(msg, f, value);
        return absl::OkStatus();
      }
      case pb::FieldDescriptor::CPPTYPE_INT64: {
        int64_t value = 0;
        if (!absl::SimpleAtoi(text, &value)) return NotWhole(node, label, text, from_env, false);
        add ? r->AddInt64(msg, f, value) : r->SetInt64(msg, f, value);
        return absl::OkStatus();
      }
      default:
        return Error(node.Mark(), absl::StrCat("`", label, "` has a type the loader does not support"),
                     "report this as a bug");
    }
  }

  absl::Status NotWhole(const YAML::Node& node, absl::string_view label, absl::string_view text, bool from_env,
                        bool is_unsigned) {
    return Error(node.Mark(),
                 absl::StrCat("`", label, "`: ", Shown(text, label, from_env), " is not a whole number",
                              is_unsigned ? " of 0 or more" : "", " in range"),
                 absl::StrCat("write a whole number, e.g. `", label, ": 3`"));
  }

  absl::Status ParseDurationNode(const YAML::Node& node, pb::Duration* out, absl::string_view label) {
    if (!node.IsScalar()) {
      if (node.IsNull()) {
        return Error(MarkOf(node), absl::StrCat("`", label, "` has no value"),
                     absl::StrCat("write `", label, ": 250ms` or remove the key"));
      }
      return Error(node.Mark(), absl::StrCat("`", label, "` expects a duration, got ", Describe(node)),
                   absl::StrCat("write `", label, ": 250ms`"));
    }
    bool from_env = false;
    auto text = Text(node, label, &from_env);
    if (!text.ok()) return text.status();
    absl::Duration d;
    if (auto e = ParseDurationImpl(*text, &d)) return TextFailure(node, label, *text, from_env, *e);
    ToProtoDuration(d, out);
    return absl::OkStatus();
  }

  // "20ms..200ms" -> {initial: 20ms, max: 200ms}.
  absl::Status ParseBackoffRange(const YAML::Node& node, v1::Backoff* out, absl::string_view label) {
    bool from_env = false;
    auto text = Text(node, label, &from_env);
    if (!text.ok()) return text.status();
    const size_t dots = text->find("..");
    if (dots == std::string::npos) {
      return Error(node.Mark(),
                   absl::StrCat("`", label, "`: ", Shown(*text, label, from_env),
                                " is not a backoff range"),
                   absl::StrCat("write `", label, ": 20ms..200ms` (initial..max) or `", label,
                                ": { initial: 20ms, max: 200ms, multiplier: 2 }`"));
    }
    absl::Duration initial, max;
    if (auto e = ParseDurationImpl(text->substr(0, dots), &initial)) {
      return TextFailure(node, absl::StrCat(label, " (initial)"), text->substr(0, dots), from_env, *e);
    }
    if (auto e = ParseDurationImpl(text->substr(dots + 2), &max)) {
      return TextFailure(node, absl::StrCat(label, " (max)"), text->substr(dots + 2), from_env, *e);
    }
    if (initial > max) {
      return Error(node.Mark(),
                   absl::StrCat("`", label, "`: the initial delay ", absl::FormatDuration(initial),
                                " is longer than the max ", absl::FormatDuration(max)),
                   "write the shorter delay first, e.g. `20ms..200ms`");
    }
    ToProtoDuration(initial, out->mutable_initial());
    ToProtoDuration(max, out->mutable_max());
    return absl::OkStatus();
  }

  absl::Status ParseTransport(const YAML::Node& node, v1::TransportConfig* out, const std::string& path,
                              absl::string_view label) {
    const std::string types_hint = absl::StrCat("registered transport types: ", Backticked(known_types_));
    if (node.IsNull() || (node.IsMap() && !node["type"].IsDefined())) {
      return Error(MarkOf(node), absl::StrCat("transport `", label, "` has no `type`"),
                   absl::StrCat("add `type: <type>`; ", types_hint));
    }
    if (!node.IsMap()) {
      return Error(node.Mark(), absl::StrCat("transport `", label, "` expects a map, got ", Describe(node)),
                   absl::StrCat("write `", label, ": { type: inproc }`"));
    }
    const pb::Descriptor* d = v1::TransportConfig::descriptor();
    // `type` first: it decides where the other keys go.
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == "type") {
        if (auto st = Record(Join(path, "type"), it->first.Mark(), "type"); !st.ok()) return st;
        last_key_mark_ = it->first.Mark();
        if (auto st = ParseOne(it->second, out, d->FindFieldByName("type"), Join(path, "type"), "type", false);
            !st.ok()) {
          return st;
        }
        if (std::find(known_types_.begin(), known_types_.end(), out->type()) == known_types_.end()) {
          std::string hint = types_hint;
          if (auto closest = Closest(out->type(), known_types_)) {
            hint = absl::StrCat("did you mean `", *closest, "`? ", types_hint);
          }
          return Error(it->second.Mark(),
                       absl::StrCat("transport `", label, "`: unknown transport type `", out->type(), "`"), hint);
        }
      }
    }
    const std::string& type = out->type();
    const pb::FieldDescriptor* options_field = IsBuiltinType(type) ? d->FindFieldByName(type) : nullptr;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: it->first is a temporary
      if (!key.IsScalar()) {
        return Error(key.Mark(), absl::StrCat("a key in transport `", label, "` is ", Describe(key)),
                     "write keys as plain names");
      }
      const std::string& name = key.Scalar();
      if (name == "type") continue;
      last_key_mark_ = key.Mark();
      if (const pb::FieldDescriptor* f = d->FindFieldByName(name)) {
        // The sub-message written explicitly: `nats: { url: ... }`.
        if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && f != options_field) {
          if (name == "extra") {
            if (options_field != nullptr) {
              return Error(key.Mark(),
                           absl::StrCat("`extra` is for third-party transport types; transport `", label,
                                        "` has the built-in type `", type, "`"),
                           absl::StrCat("write its options next to `type:`; valid keys: ",
                                        Backticked(FieldNames(options_field->message_type()))));
            }
          } else {
            return Error(key.Mark(),
                         absl::StrCat("`", name, "` options on transport `", label, "` of type `", type, "`"),
                         absl::StrCat("set `type: ", name, "`, or write the `", type, "` options next to `type:`"));
          }
        }
        const std::string field_path = Join(path, name);
        if (auto st = Record(field_path, key.Mark(), name); !st.ok()) return st;
        if (auto st = ParseField(it->second, out, f, field_path, name); !st.ok()) return st;
        continue;
      }
      if (options_field != nullptr) {
        // A flat option of a built-in type: `url:` next to `type: nats`.
        pb::Message* options = out->GetReflection()->MutableMessage(out, options_field);
        const pb::FieldDescriptor* f = options->GetDescriptor()->FindFieldByName(name);
        if (f == nullptr) {
          std::vector<std::string> valid = FieldNames(options->GetDescriptor());
          valid.insert(valid.begin(), "type");
          return Error(key.Mark(),
                       absl::StrCat("unknown key `", name, "` in transport `", label, "` (type `", type, "`)"),
                       SuggestHint(name, valid, absl::StrCat("keys for type `", type, "`")));
        }
        const std::string field_path = Join(Join(path, type), name);
        if (auto st = Record(field_path, key.Mark(), name); !st.ok()) return st;
        if (auto st = ParseField(it->second, options, f, field_path, name); !st.ok()) return st;
        continue;
      }
      // A third-party type: its options pass through in `extra`.
      const std::string field_path = Join(Join(path, "extra"), name);
      if (auto st = Record(field_path, key.Mark(), name); !st.ok()) return st;
      pb::Value& value = (*out->mutable_extra()->mutable_fields())[name];
      if (auto st = ToValue(it->second, &value, field_path, name); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

  absl::Status ParseStruct(const YAML::Node& node, pb::Struct* out, const std::string& path) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar()) {
        return Error(it->first.Mark(), absl::StrCat("a key is ", Describe(it->first), ", not a name"),
                     "write keys as plain names");
      }
      const std::string& name = it->first.Scalar();
      const std::string field_path = Join(path, name);
      if (auto st = Record(field_path, it->first.Mark(), name); !st.ok()) return st;
      if (auto st = ToValue(it->second, &(*out->mutable_fields())[name], field_path, name); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

  absl::Status ToValue(const YAML::Node& node, pb::Value* out, const std::string& path, absl::string_view label) {
    switch (node.Type()) {
      case YAML::NodeType::Map:
        return ParseStruct(node, out->mutable_struct_value(), path);
      case YAML::NodeType::Sequence: {
        pb::ListValue* list = out->mutable_list_value();
        for (size_t i = 0; i < node.size(); ++i) {
          if (auto st = ToValue(node[i], list->add_values(), IndexPath(path, i), absl::StrCat(label, "[", i, "]"));
              !st.ok()) {
            return st;
          }
        }
        return absl::OkStatus();
      }
      case YAML::NodeType::Scalar: {
        bool from_env = false;
        auto text = Text(node, label, &from_env);
        if (!text.ok()) return text.status();
        // Quoted scalars (tag "!") and environment values stay text.
        if (node.Tag() != "!" && !from_env) {
          const std::string lower = absl::AsciiStrToLower(*text);
          double number = 0;
          if (lower == "true" || lower == "false") {
            out->set_bool_value(lower == "true");
            return absl::OkStatus();
          }
          if (lower == "null" || lower == "~") {
            out->set_null_value(pb::NULL_VALUE);
            return absl::OkStatus();
          }
          if (absl::SimpleAtod(*text, &number) && std::isfinite(number)) {
            out->set_number_value(number);
            return absl::OkStatus();
          }
        }
        out->set_string_value(*text);
        return absl::OkStatus();
      }
      default:
        out->set_null_value(pb::NULL_VALUE);
        return absl::OkStatus();
    }
  }

  const ConfigOptions& options_;
  Locations& locations_;
  std::vector<std::string> known_types_;
  // The key whose value is being parsed (see MarkOf).
  YAML::Mark last_key_mark_;
};

// ---------------------------------------------------------------------------
// Validation of a typed Config

class Validator {
 public:
  Validator(const v1::Config& config, const ConfigOptions& options, const Locations& locations,
            std::vector<ConfigWarning>* warnings)
      : config_(config), locations_(locations), warnings_(warnings) {
    known_types_ = KnownTypes(options);
  }

  absl::Status Run() {
    if (auto st = CheckRanges(config_, ""); !st.ok()) return st;
    if (auto st = CheckTransports(); !st.ok()) return st;
    if (auto st = CheckPolicies(); !st.ok()) return st;
    if (auto st = CheckNode(); !st.ok()) return st;
    if (auto st = CheckOperations(); !st.ok()) return st;
    return CheckTelemetry();
  }

 private:
  absl::Status Error(const std::string& path, absl::string_view what, absl::string_view hint) const {
    return Invalid(locations_.Where(path), what, hint);
  }

  void Warn(const std::string& path, std::string message, absl::string_view hint) {
    if (warnings_ == nullptr) return;
    warnings_->push_back(ConfigWarning{locations_.Where(path, /*column=*/false),
                                       absl::StrCat(std::move(message), ". hint: ", hint)});
  }

  // The names of a map section in file order (by name for a Config built in
  // code), so that the first error reported is the first in the file.
  template <typename Map>
  std::vector<std::string> InFileOrder(const Map& map, const std::string& section) const {
    std::vector<std::string> names = Keys(map);
    std::stable_sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) {
      const YAML::Mark* ma = locations_.Find(KeyPath(section, a));
      const YAML::Mark* mb = locations_.Find(KeyPath(section, b));
      const int pa = ma != nullptr ? ma->pos : -1;
      const int pb = mb != nullptr ? mb->pos : -1;
      return pa < pb;
    });
    return names;
  }

  // Set in the YAML (proto3 scalars have no presence; a written 0 counts).
  bool Written(const std::string& path) const { return locations_.Has(path); }

  // Ranges every field of its kind obeys: no negative durations or counts,
  // ratios within 0..1, percentages within 0..100.
  absl::Status CheckRanges(const pb::Message& msg, const std::string& path) {
    const pb::Descriptor* d = msg.GetDescriptor();
    if (d->full_name() == kStructName) return absl::OkStatus();
    if (d->full_name() == kDurationName) {
      const auto& duration = static_cast<const pb::Duration&>(msg);
      if (duration.seconds() < 0 || duration.nanos() < 0) {
        return Error(path, absl::StrCat("`", path, "` is negative (", absl::FormatDuration(FromProtoDuration(duration)), ")"),
                     "durations cannot be negative; write a positive duration such as `1s`");
      }
      return absl::OkStatus();
    }
    const pb::Reflection* r = msg.GetReflection();
    std::vector<const pb::FieldDescriptor*> fields;
    r->ListFields(msg, &fields);
    for (const pb::FieldDescriptor* f : fields) {
      const std::string field_path = Join(path, f->name());
      if (f->is_map()) {
        const pb::FieldDescriptor* key_field = f->message_type()->map_key();
        const pb::FieldDescriptor* value_field = f->message_type()->map_value();
        for (int i = 0; i < r->FieldSize(msg, f); ++i) {
          const pb::Message& entry = r->GetRepeatedMessage(msg, f, i);
          if (value_field->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
          const std::string key = entry.GetReflection()->GetString(entry, key_field);
          const pb::Message& value = entry.GetReflection()->GetMessage(entry, value_field);
          if (auto st = CheckRanges(value, KeyPath(field_path, key)); !st.ok()) return st;
        }
        continue;
      }
      if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        if (f->is_repeated()) {
          for (int i = 0; i < r->FieldSize(msg, f); ++i) {
            if (auto st = CheckRanges(r->GetRepeatedMessage(msg, f, i), IndexPath(field_path, i)); !st.ok()) {
              return st;
            }
          }
        } else if (auto st = CheckRanges(r->GetMessage(msg, f), field_path); !st.ok()) {
          return st;
        }
        continue;
      }
      if (f->is_repeated()) continue;
      if (IsRatioField(f)) {
        const double v = r->GetDouble(msg, f);
        if (!(v >= 0 && v <= 1)) {
          return Error(field_path, absl::StrCat("`", f->name(), "` is ", v, "; a ratio is between 0 and 1 (0%..100%)"),
                       "write a percentage like `10%` or a fraction like `0.1`");
        }
      } else if (IsPercentField(f)) {
        const double v = r->GetDouble(msg, f);
        if (!(v >= 0 && v <= 100)) {
          return Error(field_path, absl::StrCat("`", f->name(), "` is ", v, "; it must be within 0..100"),
                       "write a percentage from 0 to 100, e.g. `10`");
        }
      } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT32 && r->GetInt32(msg, f) < 0) {
        return Error(field_path, absl::StrCat("`", f->name(), "` is ", r->GetInt32(msg, f), "; it cannot be negative"),
                     absl::StrCat("write 0 or more (or remove `", f->name(), "` for the default)"));
      } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT64 && r->GetInt64(msg, f) < 0) {
        return Error(field_path, absl::StrCat("`", f->name(), "` is ", r->GetInt64(msg, f), "; it cannot be negative"),
                     absl::StrCat("write 0 or more (or remove `", f->name(), "` for the default)"));
      } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE && !std::isfinite(r->GetDouble(msg, f))) {
        return Error(field_path, absl::StrCat("`", f->name(), "` is not a finite number"), "write a number");
      }
    }
    return absl::OkStatus();
  }

  std::string DefinedHint(absl::string_view name, const std::vector<std::string>& defined, absl::string_view section) {
    if (defined.empty()) return absl::StrCat("define it under `", section, ":`");
    if (auto closest = Closest(name, defined)) return absl::StrCat("did you mean `", *closest, "`?");
    return absl::StrCat("define it under `", section, ":` or use one of ", Backticked(defined));
  }

  absl::Status CheckTransports() {
    const std::string types_hint = absl::StrCat("registered transport types: ", Backticked(known_types_));
    for (const std::string& name : InFileOrder(config_.transports(), "transports")) {
      const v1::TransportConfig& t = config_.transports().at(name);
      const std::string path = KeyPath("transports", name);
      if (t.type().empty()) {
        return Error(path, absl::StrCat("transport `", name, "` has no `type`"),
                     absl::StrCat("add `type: <type>`; ", types_hint));
      }
      if (std::find(known_types_.begin(), known_types_.end(), t.type()) == known_types_.end()) {
        std::string hint = types_hint;
        if (auto closest = Closest(t.type(), known_types_)) {
          hint = absl::StrCat("did you mean `", *closest, "`? ", types_hint);
        }
        return Error(Join(path, "type"),
                     absl::StrCat("transport `", name, "`: unknown transport type `", t.type(), "`"), hint);
      }
      const pb::Reflection* r = t.GetReflection();
      for (absl::string_view builtin : kBuiltinTypes) {
        const pb::FieldDescriptor* f = t.GetDescriptor()->FindFieldByName(std::string(builtin));
        if (builtin != t.type() && r->HasField(t, f)) {
          return Error(Join(path, builtin),
                       absl::StrCat("`", builtin, "` options on transport `", name, "` of type `", t.type(), "`"),
                       absl::StrCat("set `type: ", builtin, "`, or move the options to the `", t.type(), "` ones"));
        }
      }
      if (IsBuiltinType(t.type()) && t.has_extra()) {
        return Error(Join(path, "extra"),
                     absl::StrCat("`extra` is for third-party transport types; transport `", name,
                                  "` has the built-in type `", t.type(), "`"),
                     absl::StrCat("use the `", t.type(), "` options"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status CheckBackoff(const v1::Backoff& b, const std::string& path) {
    if (b.has_initial() && b.has_max() &&
        FromProtoDuration(b.initial()) > FromProtoDuration(b.max())) {
      return Error(path,
                   absl::StrCat("`", path, "`: the initial delay ", absl::FormatDuration(FromProtoDuration(b.initial())),
                                " is longer than the max ", absl::FormatDuration(FromProtoDuration(b.max()))),
                   "make `initial` the shorter delay, e.g. `20ms..200ms`");
    }
    if ((b.multiplier() != 0 || Written(Join(path, "multiplier"))) && b.multiplier() < 1) {
      return Error(Join(path, "multiplier"),
                   absl::StrCat("`multiplier` is ", b.multiplier(), "; the delay would shrink"),
                   "write a multiplier of 1 or more (default 2)");
    }
    return absl::OkStatus();
  }

  absl::Status CheckPolicies() {
    for (const std::string& name : InFileOrder(config_.policies(), "policies")) {
      const v1::Policy& p = config_.policies().at(name);
      const std::string path = KeyPath("policies", name);
      if (p.has_timeout() && FromProtoDuration(p.timeout()) <= absl::ZeroDuration()) {
        return Error(Join(path, "timeout"), absl::StrCat("policy `", name, "`: `timeout` must be positive"),
                     "write a timeout such as `2s`, or remove `timeout`");
      }
      if (p.has_retry()) {
        const std::string retry = Join(path, "retry");
        const int attempts = p.retry().attempts();
        if (attempts < 0 || (attempts == 0 && Written(Join(retry, "attempts")))) {
          return Error(Join(retry, "attempts"),
                       absl::StrCat("policy `", name, "`: retry `attempts` is ", attempts,
                                    "; it counts the first try too, so it is at least 1"),
                       "write `attempts: 1` for no retry, or more to retry");
        }
        if (auto st = CheckBackoff(p.retry().backoff(), Join(retry, "backoff")); !st.ok()) return st;
      }
      if (auto st = CheckBackoff(p.redelivery(), Join(path, "redelivery")); !st.ok()) return st;
      if (p.idempotency().has_ttl() &&
          FromProtoDuration(p.idempotency().ttl()) == absl::ZeroDuration()) {
        return Error(Join(Join(path, "idempotency"), "ttl"),
                     absl::StrCat("policy `", name, "`: idempotency `ttl` is 0, so no key would be remembered"),
                     "write a positive ttl such as `24h`");
      }
      const std::string& side = p.rate_limit().side();
      if (!side.empty() && side != "caller" && side != "handler" && side != "both") {
        return Error(Join(Join(path, "rate_limit"), "side"),
                     absl::StrCat("policy `", name, "`: rate_limit `side` is `", side, "`"),
                     "write `caller`, `handler` or `both`");
      }
      const std::string& in_progress = p.idempotency().on_in_progress();
      if (!in_progress.empty() && in_progress != "wait" && in_progress != "abort") {
        return Error(Join(Join(path, "idempotency"), "on_in_progress"),
                     absl::StrCat("policy `", name, "`: idempotency `on_in_progress` is `", in_progress, "`"),
                     "write `wait` or `abort`");
      }
    }
    return absl::OkStatus();
  }

  absl::Status CheckNode() {
    const v1::NodeConfig& node = config_.node();
    if (!node.default_transport().empty() && !config_.transports().count(node.default_transport())) {
      return Error("node.default_transport",
                   absl::StrCat("`node.default_transport` names transport `", node.default_transport(),
                                "`, which is not defined"),
                   DefinedHint(node.default_transport(), Keys(config_.transports()), "transports"));
    }
    if (!node.default_policy().empty() && !config_.policies().count(node.default_policy())) {
      return Error("node.default_policy",
                   absl::StrCat("`node.default_policy` names policy `", node.default_policy(),
                                "`, which is not defined"),
                   DefinedHint(node.default_policy(), Keys(config_.policies()), "policies"));
    }
    // A watch longer than a scheduler tick only keeps a CPU busy.
    constexpr absl::Duration kMaxIdleSpin = absl::Milliseconds(10);
    if (node.has_handler_idle_spin() && FromProtoDuration(node.handler_idle_spin()) > kMaxIdleSpin) {
      return Error("node.handler_idle_spin",
                   absl::StrCat("`node.handler_idle_spin` is ",
                                absl::FormatDuration(FromProtoDuration(node.handler_idle_spin())),
                                ", more than 10ms; an idle handler thread would keep a CPU busy"),
                   "write a few tens of microseconds such as `50us`, or `0s` to sleep at once");
    }
    return absl::OkStatus();
  }

  // The style an operation effectively has: the binding's, else the default
  // declared in its .proto (switchboard.v1.operation), else unspecified.
  static const pb::MethodDescriptor* FindMethod(const std::string& operation) {
    const size_t slash = operation.rfind('/');
    if (slash == std::string::npos) return nullptr;
    std::string full = operation;
    full[slash] = '.';
    return pb::DescriptorPool::generated_pool()->FindMethodByName(full);
  }

  // The transport an operation uses, as Node picks it: its own, the node
  // default, the only transport configured, or "" for the implicit inproc one.
  std::string EffectiveTransport(const std::string& named) const {
    if (!named.empty()) return named;
    if (!config_.node().default_transport().empty()) return config_.node().default_transport();
    if (config_.transports().size() == 1) return config_.transports().begin()->first;
    return "";
  }

  // nullopt when durability is unknown (a third-party type).
  std::optional<bool> Durable(const std::string& transport, std::string* description) const {
    if (transport.empty()) {
      *description = "the default inproc transport";
      return false;
    }
    auto it = config_.transports().find(transport);
    if (it == config_.transports().end()) return std::nullopt;
    const v1::TransportConfig& t = it->second;
    *description = absl::StrCat("transport `", transport, "` (", t.type(), ")");
    if (t.type() == "inproc" || t.type() == "grpc") return false;
    if (t.type() == "nats") {
      if (!t.nats().jetstream()) *description = absl::StrCat("transport `", transport, "` (nats without jetstream)");
      return t.nats().jetstream();
    }
    if (t.type() == "amqp") return true;
    return std::nullopt;
  }

  // `rollout`: the binding's rollout is checked, not the binding itself.
  absl::Status CheckReplyType(const std::string& op, const pb::MethodDescriptor* method, v1::Style style,
                              bool reply, const std::string& path, bool rollout) {
    if (method == nullptr) return absl::OkStatus();
    const std::string& reply_type = method->output_type()->full_name();
    if (reply_type == kEmptyName) return absl::OkStatus();
    if (style == v1::STYLE_EVENT || (style == v1::STYLE_COMMAND && !reply)) {
      return Error(path,
                   absl::StrCat("operation `", op, "` returns ", reply_type, ", which its callers wait for, but ",
                                rollout ? "its rollout binds it" : "it is bound", " as ", StyleShort(style),
                                style == v1::STYLE_COMMAND ? " without `reply: true`" : "",
                                ", so the reply would be dropped"),
                   "bind it as request or command with reply: true (or make the method return "
                   "google.protobuf.Empty)");
    }
    return absl::OkStatus();
  }

  absl::Status CheckReplyFlag(const std::string& op, v1::Style style, bool reply, const std::string& path,
                              bool rollout) {
    const std::string subject =
        rollout ? absl::StrCat("the rollout of operation `", op, "`") : absl::StrCat("operation `", op, "`");
    if (!reply) return absl::OkStatus();
    if (style == v1::STYLE_EVENT) {
      return Error(path,
                   absl::StrCat(subject, " is bound as event with `reply: true`; events have no reply"),
                   "remove `reply: true`, or bind it as command with reply: true");
    }
    if (style == v1::STYLE_REQUEST) {
      return Error(path,
                   absl::StrCat(subject,
                                " is bound as request with `reply: true`; `reply` applies to commands (a request "
                                "always replies)"),
                   "remove `reply: true`, or bind it as command with reply: true");
    }
    return absl::OkStatus();
  }

  void WarnDurability(const std::string& op, v1::Style style, const std::string& transport, const std::string& path,
                      bool rollout) {
    if (style != v1::STYLE_COMMAND && style != v1::STYLE_EVENT) return;
    std::string description;
    const std::optional<bool> durable = Durable(transport, &description);
    if (!durable.has_value() || *durable) return;
    const bool command = style == v1::STYLE_COMMAND;
    Warn(path,
         absl::StrCat("operation `", op, "` ", rollout ? "is rolled out" : "is bound", " as ",
                      command ? "command" : "event", " on ",
                      description, ", which is not durable: queued ", command ? "commands" : "events",
                      " survive no restart"),
         "bind it to a durable transport (nats with `jetstream: true`, amqp) if they must outlive a restart");
  }

  absl::Status CheckOperations() {
    const std::vector<std::string> transports = Keys(config_.transports());
    const std::vector<std::string> policies = Keys(config_.policies());
    for (const std::string& op : InFileOrder(config_.operations(), "operations")) {
      const v1::OperationBinding& b = config_.operations().at(op);
      const std::string path = KeyPath("operations", op);
      if (op.empty()) {
        return Error(path, "an operation has an empty name",
                     "name it `pkg.Service/Method`, or the event's message type `pkg.Event`");
      }
      const pb::MethodDescriptor* method = FindMethod(op);
      v1::Style style = b.style();
      if (style == v1::STYLE_UNSPECIFIED && method != nullptr &&
          method->options().HasExtension(v1::operation)) {
        style = method->options().GetExtension(v1::operation).style();
      }
      if (!b.transport().empty() && !config_.transports().count(b.transport())) {
        return Error(Join(path, "transport"),
                     absl::StrCat("operation `", op, "` uses transport `", b.transport(), "`, which is not defined"),
                     DefinedHint(b.transport(), transports, "transports"));
      }
      if (!b.policy().empty() && !config_.policies().count(b.policy())) {
        return Error(Join(path, "policy"),
                     absl::StrCat("operation `", op, "` uses policy `", b.policy(), "`, which is not defined"),
                     DefinedHint(b.policy(), policies, "policies"));
      }
      const std::string style_path = Written(Join(path, "style")) ? Join(path, "style") : path;
      const std::string reply_path = Written(Join(path, "reply")) ? Join(path, "reply") : style_path;
      if (auto st = CheckReplyFlag(op, style, b.reply(), reply_path, false); !st.ok()) return st;
      if (auto st = CheckReplyType(op, method, style, b.reply(), style_path, false); !st.ok()) return st;

      const std::string transport = EffectiveTransport(b.transport());
      if (b.has_rollout()) {
        const v1::Rollout& ro = b.rollout();
        const std::string ro_path = Join(path, "rollout");
        if (ro.style() == v1::STYLE_UNSPECIFIED) {
          return Error(ro_path, absl::StrCat("operation `", op, "`: the rollout has no `style`"),
                       "add `style: request`, `command` or `event` to `rollout`");
        }
        if (!ro.transport().empty() && !config_.transports().count(ro.transport())) {
          return Error(Join(ro_path, "transport"),
                       absl::StrCat("operation `", op, "`: the rollout uses transport `", ro.transport(),
                                    "`, which is not defined"),
                       DefinedHint(ro.transport(), transports, "transports"));
        }
        const std::string ro_transport = ro.transport().empty() ? transport : ro.transport();
        if (ro.style() == style && ro_transport == transport) {
          return Error(ro_path,
                       absl::StrCat("operation `", op, "`: the rollout has the same style (", StyleShort(style),
                                    ") and transport as the binding, so nothing would change"),
                       "give the rollout another `style` or `transport`, or remove it");
        }
        const std::string ro_style_path = Written(Join(ro_path, "style")) ? Join(ro_path, "style") : ro_path;
        if (auto st = CheckReplyFlag(op, ro.style(), ro.reply(), ro_style_path, true); !st.ok()) return st;
        if (auto st = CheckReplyType(op, method, ro.style(), ro.reply(), ro_style_path, true); !st.ok()) {
          return st;
        }
      }

      WarnDurability(op, style, transport, path, false);
      if (b.has_rollout()) {
        WarnDurability(op, b.rollout().style(),
                       b.rollout().transport().empty() ? transport : b.rollout().transport(),
                       Join(path, "rollout"), true);
      }
      if (b.groups_size() > 0 && style != v1::STYLE_EVENT && style != v1::STYLE_UNSPECIFIED) {
        Warn(Join(path, "groups"),
             absl::StrCat("operation `", op, "` is a ", StyleShort(style), " but lists `groups`, which only events use"),
             "remove `groups`, or bind it as event");
      }
      const bool requests = style == v1::STYLE_REQUEST ||
                            (b.has_rollout() && b.rollout().style() == v1::STYLE_REQUEST);
      if (requests) {
        const std::string policy = b.policy().empty() ? config_.node().default_policy() : b.policy();
        if (policy.empty()) {
          Warn(path, absl::StrCat("request `", op, "` has no timeout (it has no policy)"),
               "give it a `policy:` with a `timeout:` so callers do not wait forever");
        } else if (!config_.policies().at(policy).has_timeout()) {
          Warn(path, absl::StrCat("request `", op, "` has no timeout (policy `", policy, "` sets none)"),
               absl::StrCat("set `timeout:` in policy `", policy, "` so callers do not wait forever"));
        }
      }
    }
    return absl::OkStatus();
  }

  absl::Status CheckTelemetry() {
    const std::string& level = config_.telemetry().log_level();
    if (!level.empty() && level != "off" && level != "error" && level != "info" && level != "debug") {
      return Error("telemetry.log_level", absl::StrCat("`log_level` is `", level, "`"),
                   "write `off`, `error`, `info` or `debug`");
    }
    return absl::OkStatus();
  }

  const v1::Config& config_;
  const Locations& locations_;
  std::vector<ConfigWarning>* warnings_;
  std::vector<std::string> known_types_;
};

}  // namespace

absl::StatusOr<absl::Duration> ParseDurationText(std::string_view text) {
  absl::Duration d;
  if (auto e = ParseDurationImpl(absl::string_view(text.data(), text.size()), &d)) {
    return absl::InvalidArgumentError(absl::StrCat(e->what, ". hint: ", e->hint));
  }
  return d;
}

absl::StatusOr<LoadedConfig> ParseConfig(std::string_view yaml, std::string_view filename,
                                         const ConfigOptions& options) {
  Locations locations{std::string(filename)};
  LoadedConfig loaded;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    std::string where = locations.At(e.mark);
    if (e.mark.is_null()) where = absl::StrCat(locations.filename(), ":1:1");
    return Invalid(where, absl::StrCat("YAML syntax error: ", e.msg),
                   "check the indentation, the quoting and the brackets on this line and the one before");
  }
  try {
    Parser parser(options, &locations);
    if (auto st = parser.ParseRoot(root, &loaded.config); !st.ok()) return st;
  } catch (const YAML::Exception& e) {
    return Invalid(locations.At(e.mark), absl::StrCat("cannot read the YAML: ", e.msg),
                   "check the syntax on this line");
  }
  Validator validator(loaded.config, options, locations, &loaded.warnings);
  if (auto st = validator.Run(); !st.ok()) return st;
  return loaded;
}

absl::StatusOr<LoadedConfig> LoadConfigFile(const std::string& path, const ConfigOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open config file `", path, "`: ", std::strerror(errno),
                                            ". hint: check the path and its permissions"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path, options);
}

absl::Status ValidateConfig(const v1::Config& config, const ConfigOptions& options,
                            std::vector<ConfigWarning>* warnings) {
  const Locations no_locations{""};
  Validator validator(config, options, no_locations, warnings);
  return validator.Run();
}

}  // namespace switchboard
