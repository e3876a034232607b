// Whether a host uid holds keys, so that a task leased that uid starts with its user keyrings
// emptied only when there is something in them (child.cc, EmptyUserKeyrings).
//
// The kernel keeps keyrings per uid, not per process: the user keyring (@u), the user session
// keyring (@us) and the persistent keyring (KEYCTL_GET_PERSISTENT; Kerberos' KEYRING:persistent
// credential cache). They belong to the uid in the node's user namespace and outlive every process
// of it (@u and @us as long as the machine runs, the persistent one persistent_keyring_expiry past
// its last use), so a task whose filter let keyctl(2) through found and read the keys an earlier
// task had left under the same leased uid (red team, test/security/sandbox-user-keyrings.test.ts).
// Looking a user keyring up, even to empty it, creates it for good (security/keys/process_keys.c,
// look_up_user_keyrings), and leased uids cycle through a block of 65536: emptying every time
// would leave two keyrings in the kernel for each uid ever leased. /proc/key-users lists the uids
// that own any key at all; a uid not listed has nothing to empty.
#pragma once

#include <cstdint>
#include <string_view>

namespace parafork {

// True when /proc/key-users (its text: "%5u: %5d %d/%d ..." a line per uid) has a line for `uid`.
bool KeyUsersListUid(std::string_view key_users, uint32_t uid);

// Whether `uid` may own keys: listed in /proc/key-users, or the file could not be read (then the
// keyrings are emptied anyway). A kernel without keys (no such file) has none.
bool UidMayHoldKeys(uint32_t uid);

}  // namespace parafork
