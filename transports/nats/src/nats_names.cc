#include "nats_names.h"

#include <cstdint>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "sv.h"

namespace switchboard::nats {
namespace {

bool SubjectChar(unsigned char c) {
  return c > 0x20 && c < 0x7f && c != '*' && c != '>';
}

bool NameChar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-';
}

std::string_view KindToken(Kind kind) {
  switch (kind) {
    case Kind::kRequest:
      return "req";
    case Kind::kCommand:
      return "cmd";
    case Kind::kEvent:
      return "evt";
  }
  return "x";
}

// Whether SubjectSafe(text) == text: no reserved character, no empty token.
bool IsSubjectSafe(std::string_view text) {
  if (text.empty() || text.front() == '.' || text.back() == '.') return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '.' ? text[i + 1] == '.' : !SubjectChar(c)) return false;
  }
  return true;
}

// Appends SubjectSafe(text) to `out`.
void AppendSubjectSafe(std::string_view text, std::string* out) {
  if (IsSubjectSafe(text)) {  // the usual operation name, copied at once
    out->append(text);
    return;
  }
  bool token_start = true;
  for (unsigned char c : text) {
    if (c == '.') {
      if (token_start) out->push_back('_');  // empty token
      out->push_back('.');
      token_start = true;
      continue;
    }
    out->push_back(SubjectChar(c) ? static_cast<char>(c) : '_');
    token_start = false;
  }
  if (token_start) out->push_back('_');  // empty text or trailing dot
}

}  // namespace

std::string SubjectSafe(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 1);
  AppendSubjectSafe(text, &out);
  return out;
}

std::string NameSafe(std::string_view text, size_t max_len) {
  std::string out;
  for (unsigned char c : text) {
    if (out.size() >= max_len) break;
    out.push_back(NameChar(c) ? static_cast<char>(c) : '_');
  }
  return out;
}

std::string ShortHash(std::string_view text) {
  uint32_t h = 2166136261u;
  for (unsigned char c : text) {
    h ^= c;
    h *= 16777619u;
  }
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", h);
  return buf;
}

std::string OperationSubject(std::string_view prefix, Kind kind, std::string_view operation,
                             std::string_view address) {
  if (!address.empty()) return std::string(address);
  // Built in place: this runs for every request sent.
  const std::string_view kind_token = KindToken(kind);
  std::string out;
  out.reserve(prefix.size() + kind_token.size() + operation.size() + 4);
  AppendSubjectSafe(prefix, &out);
  out.push_back('.');
  out.append(kind_token);
  out.push_back('.');
  AppendSubjectSafe(operation, &out);
  return out;
}

std::string StreamName(std::string_view prefix, Kind kind, std::string_view subject) {
  return absl::StrCat(NameSafe(prefix, 24), "_", Sv(KindToken(kind)), "_", NameSafe(subject, 64),
                      "_", ShortHash(subject));
}

std::string CommandConsumerName(std::string_view operation) {
  return absl::StrCat("work_", NameSafe(operation, 64), "_", ShortHash(operation));
}

std::string GroupConsumerName(std::string_view group) {
  return absl::StrCat("group_", NameSafe(group, 64), "_", ShortHash(group));
}

std::string QueueGroupName(std::string_view group) {
  return absl::StrCat(NameSafe(group, 64), "_", ShortHash(group));
}

std::string RetrySubject(std::string_view prefix, std::string_view group,
                         std::string_view subject) {
  return absl::StrCat(SubjectSafe(prefix), ".retry.", QueueGroupName(group), ".", Sv(subject));
}

}  // namespace switchboard::nats
