// Sharing DAMON's kdamonds politely (/sys/kernel/mm/damon/admin/kdamonds),
// for every tierd user of DAMON: the DamonSampler and the kernel-tiering
// mode's DAMOS schemes.
//
// The kdamonds are a system-wide pool. tierd takes only kdamonds that are off,
// and grows the pool only while none runs: the kernel refuses to change
// nr_kdamonds while any kdamond is on, and a change rebuilds every kdamond
// directory. It never touches a kdamond that is on and that it did not start.
// Releasing sets nr_kdamonds back when tierd grew it and every kdamond is off.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "fs/fs_root.h"
#include "fs/fs_writer.h"

namespace tierd::sampling::damon {

inline constexpr std::string_view kKdamondsDir = "kernel/mm/damon/admin/kdamonds";

// "kernel/mm/damon/admin/kdamonds/<index>"
std::string kdamondDir(int index);

// The kdamonds a claim took, and what to give back.
struct KdamondClaim {
  std::vector<int> kdamonds;  // indices, ascending
  uint64_t nr_before = 0;     // nr_kdamonds before the claim
  uint64_t nr_after = 0;      // nr_kdamonds the claim left (> nr_before when it grew the pool)
  bool grew() const { return nr_after > nr_before; }
};

// Takes `count` kdamonds that are off: the existing free ones first; when
// there are too few and none runs, grows nr_kdamonds by the shortfall.
// Errors: ENOENT "kernel lacks DAMON's sysfs interface"; EBUSY naming the
// running kdamonds when too few are free; the failing read or write otherwise
// (then nothing is held).
tier::Result<KdamondClaim> claimKdamonds(const tier::FsRoot& sys, const tier::FsWriter& writer,
                                         size_t count);

// Gives back what claimKdamonds took: sets nr_kdamonds back to nr_before when
// the claim grew it, nr_kdamonds is still nr_after and every kdamond is off.
// The kdamonds must be off already. Returns a sentence for the admin when
// nr_kdamonds stays as it is, else nothing.
std::optional<std::string> releaseKdamonds(const tier::FsRoot& sys, const tier::FsWriter& writer,
                                           const KdamondClaim& claim);

// The kdamond's state file: true when "on".
tier::Result<bool> kdamondIsOn(const tier::FsRoot& sys, int index);
tier::Result<void> turnKdamondOn(const tier::FsWriter& writer, int index);
// Writes "off" unless the kdamond is off already (it may have stopped by itself).
tier::Result<void> turnKdamondOff(const tier::FsRoot& sys, const tier::FsWriter& writer, int index);
// The kdamond kernel thread's pid (ESRCH when it does not run).
tier::Result<pid_t> kdamondPid(const tier::FsRoot& sys, int index);

}  // namespace tierd::sampling::damon
