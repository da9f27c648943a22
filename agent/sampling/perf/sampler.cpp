#include "sampling/perf/sampler.h"

#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "parse/parsers.h"

namespace tierd::sampling::perf {

namespace {

constexpr double kMinWindowSeconds = 0.2;
constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;

int perfEventOpen(perf_event_attr* attr, pid_t pid, int cpu, int group_fd, unsigned long flags) {
  return static_cast<int>(::syscall(SYS_perf_event_open, attr, pid, cpu, group_fd, flags));
}

double threadCpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

int readParanoid(const tier::FsRoot& proc) {
  auto text = proc.readFile("sys/kernel/perf_event_paranoid");
  if (!text) return 2;  // the kernel's default
  auto value = tier::parseI64(*text);
  return value ? static_cast<int>(*value) : 2;
}

// CAP_PERFMON or CAP_SYS_ADMIN in this process's effective set.
bool readPrivileged(const tier::FsRoot& proc) {
  auto text = proc.readFile("self/status");
  if (!text) return ::geteuid() == 0;
  size_t at = text->find("CapEff:");
  if (at == std::string::npos) return ::geteuid() == 0;
  size_t end = text->find('\n', at);
  std::string value(tier::trim(std::string_view(*text).substr(at + 7, end - at - 7)));
  auto caps = tier::parseU64("0x" + value);
  if (!caps) return ::geteuid() == 0;
  return ((*caps >> kCapPerfmon) & 1) != 0 || ((*caps >> kCapSysAdmin) & 1) != 0;
}

}  // namespace

std::string Target::describe() const {
  switch (kind) {
    case Kind::kSystem:
      return "system-wide";
    case Kind::kProcess:
      return "pid " + std::to_string(pid == 0 ? ::getpid() : pid);
    case Kind::kCgroup:
      return "cgroup " + cgroup_dir;
  }
  return "?";
}

// ---------------------------------------------------------------------------
// PeriodController

PeriodController::PeriodController(uint64_t period, uint64_t min_period, uint64_t max_period,
                                   uint64_t granularity)
    : period_(period),
      min_(std::max<uint64_t>(min_period, 1)),
      max_(std::max(max_period, std::max<uint64_t>(min_period, 1))),
      granularity_(std::max<uint64_t>(granularity, 1)) {
  period_ = fit(static_cast<double>(period_ == 0 ? min_ : period_));
}

void PeriodController::setBudget(double samples_per_second) {
  budget_ = samples_per_second > 0 ? samples_per_second : 0;
  window_samples_ = window_throttles_ = 0;
  window_seconds_ = 0;
}

uint64_t PeriodController::fit(double period) const {
  double bounded = std::clamp(period, static_cast<double>(min_), static_cast<double>(max_));
  auto value = static_cast<uint64_t>(std::llround(bounded));
  value -= value % granularity_;
  if (value < min_) value += granularity_;  // the smallest multiple above min
  if (value > max_) value -= granularity_;
  return std::max(value, granularity_);
}

std::optional<uint64_t> PeriodController::update(uint64_t samples, uint64_t throttles,
                                                 double seconds) {
  window_samples_ += samples;
  window_throttles_ += throttles;
  window_seconds_ += std::max(seconds, 0.0);
  double factor = 1;
  if (window_throttles_ > 0) {
    factor = 2;  // the kernel throttled this event: back off whatever the budget
    if (window_seconds_ > 0) last_rate_ = static_cast<double>(window_samples_) / window_seconds_;
  } else {
    if (budget_ <= 0) {
      if (window_seconds_ >= kMinWindowSeconds) {
        last_rate_ = static_cast<double>(window_samples_) / window_seconds_;
        window_samples_ = 0;
        window_seconds_ = 0;
      }
      return std::nullopt;
    }
    if (window_seconds_ < kMinWindowSeconds) return std::nullopt;
    const double rate = static_cast<double>(window_samples_) / window_seconds_;
    last_rate_ = rate;
    const double aim = 0.8 * budget_;
    if (rate > budget_) {
      factor = std::min(rate / aim, 8.0);
    } else if (rate < 0.5 * budget_) {
      factor = rate > 0 ? std::max(rate / aim, 0.25) : 0.5;
    }
  }
  window_samples_ = window_throttles_ = 0;
  window_seconds_ = 0;
  if (factor == 1) return std::nullopt;
  uint64_t next = fit(static_cast<double>(period_) * factor);
  if (next == period_) return std::nullopt;
  period_ = next;
  return next;
}

// ---------------------------------------------------------------------------
// Errors

std::string explainOpenError(int err, const EventSpec& spec, const Target& target, int paranoid,
                             bool privileged) {
  const std::string level = "perf_event_paranoid is " + std::to_string(paranoid);
  switch (err) {
    case EACCES:
    case EPERM:
      if (privileged) {
        return "denied although the process has CAP_PERFMON or CAP_SYS_ADMIN (a security "
               "module or kernel lockdown forbids perf, or the PMU is reserved)";
      }
      if (paranoid > 2) return level + ": needs CAP_PERFMON (or CAP_SYS_ADMIN)";
      if (target.kind != Target::Kind::kProcess && paranoid >= 1) {
        return level + ": " + target.describe() +
               " sampling needs CAP_PERFMON (or perf_event_paranoid <= 0)";
      }
      if (!spec.exclude_kernel && paranoid >= 2) {
        return level + ": " + spec.pmu +
               " cannot exclude the kernel, so it needs CAP_PERFMON (or perf_event_paranoid <= 1)";
      }
      if ((spec.sample_type & PERF_SAMPLE_PHYS_ADDR) && paranoid >= 2) {
        return level + ": physical addresses need CAP_PERFMON (or perf_event_paranoid <= 1)";
      }
      if (target.kind == Target::Kind::kProcess) {
        return "may not trace " + target.describe() +
               " (ptrace access: another user's process needs CAP_PERFMON or CAP_SYS_PTRACE; " +
               level + ")";
      }
      return "permission denied (" + level + ")";
    case ENOENT:
      return "no such PMU or event on this host (type " + std::to_string(spec.type) + ", config " +
             hex(spec.config) + "): the kernel exposes no PMU that knows it";
    case ENODEV:
      return "the PMU (type " + std::to_string(spec.type) +
             ") does not support this CPU or this feature";
    case EOPNOTSUPP:
      return "the PMU cannot sample this event (no sampling interrupt, or precise_ip " +
             std::to_string(spec.precise_ip) + " is not supported: no PEBS/IBS here, e.g. in a VM)";
    case EINVAL:
      return "the kernel rejected the attributes (type " + std::to_string(spec.type) + ", config " +
             hex(spec.config) + ", config1 " + hex(spec.config1) + ", precise_ip " +
             std::to_string(spec.precise_ip) + ", sample_type " + hex(spec.sample_type) + ")";
    case ESRCH:
      return "no such process or thread (" + target.describe() + ")";
    case EMFILE:
    case ENFILE:
      return "too many open files: the sampler needs one per event, CPU and thread; raise "
             "RLIMIT_NOFILE";
    case EBUSY:
      return "the PMU is in exclusive use by another perf user";
    case E2BIG:
      return "the kernel does not know this perf_event_attr size";
    default:
      return "perf_event_open failed";
  }
}

// ---------------------------------------------------------------------------
// PerfSampler

struct PerfSampler::Impl {
  struct Ring {
    int fd = -1;  // the event whose buffer this is
    void* base = nullptr;
    size_t length = 0;
    size_t event = 0;
    std::optional<RingReader> reader;
    ReaderStats last;  // the reader's stats at the previous poll
  };
  struct Event {
    EventSpec spec;
    std::vector<int> fds;      // every sampling fd (ring owners and redirected ones)
    std::vector<int> leaders;  // aux group leaders
    size_t rings = 0;
    PeriodController controller{1, 1, 1};
    uint64_t samples = 0, lost = 0, throttled = 0, malformed = 0, dropped = 0;
  };

  SamplerOptions options;
  std::vector<EventSpec> specs;  // as opened, parallel to events
  std::vector<Event> events;
  std::vector<Ring> rings;
  std::vector<tier::Error> skipped;
  int cgroup_fd = -1;
  pid_t filter_pid = 0;  // a per-CPU event standing in for a process target
  double cpu_seconds = 0;
  double last_fill = 0;  // the fullest ring's share consumed at the last poll
  std::chrono::steady_clock::time_point last_poll{};
  bool running = false;
  int paranoid = 2;
  bool privileged = false;
  size_t page_size = 4096;
  std::vector<AccessSample> scratch;

  ~Impl() {
    for (auto& ring : rings) {
      if (ring.base != nullptr) ::munmap(ring.base, ring.length);
    }
    for (auto& event : events) {
      for (int fd : event.fds)
        ::close(fd);
      for (int fd : event.leaders)
        ::close(fd);
    }
    if (cgroup_fd >= 0) ::close(cgroup_fd);
  }

  perf_event_attr attrFor(const EventSpec& spec, bool inherit) const {
    perf_event_attr attr{};
    attr.size = sizeof attr;
    attr.type = spec.type;
    attr.config = spec.config;
    attr.config1 = spec.config1;
    attr.config2 = spec.config2;
    attr.sample_period = spec.sample_period == 0 ? 1 : spec.sample_period;
    attr.sample_type = spec.sample_type;
    attr.precise_ip = spec.precise_ip & 3u;
    attr.disabled = 1;
    attr.exclude_kernel = spec.exclude_kernel ? 1 : 0;
    attr.exclude_hv = spec.exclude_kernel ? 1 : 0;  // PMUs without filters reject every exclude bit
    attr.inherit = inherit ? 1 : 0;
    attr.use_clockid = 1;
    attr.clockid = CLOCK_MONOTONIC;
    // Readers sleeping in poll(2) wake when a ring is a quarter full (the
    // kernel's default is half): room for a burst until they drain it.
    attr.watermark = 1;
    attr.wakeup_watermark = static_cast<__u32>(options.ring_pages * page_size / 4);
    return attr;
  }

  tier::Error openError(int err, const EventSpec& spec, const std::string& where) const {
    return tier::Error{err, "perf_event_open " + spec.name + " (" + where + "): " +
                                explainOpenError(err, spec, options.target, paranoid, privileged)};
  }

  // Opens one sampling event (with its aux leader when the spec wants one).
  // Lowers precise_ip on EOPNOTSUPP/EINVAL, remembering it in `spec`.
  tier::Result<int> openOne(EventSpec& spec, Event& event, pid_t pid, int cpu, bool inherit,
                            unsigned long flags) {
    for (;;) {
      int leader = -1;
      if (spec.aux_leader_config) {
        perf_event_attr lattr = attrFor(spec, inherit);
        lattr.config = *spec.aux_leader_config;
        lattr.config1 = lattr.config2 = 0;
        lattr.sample_period = 0;
        lattr.sample_type = 0;
        lattr.precise_ip = 0;
        leader = perfEventOpen(&lattr, pid, cpu, -1, flags | PERF_FLAG_FD_CLOEXEC);
        if (leader < 0) {
          return std::unexpected(
              openError(errno, spec, "mem-loads-aux leader, cpu " + std::to_string(cpu)));
        }
      }
      perf_event_attr attr = attrFor(spec, inherit);
      if (leader >= 0) attr.disabled = 0;  // the group follows its leader
      int fd = perfEventOpen(&attr, pid, cpu, leader, flags | PERF_FLAG_FD_CLOEXEC);
      if (fd >= 0) {
        if (leader >= 0) event.leaders.push_back(leader);
        return fd;
      }
      int err = errno;
      if (leader >= 0) ::close(leader);
      if ((err == EOPNOTSUPP || err == EINVAL) && spec.precise_ip > 1) {
        --spec.precise_ip;  // e.g. no PEBS "zero skid" on this model: try with skid
        continue;
      }
      std::string where = "cpu " + std::to_string(cpu);
      if (options.target.kind == Target::Kind::kProcess && pid > 0) {
        where += ", tid " + std::to_string(pid);
      }
      return std::unexpected(openError(err, spec, where));
    }
  }

  tier::Result<void> addRing(int fd, size_t event_index) {
    const size_t length = (options.ring_pages + 1) * page_size;
    void* base = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
      int err = errno;
      std::string why = "mmap of the perf ring (" + std::to_string(length) + " bytes) for " +
                        specs[event_index].name;
      if (err == EPERM || err == ENOMEM) {
        why +=
            ": over the locked-memory allowance (/proc/sys/kernel/perf_event_mlock_kb and "
            "RLIMIT_MEMLOCK); use fewer ring_pages or CAP_IPC_LOCK";
      }
      return tier::fail(err, why);
    }
    Ring ring;
    ring.fd = fd;
    ring.base = base;
    ring.length = length;
    ring.event = event_index;
    auto memory = ringFromMmap(base, length, page_size);
    if (!memory) {
      ::munmap(base, length);
      return std::unexpected(memory.error());
    }
    ReaderOptions reader_options;
    reader_options.sample_type = specs[event_index].sample_type;
    reader_options.all_stores = specs[event_index].all_stores;
    reader_options.default_pid = filter_pid;
    reader_options.drop_kernel_addresses = !specs[event_index].exclude_kernel;
    auto reader = RingReader::create(*memory, reader_options);
    if (!reader) {
      ::munmap(base, length);
      return std::unexpected(reader.error());
    }
    ring.reader.emplace(std::move(*reader));
    rings.push_back(std::move(ring));
    return {};
  }

  // Opens one event on every CPU (and thread) of the target.
  tier::Result<void> openEvent(size_t index, const std::vector<int>& cpus,
                               const std::vector<pid_t>& threads) {
    Event& event = events[index];
    EventSpec& spec = specs[index];
    const Target& target = options.target;
    const bool per_thread = target.kind == Target::Kind::kProcess && spec.per_task;
    for (int cpu : cpus) {
      if (per_thread) {
        int owner = -1;
        size_t opened = 0;
        for (pid_t tid : threads) {
          auto fd = openOne(spec, event, tid, cpu, /*inherit=*/true, 0);
          if (!fd) {
            if (fd.error().errnum == ESRCH) continue;  // the thread exited meanwhile
            return std::unexpected(fd.error());
          }
          event.fds.push_back(*fd);
          ++opened;
          if (owner < 0) {
            owner = *fd;
            if (auto ok = addRing(*fd, index); !ok) return ok;
            ++event.rings;
          } else if (::ioctl(*fd, PERF_EVENT_IOC_SET_OUTPUT, owner) != 0) {
            return tier::fail(errno, "PERF_EVENT_IOC_SET_OUTPUT for " + spec.name + " on cpu " +
                                         std::to_string(cpu));
          }
        }
        if (opened == 0) {
          return tier::fail(ESRCH, "perf_event_open " + spec.name + ": no thread of " +
                                       target.describe() + " is left");
        }
      } else {
        pid_t pid = -1;
        unsigned long flags = 0;
        if (target.kind == Target::Kind::kCgroup) {
          pid = cgroup_fd;
          flags = PERF_FLAG_PID_CGROUP;
        }
        auto fd = openOne(spec, event, pid, cpu, /*inherit=*/false, flags);
        if (!fd) return std::unexpected(fd.error());
        event.fds.push_back(*fd);
        if (auto ok = addRing(*fd, index); !ok) return ok;
        ++event.rings;
      }
    }
    return {};
  }

  void closeEvent(size_t index) {
    Event& event = events[index];
    for (auto it = rings.begin(); it != rings.end();) {
      if (it->event == index) {
        ::munmap(it->base, it->length);
        it = rings.erase(it);
      } else {
        ++it;
      }
    }
    for (int fd : event.fds)
      ::close(fd);
    for (int fd : event.leaders)
      ::close(fd);
    event.fds.clear();
    event.leaders.clear();
    event.rings = 0;
  }

  void applyBudget(double total) {
    const double share = events.empty() ? 0 : total / static_cast<double>(events.size());
    for (auto& event : events)
      event.controller.setBudget(share);
  }
};

PerfSampler::PerfSampler(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PerfSampler::PerfSampler(PerfSampler&&) noexcept = default;
PerfSampler& PerfSampler::operator=(PerfSampler&&) noexcept = default;
PerfSampler::~PerfSampler() = default;

tier::Result<PerfSampler> PerfSampler::open(SamplerOptions options, const tier::FsRoot& sys,
                                            const tier::FsRoot& proc) {
  if (options.events.empty()) return tier::fail(EINVAL, "perf sampler: no events to open");
  if (options.ring_pages == 0 || !std::has_single_bit(options.ring_pages)) {
    return tier::fail(EINVAL, "perf sampler: ring_pages must be a power of two, not " +
                                  std::to_string(options.ring_pages));
  }
  auto impl = std::make_unique<Impl>();
  impl->paranoid = readParanoid(proc);
  impl->privileged = readPrivileged(proc);
  long page = ::sysconf(_SC_PAGESIZE);
  impl->page_size = page > 0 ? static_cast<size_t>(page) : 4096;

  std::vector<int> cpus = options.cpus;
  if (cpus.empty()) {
    auto text = sys.readFile("devices/system/cpu/online");
    if (!text) return std::unexpected(tier::wrap(text.error(), "perf sampler: online CPUs"));
    auto parsed = tier::parseIdList(*text);
    if (!parsed) return std::unexpected(tier::wrap(parsed.error(), "perf sampler: online CPUs"));
    cpus = std::move(*parsed);
  }
  if (cpus.empty()) return tier::fail(EINVAL, "perf sampler: no CPUs to sample");

  std::vector<pid_t> threads;
  Target& target = options.target;
  if (target.kind == Target::Kind::kProcess) {
    if (target.pid == 0) target.pid = ::getpid();
    auto names = proc.listDir(std::to_string(target.pid) + "/task");
    if (!names) {
      return tier::fail(names.error().errnum == ENOENT ? ESRCH : names.error().errnum,
                        "perf sampler: threads of " + target.describe());
    }
    for (const auto& name : *names) {
      auto tid = tier::parseI64(name);
      if (tid && *tid > 0) threads.push_back(static_cast<pid_t>(*tid));
    }
    if (threads.empty()) {
      return tier::fail(ESRCH, "perf sampler: " + target.describe() + " has no threads");
    }
  } else if (target.kind == Target::Kind::kCgroup) {
    impl->cgroup_fd = ::open(target.cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (impl->cgroup_fd < 0) {
      return tier::fail(errno, "perf sampler: open cgroup directory " + target.cgroup_dir);
    }
  }

  impl->options = std::move(options);
  impl->specs = impl->options.events;
  for (auto& spec : impl->specs) {
    // PERF_SAMPLE_PERIOD makes a software event sample every occurrence
    // whatever its period, which would defeat the budget.
    if (spec.type == PERF_TYPE_SOFTWARE) spec.sample_type &= ~uint64_t{PERF_SAMPLE_PERIOD};
  }
  impl->events.resize(impl->specs.size());
  // An event without per-thread support samples a process through per-CPU
  // events and keeps only that process's samples.
  const Target& chosen = impl->options.target;
  for (size_t i = 0; i < impl->specs.size(); ++i) {
    if (chosen.kind == Target::Kind::kProcess && !impl->specs[i].per_task) {
      impl->filter_pid = chosen.pid;
    }
  }
  for (size_t i = 0; i < impl->specs.size(); ++i) {
    if (auto ok = impl->openEvent(i, cpus, threads); !ok) {
      impl->closeEvent(i);
      if (!impl->options.skip_failed_events) return std::unexpected(ok.error());
      impl->skipped.push_back(ok.error());
      continue;
    }
  }
  // Keep only the events that opened.
  {
    std::vector<EventSpec> specs;
    std::vector<Impl::Event> events;
    std::vector<size_t> remap(impl->specs.size(), SIZE_MAX);
    for (size_t i = 0; i < impl->specs.size(); ++i) {
      if (impl->events[i].fds.empty()) continue;
      remap[i] = specs.size();
      specs.push_back(impl->specs[i]);
      events.push_back(std::move(impl->events[i]));
    }
    if (specs.empty()) {
      return tier::fail(
          impl->skipped.empty() ? EINVAL : impl->skipped.front().errnum,
          "perf sampler: no event could be opened" +
              (impl->skipped.empty() ? std::string() : ": " + impl->skipped.front().context));
    }
    for (auto& ring : impl->rings)
      ring.event = remap[ring.event];
    impl->specs = std::move(specs);
    impl->events = std::move(events);
  }
  for (size_t i = 0; i < impl->events.size(); ++i) {
    const EventSpec& spec = impl->specs[i];
    impl->events[i].spec = spec;
    impl->events[i].controller = PeriodController(spec.sample_period, spec.min_period,
                                                  spec.max_period, spec.period_granularity);
  }
  impl->applyBudget(impl->options.max_samples_per_second);
  return PerfSampler(std::move(impl));
}

tier::Result<void> PerfSampler::start() {
  for (auto& event : impl_->events) {
    for (int fd : event.leaders) {
      if (::ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) != 0) {
        return tier::fail(errno, "enable " + event.spec.name + " (group leader)");
      }
    }
    for (int fd : event.fds) {
      if (::ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) != 0) {
        return tier::fail(errno, "enable " + event.spec.name);
      }
    }
  }
  impl_->last_poll = std::chrono::steady_clock::now();
  impl_->running = true;
  return {};
}

tier::Result<void> PerfSampler::stop() {
  std::optional<tier::Error> first;
  for (auto& event : impl_->events) {
    for (int fd : event.fds) {
      if (::ioctl(fd, PERF_EVENT_IOC_DISABLE, 0) != 0 && !first) {
        first = tier::Error{errno, "disable " + event.spec.name};
      }
    }
    for (int fd : event.leaders)
      ::ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
  }
  impl_->running = false;
  if (first) return std::unexpected(*first);
  return {};
}

tier::Result<size_t> PerfSampler::poll(std::vector<AccessSample>& out,
                                       std::vector<uint32_t>* event_of) {
  Impl& impl = *impl_;
  const double cpu_before = threadCpuSeconds();
  std::vector<uint64_t> seen(impl.events.size(), 0), throttles(impl.events.size(), 0);
  size_t appended = 0;
  impl.last_fill = 0;
  for (auto& ring : impl.rings) {
    // Samples go straight to `out` unless some must be filtered out.
    const bool filter = impl.filter_pid != 0 && !impl.specs[ring.event].per_task;
    const size_t out_before = out.size();
    impl.scratch.clear();
    ring.reader->drain(filter ? impl.scratch : out);
    const ReaderStats& now = ring.reader->stats();
    const ReaderStats& was = ring.last;
    Impl::Event& event = impl.events[ring.event];
    const uint64_t samples = now.base.samples - was.base.samples;
    const uint64_t lost = now.base.lost - was.base.lost;
    const uint64_t dropped =
        (now.no_address - was.no_address) + (now.kernel_addresses - was.kernel_addresses);
    const uint64_t throttled = now.base.throttled - was.base.throttled;
    event.lost += lost;
    event.throttled += throttled;
    event.malformed += now.base.malformed - was.base.malformed;
    event.dropped += dropped;
    seen[ring.event] += samples + lost + dropped;
    // A ring that lost records was full, whatever it held when read.
    const double fill = lost > 0 ? 1.0
                                 : static_cast<double>(now.bytes - was.bytes) /
                                       static_cast<double>(ring.reader->capacity());
    impl.last_fill = std::max(impl.last_fill, fill);
    throttles[ring.event] += throttled;
    ring.last = now;

    if (!filter) {
      const size_t drained = out.size() - out_before;
      if (event_of) event_of->insert(event_of->end(), drained, static_cast<uint32_t>(ring.event));
      event.samples += drained;
      appended += drained;
      continue;
    }
    for (const AccessSample& sample : impl.scratch) {
      if (sample.pid != impl.filter_pid) {
        ++event.dropped;
        continue;
      }
      out.push_back(sample);
      if (event_of) event_of->push_back(static_cast<uint32_t>(ring.event));
      ++event.samples;
      ++appended;
    }
  }

  const auto now = std::chrono::steady_clock::now();
  const double seconds = impl.last_poll == std::chrono::steady_clock::time_point{}
                             ? 0
                             : std::chrono::duration<double>(now - impl.last_poll).count();
  impl.last_poll = now;
  for (size_t i = 0; i < impl.events.size(); ++i) {
    Impl::Event& event = impl.events[i];
    if (auto period = event.controller.update(seen[i], throttles[i], seconds)) {
      uint64_t value = *period;
      for (int fd : event.fds)
        ::ioctl(fd, PERF_EVENT_IOC_PERIOD, &value);
      event.spec.sample_period = value;
    }
  }
  impl.cpu_seconds += threadCpuSeconds() - cpu_before;
  return appended;
}

void PerfSampler::setBudget(double max_samples_per_second) {
  impl_->options.max_samples_per_second = max_samples_per_second;
  impl_->applyBudget(max_samples_per_second);
}

std::vector<int> PerfSampler::ringFds() const {
  std::vector<int> fds;
  for (const auto& ring : impl_->rings)
    fds.push_back(ring.fd);
  return fds;
}

double PerfSampler::lastFill() const {
  return impl_->last_fill;
}

SamplerStats PerfSampler::stats() const {
  SamplerStats total;
  for (const auto& event : impl_->events) {
    total.samples += event.samples;
    total.lost += event.lost;
    total.throttled += event.throttled;
    total.malformed += event.malformed;
  }
  total.cpu_seconds = impl_->cpu_seconds;
  return total;
}

uint64_t PerfSampler::period(size_t event) const {
  return event < impl_->events.size() ? impl_->events[event].controller.period() : 0;
}

std::vector<PerfSampler::EventStatus> PerfSampler::status() const {
  std::vector<EventStatus> list;
  for (const auto& event : impl_->events) {
    EventStatus status;
    status.spec = event.spec;
    status.period = event.controller.period();
    status.rate = event.controller.lastRate();
    status.samples = event.samples;
    status.lost = event.lost;
    status.throttled = event.throttled;
    status.malformed = event.malformed;
    status.dropped = event.dropped;
    status.rings = event.rings;
    status.fds = event.fds.size() + event.leaders.size();
    list.push_back(std::move(status));
  }
  return list;
}

const std::vector<EventSpec>& PerfSampler::events() const {
  return impl_->specs;
}

const std::vector<tier::Error>& PerfSampler::skipped() const {
  return impl_->skipped;
}

}  // namespace tierd::sampling::perf
