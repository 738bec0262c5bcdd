// Linked as an OBJECT library so the hook below is always part of the
// executable: IdempotencyStoreRegistry::Default() calls it once.
#include "switchboard/idempotency.h"
#include "switchboard/idempotency/sqlite_store.h"

extern "C" void SwitchboardRegisterIdempotencyStores(
    switchboard::IdempotencyStoreRegistry* registry) {
  (void)switchboard::RegisterSqliteIdempotencyStore(*registry);
}
