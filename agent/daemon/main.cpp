// tierd: the host agent. Loads the configuration, discovers the memory
// tiers, serves the control socket and metrics, and runs the main loop until
// SIGTERM; SIGHUP reloads the configuration.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "config/config.h"
#include "daemon/agent.h"
#include "daemon/log.h"
#include "daemon/sd_notify.h"

namespace tierd {
namespace {

using Clock = std::chrono::steady_clock;

int checkConfig(const std::string& path) {
  auto config = config::loadConfig(path, true);
  if (!config) {
    for (const auto& error : config.error())
      fmt::print(stderr, "{}\n", error);
    return 1;
  }
  fmt::print("configuration OK: {}\n", fmt::join(config->sources, ", "));
  return 0;
}

int blockSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  for (int signal : {SIGHUP, SIGTERM, SIGINT})
    sigaddset(&signals, signal);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the agent
  return signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
}

// Returns the signal number read, or 0.
int readSignal(int fd) {
  signalfd_siginfo info{};
  if (::read(fd, &info, sizeof(info)) != sizeof(info)) return 0;
  return static_cast<int>(info.ssi_signo);
}

int run(Agent& agent, int signal_fd) {
  auto watchdog = watchdogInterval();
  auto next_tick = Clock::now(), next_watchdog = Clock::now();
  for (;;) {
    auto now = Clock::now();
    if (now >= next_tick) {
      agent.tick();
      sdNotify("STATUS=" + agent.statusLine());
      next_tick = now + agent.interval();
    }
    if (watchdog && now >= next_watchdog) {
      sdNotify("WATCHDOG=1");
      next_watchdog = now + *watchdog;
    }
    auto wake = watchdog ? std::min(next_tick, next_watchdog) : next_tick;
    int timeout = static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(wake - Clock::now()).count()));
    pollfd poll_fd{signal_fd, POLLIN, 0};
    if (::poll(&poll_fd, 1, timeout) <= 0) continue;
    switch (readSignal(signal_fd)) {
      case SIGHUP:
        sdNotifyReloading();
        if (auto ok = agent.reload(); !ok) log(Priority::Err, "{}", ok.error().message());
        sdNotify("READY=1");
        break;
      case SIGTERM:
      case SIGINT:
        log(Priority::Info, "stopping");
        sdNotify("STOPPING=1");
        agent.stop();
        return 0;
      default:
        break;
    }
  }
}

int main(int argc, char** argv) {
  CLI::App app{"tierd: schedules DRAM, CXL, PMEM and far memory as tiers", "tierd"};
  AgentOptions options;
  bool check_only = false, verbose = false;
  std::string socket, metrics_listen;
  app.set_version_flag("--version", std::string(TIERD_VERSION));
  app.add_option("-c,--config", options.config_path,
                 "Configuration file (conf.d/*.toml beside it too)")
      ->option_text("FILE [/etc/tierd/tierd.toml]")
      ->each([&](const std::string&) { options.config_required = true; });
  app.add_flag("--check-config", check_only, "Validate the configuration, print every error, exit");
  app.add_flag("--dry-run", options.dry_run, "Decide and report, move nothing");
  app.add_option("--sysfs-root", options.sysfs_root, "Where sysfs is mounted")
      ->option_text("DIR [/sys]");
  app.add_option("--procfs-root", options.procfs_root, "Where procfs is mounted")
      ->option_text("DIR [/proc]");
  app.add_option("--socket", socket, "Control socket, overriding [control] socket")
      ->option_text("PATH");
  app.add_option("--metrics-listen", metrics_listen,
                 "Metrics listener ADDRESS:PORT, overriding [metrics] listen (\"\" for none)")
      ->option_text("ADDR");
  app.add_flag("-v,--verbose", verbose, "Log debug messages too");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    fmt::print("{}", app.help());
    return 0;
  } catch (const CLI::CallForVersion&) {
    fmt::print("tierd {}\n", TIERD_VERSION);
    return 0;
  } catch (const CLI::ParseError& error) {
    fmt::print(stderr, "tierd: {}\n\n{}", error.what(), app.help());
    return 2;
  }
  if (check_only) return checkConfig(options.config_path);
  if (verbose) setLogThreshold(Priority::Debug);
  if (app.count("--socket")) options.socket_path = socket;
  if (app.count("--metrics-listen")) options.metrics_listen = metrics_listen;

  int signal_fd = blockSignals();
  auto config = config::loadConfig(options.config_path, options.config_required);
  if (!config) {
    for (const auto& error : config.error())
      log(Priority::Err, "{}", error);
    return 1;
  }
  auto agent = Agent::create(options, std::move(*config));
  if (!agent) {
    log(Priority::Err, "Failed to start: {}", agent.error().message());
    return 1;
  }
  if (auto ok = (*agent)->start(); !ok) {
    log(Priority::Err, "Failed to start: {}", ok.error().message());
    return 1;
  }
  sdNotify("READY=1\nSTATUS=" + (*agent)->statusLine());
  return run(**agent, signal_fd);
}

}  // namespace
}  // namespace tierd

int main(int argc, char** argv) {
  return tierd::main(argc, argv);
}
