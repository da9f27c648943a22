// tierctl: the admin tool. Verbs come from one table; each verb registers
// its own flags. Results on stdout, diagnostics on stderr; exit 0 on success,
// 1 when the work failed, 2 for bad usage.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <functional>
#include <iostream>

#include "agent_verbs.h"
#include "gather.h"
#include "roots.h"
#include "topology_json.h"
#include "topology_text.h"

namespace tierctl {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int reportError(const tier::Error& error) {
  fmt::print(stderr, "tierctl: {}\n", error.message());
  return kExitFailure;
}

struct TopologyFlags {
  bool json = false, human = false, hardware = false, verbose = false;
};

int runTopology(const RootOptions& root_options, const TopologyFlags& flags) {
  auto roots = openRoots(root_options);
  if (!roots) return reportError(roots.error());
  auto topology = loadTopology(*roots, root_options);
  if (!topology) return reportError(topology.error());
  if (flags.hardware) {
    fmt::print("{}", numactlHardwareText(*topology));
  } else if (flags.json || flags.human) {
    fmt::print("{}\n", topologyToJson(*topology, JsonStyle{flags.human}).dump(2));
  } else {
    fmt::print("{}", topologyText(*topology, flags.verbose));
  }
  return 0;
}

int runGather(const RootOptions& root_options, const std::string& tar_path) {
  auto roots = openRoots(root_options);
  if (!roots) return reportError(roots.error());
  auto summary = gatherTopology(*roots, root_options, tar_path);
  if (!summary) return reportError(summary.error());
  fmt::print(stderr, "gathered {} files, {} links and {} directories into {}\n", summary->files,
             summary->links, summary->dirs, tar_path);
  return 0;
}

struct Verb {
  const char* name;
  const char* summary;
  std::function<std::function<int()>(CLI::App&, const RootOptions&)> attach;
};

std::vector<Verb> verbTable() {
  return {
      {"topology", "Show the memory tiers and each node's kind, size, performance and backing",
       [](CLI::App& cmd, const RootOptions& roots) {
         auto flags = std::make_shared<TopologyFlags>();
         cmd.add_flag("-j,--json", flags->json, "JSON in ndctl's manner (raw numbers)");
         cmd.add_flag("-u,--human", flags->human, "JSON with human-readable sizes (implies -j)");
         cmd.add_flag("-H,--hardware", flags->hardware, "The layout of `numactl --hardware`");
         cmd.add_flag("-v,--verbose", flags->verbose, "Add the evidence behind each node's kind");
         return [flags, &roots] { return runTopology(roots, *flags); };
       }},
      {"gather", "Capture every sysfs/procfs file discovery reads into a tarball",
       [](CLI::App& cmd, const RootOptions& roots) {
         auto path = std::make_shared<std::string>();
         cmd.add_option("FILE", *path, "Tarball to write (e.g. host.tar)")->required();
         return [path, &roots] { return runGather(roots, *path); };
       }},
      {"status", "Show the running agent: mode, uptime, managed processes, migrations",
       attachStatusVerb},
      {"ps", "Per-node memory of the processes tierd manages (like numastat -p)", attachPsVerb},
      {"migrate", "Move a process's pages (or a range of them) to a node or tier",
       attachMigrateVerb},
      {"pin", "Keep an address range of a process on a tier", attachPinVerb},
      {"unpin", "Release a pinned address range", attachUnpinVerb},
      {"config", "Show or reload tierd's configuration", attachConfigVerb},
  };
}

// Usage of the verb that was given, else of tierctl as a whole.
int usageError(const CLI::App& app, const std::string& message) {
  const CLI::App* shown = &app;
  for (const CLI::App* cmd : app.get_subcommands({}))
    if (cmd->parsed()) shown = cmd;
  fmt::print(stderr, "tierctl: {}\n\n{}", message, shown->help());
  return kExitUsage;
}

int run(int argc, char** argv) {
  CLI::App app{"tierctl: inspect and steer memory tiers (DRAM, CXL, PMEM, far memory)", "tierctl"};
  app.set_version_flag("--version", std::string(TIERD_VERSION));
  app.fallthrough();  // global flags may follow the verb
  app.require_subcommand(0, 1);
  RootOptions root_options;
  app.add_option("--sysfs-root", root_options.sysfs_root,
                 "Read sysfs from DIR (a sysfs mount, or a gathered tree with sys/ and proc/)")
      ->option_text("DIR [/sys]");
  app.add_option("--procfs-root", root_options.procfs_root, "Read procfs from DIR (default /proc)")
      ->option_text("DIR");
  app.add_option("--config", root_options.config_path,
                 "tierd configuration for tier overrides (default /etc/tierd/tierd.toml)")
      ->option_text("FILE");

  std::vector<std::pair<CLI::App*, std::function<int()>>> commands;
  for (const auto& verb : verbTable()) {
    CLI::App* cmd = app.add_subcommand(verb.name, verb.summary);
    commands.emplace_back(cmd, verb.attach(*cmd, root_options));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    fmt::print("{}", app.help());
    return 0;
  } catch (const CLI::CallForVersion&) {
    fmt::print("tierctl {}\n", TIERD_VERSION);
    return 0;
  } catch (const CLI::ExtrasError& error) {
    bool verb_given = !app.get_subcommands().empty();
    return usageError(app, verb_given
                               ? error.what()
                               : fmt::format("unknown verb: {}", fmt::join(app.remaining(), " ")));
  } catch (const CLI::ParseError& error) {
    return usageError(app, error.what());
  }
  for (auto& [cmd, action] : commands)
    if (cmd->parsed()) return action();
  return usageError(app, "no verb given");
}

}  // namespace
}  // namespace tierctl

int main(int argc, char** argv) {
  return tierctl::run(argc, argv);
}
