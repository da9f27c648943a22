// systemd's notification protocol without libsystemd: one datagram to
// $NOTIFY_SOCKET per state change. Does nothing outside systemd.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace tierd {

void sdNotify(std::string_view state);
// "RELOADING=1" with the MONOTONIC_USEC that Type=notify-reload requires.
void sdNotifyReloading();
// Half of $WATCHDOG_USEC, when systemd asks for keep-alives.
std::optional<std::chrono::microseconds> watchdogInterval();

}  // namespace tierd
