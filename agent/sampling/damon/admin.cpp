#include "sampling/damon/admin.h"

#include <cerrno>

#include "parse/parsers.h"
#include "sampling/damon/parse.h"

namespace tierd::sampling::damon {
namespace {

constexpr std::string_view kAdmin = "kernel/mm/damon/admin";

std::string str(uint64_t value) {
  return std::to_string(value);
}

std::string nrPath() {
  return tier::joinPath(kKdamondsDir, "nr_kdamonds");
}

tier::Result<uint64_t> readNrKdamonds(const tier::FsRoot& sys) {
  auto text = sys.readFile(nrPath());
  if (!text) return std::unexpected(text.error());
  auto nr = tier::parseU64(*text);
  if (!nr) return std::unexpected(tier::wrap(nr.error(), nrPath()));
  return *nr;
}

}  // namespace

std::string kdamondDir(int index) {
  return tier::joinPath(kKdamondsDir, std::to_string(index));
}

tier::Result<bool> kdamondIsOn(const tier::FsRoot& sys, int index) {
  std::string path = tier::joinPath(kdamondDir(index), "state");
  auto text = sys.readFile(path);
  if (!text) return std::unexpected(text.error());
  auto on = parseKdamondState(*text);
  if (!on) return std::unexpected(tier::wrap(on.error(), path));
  return *on;
}

tier::Result<KdamondClaim> claimKdamonds(const tier::FsRoot& sys, const tier::FsWriter& writer,
                                         size_t count) {
  if (!sys.exists(nrPath()))
    return tier::fail(ENOENT, "kernel lacks DAMON's sysfs interface (no " +
                                  tier::joinPath(sys.dir(), kAdmin) + "/kdamonds)");
  auto nr = readNrKdamonds(sys);
  if (!nr) return std::unexpected(nr.error());
  KdamondClaim claim{.nr_before = *nr, .nr_after = *nr};
  std::vector<std::string> running;
  for (uint64_t i = 0; i < *nr; ++i) {
    int index = static_cast<int>(i);
    auto on = kdamondIsOn(sys, index);
    if (!on) return std::unexpected(on.error());
    if (!*on) {
      if (claim.kdamonds.size() < count) claim.kdamonds.push_back(index);
      continue;
    }
    std::string who = "kdamond " + str(i);
    if (auto pid = sys.readFile(tier::joinPath(kdamondDir(index), "pid")); pid)
      who += " (pid " + std::string(tier::trim(*pid)) + ")";
    running.push_back(std::move(who));
  }
  if (claim.kdamonds.size() == count) return claim;
  if (!running.empty()) {
    std::string list;
    for (const auto& who : running)
      list += (list.empty() ? "" : ", ") + who;
    return tier::fail(EBUSY, "no free DAMON kdamond (" + str(count) + " needed, " +
                                 str(claim.kdamonds.size()) + " free): " + list +
                                 " running, not started by tierd; nr_kdamonds cannot change "
                                 "while any runs");
  }
  uint64_t grown = *nr + (count - claim.kdamonds.size());
  if (auto ok = writer.write(nrPath(), str(grown)); !ok) return std::unexpected(ok.error());
  claim.nr_after = grown;
  for (uint64_t i = *nr; i < grown; ++i)
    claim.kdamonds.push_back(static_cast<int>(i));
  for (int index : claim.kdamonds) {
    if (sys.isDir(kdamondDir(index))) continue;
    auto error =
        tier::Error{ENOENT, "the kernel made no " + tier::joinPath(sys.dir(), kdamondDir(index)) +
                                " after nr_kdamonds " + str(grown)};
    (void)releaseKdamonds(sys, writer, claim);
    return std::unexpected(std::move(error));
  }
  return claim;
}

std::optional<std::string> releaseKdamonds(const tier::FsRoot& sys, const tier::FsWriter& writer,
                                           const KdamondClaim& claim) {
  if (!claim.grew()) return std::nullopt;
  std::string busy;
  auto nr = readNrKdamonds(sys);
  if (nr && *nr == claim.nr_after) {
    for (uint64_t i = 0; i < *nr && busy.empty(); ++i)
      if (kdamondIsOn(sys, static_cast<int>(i)).value_or(true))
        busy = "kdamond " + str(i) + " runs";
    if (busy.empty())
      if (auto shrunk = writer.write(nrPath(), str(claim.nr_before)); !shrunk)
        busy = shrunk.error().message();
  } else {
    busy = "nr_kdamonds changed meanwhile";
  }
  if (busy.empty()) return std::nullopt;
  std::string added;
  for (uint64_t i = claim.nr_before; i < claim.nr_after; ++i)
    added += (added.empty() ? "" : ", ") + str(i);
  return "left nr_kdamonds with the kdamonds tierd added (" + added + ", off): " + busy;
}

tier::Result<void> turnKdamondOn(const tier::FsWriter& writer, int index) {
  return writer.write(tier::joinPath(kdamondDir(index), "state"), "on");
}

tier::Result<void> turnKdamondOff(const tier::FsRoot& sys, const tier::FsWriter& writer,
                                  int index) {
  auto on = kdamondIsOn(sys, index);
  if (on && !*on) return {};
  return writer.write(tier::joinPath(kdamondDir(index), "state"), "off");
}

tier::Result<pid_t> kdamondPid(const tier::FsRoot& sys, int index) {
  if (index < 0) return tier::fail(ESRCH, "no kdamond claimed");
  std::string path = tier::joinPath(kdamondDir(index), "pid");
  auto text = sys.readFile(path);
  if (!text) return std::unexpected(text.error());
  auto pid = tier::parseI64(*text);
  if (!pid) return std::unexpected(tier::wrap(pid.error(), path));
  if (*pid <= 0) return tier::fail(ESRCH, "kdamond " + std::to_string(index) + " is not running");
  return static_cast<pid_t>(*pid);
}

}  // namespace tierd::sampling::damon
