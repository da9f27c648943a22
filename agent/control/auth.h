// Who may ask what, decided from the peer's SO_PEERCRED and procfs.
//
//   status, config-show, ps without a pid     anyone (the Handler filters ps
//                                             for unprivileged callers)
//   config-reload                             privileged callers
//   ps with a pid, migrate, pin, unpin        privileged callers, or the
//                                             owner of the target process
//   register, hint                            privileged callers, or the target
//                                             process itself (its own pid)
//
// Privileged means uid 0 or CAP_SYS_NICE in the caller's effective set; the
// owner is the target's real uid (first field of "Uid:" in /proc/PID/status).
// pids are those of the agent's pid namespace.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "base/result.h"
#include "control/handler.h"
#include "control/protocol.h"
#include "fs/fs_root.h"

namespace tierd::control {

inline constexpr int kCapSysNice = 23;

// The identity lines of /proc/PID/status.
struct ProcessIdentity {
  uid_t real_uid = 0, effective_uid = 0;
  uint64_t cap_effective = 0;  // 0 when the line is missing
};

// Reads /proc/PID/status below `proc` (the procfs root). A process that does
// not exist (or exits while being read) is ESRCH naming the pid.
tier::Result<ProcessIdentity> readProcessIdentity(pid_t pid, const tier::FsRoot& proc);

// The caller as the server sees it. `uid` is SO_PEERCRED's (the effective uid
// at connect time). CAP_SYS_NICE counts only while /proc/PID/status still
// shows that effective uid, so a recycled pid cannot lend its capabilities;
// an unreadable status (pid 0 from another pid namespace, a caller that
// exited) leaves only uid 0 privileged.
Caller callerFromCredentials(pid_t pid, uid_t uid, gid_t gid, const tier::FsRoot& proc);

// EPERM naming the pid and both uids, or ESRCH naming the pid.
tier::Result<void> authorize(const Caller& caller, const Request& request,
                             const tier::FsRoot& proc);

}  // namespace tierd::control
