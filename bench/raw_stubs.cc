// Raw baselines of transports left out of the build: their rows say so.
#include "bench_workload.h"

namespace switchboard::bench {

#ifndef SWITCHBOARD_BENCH_HAS_GRPC
absl::StatusOr<std::unique_ptr<Workload>> MakeRawGrpc(const RawOptions&) {
  return absl::UnimplementedError("gRPC is not part of this build");
}
#endif
#ifndef SWITCHBOARD_BENCH_HAS_NATS
absl::StatusOr<std::unique_ptr<Workload>> MakeRawNats(const RawOptions&) {
  return absl::UnimplementedError("cnats is not part of this build");
}
#endif
#ifndef SWITCHBOARD_BENCH_HAS_AMQP
absl::StatusOr<std::unique_ptr<Workload>> MakeRawAmqp(const RawOptions&) {
  return absl::UnimplementedError("Qpid Proton is not part of this build");
}
#endif

}  // namespace switchboard::bench
