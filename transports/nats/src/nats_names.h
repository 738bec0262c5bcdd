// nats_names.h: how operation and group names become NATS subjects, stream
// names and consumer names. Deterministic, so separate processes agree.
//
//   request   <prefix>.req.<op>
//   command   <prefix>.cmd.<op>        stream <PREFIX>_cmd_<op>_<hash>
//   event     <prefix>.evt.<op>        stream <PREFIX>_evt_<op>_<hash>
//   core-NATS redelivery <prefix>.retry.<group>.<op>
//
// `<op>` keeps its dots (they become subject tokens) with characters NATS
// reserves ('*', '>', whitespace, control, non-ASCII) and empty tokens
// replaced by '_'. Stream and consumer names allow no '.', '/', '*', '>' or
// whitespace, so they keep [A-Za-z0-9_-], cut long names and append an FNV-1a
// hash of the full input so that names stay distinct.
#pragma once

#include <string>
#include <string_view>

namespace switchboard::nats {

// A subject (or a part of one) safe for NATS; dots separate tokens.
[[nodiscard]] std::string SubjectSafe(std::string_view text);
// A stream/consumer name fragment: [A-Za-z0-9_-] only.
[[nodiscard]] std::string NameSafe(std::string_view text, size_t max_len = 48);
// 8 hex digits of FNV-1a 32.
[[nodiscard]] std::string ShortHash(std::string_view text);

enum class Kind { kRequest, kCommand, kEvent };

// The subject of an operation (or of `address`, used verbatim when set).
[[nodiscard]] std::string OperationSubject(std::string_view prefix, Kind kind,
                                           std::string_view operation,
                                           std::string_view address = {});
// The JetStream stream that stores `subject`.
[[nodiscard]] std::string StreamName(std::string_view prefix, Kind kind,
                                     std::string_view subject);
// The one durable consumer shared by all consumers of a command stream.
[[nodiscard]] std::string CommandConsumerName(std::string_view operation);
// The durable consumer of one subscriber group of an event stream.
[[nodiscard]] std::string GroupConsumerName(std::string_view group);
// Core NATS queue group of an event subscriber group / of command consumers.
[[nodiscard]] std::string QueueGroupName(std::string_view group);
// Core NATS: where a Retry()'d message goes so only its group sees it again.
[[nodiscard]] std::string RetrySubject(std::string_view prefix, std::string_view group,
                                       std::string_view subject);

}  // namespace switchboard::nats
