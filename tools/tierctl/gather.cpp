#include "gather.h"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <memory>
#include <set>

namespace tierctl {
namespace {

using ArchivePtr = std::unique_ptr<archive, decltype(&archive_write_free)>;

class TarWriter {
 public:
  static tier::Result<TarWriter> create(const std::string& path) {
    ArchivePtr handle(archive_write_new(), archive_write_free);
    archive_write_set_format_pax_restricted(handle.get());
    if (archive_write_open_filename(handle.get(), path.c_str()) != ARCHIVE_OK)
      return tier::fail(archive_errno(handle.get()),
                        fmt::format("create {}: {}", path, archive_error_string(handle.get())));
    return TarWriter(std::move(handle), path);
  }

  tier::Result<void> add(const std::string& name, unsigned mode, const std::string& data,
                         const std::string& link_target = {}) {
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> entry(archive_entry_new(),
                                                                        archive_entry_free);
    archive_entry_set_pathname(entry.get(), name.c_str());
    archive_entry_set_mode(entry.get(), mode);
    archive_entry_set_mtime(entry.get(), 0, 0);  // reproducible tarballs
    if (S_ISLNK(mode)) archive_entry_set_symlink(entry.get(), link_target.c_str());
    if (S_ISREG(mode)) archive_entry_set_size(entry.get(), static_cast<la_int64_t>(data.size()));
    if (archive_write_header(handle_.get(), entry.get()) != ARCHIVE_OK ||
        (S_ISREG(mode) && !data.empty() &&
         archive_write_data(handle_.get(), data.data(), data.size()) < 0))
      return tier::fail(
          archive_errno(handle_.get()),
          fmt::format("write {} into {}: {}", name, path_, archive_error_string(handle_.get())));
    return {};
  }

  tier::Result<void> close() {
    if (archive_write_close(handle_.get()) != ARCHIVE_OK)
      return tier::fail(archive_errno(handle_.get()), "finish " + path_);
    return {};
  }

 private:
  TarWriter(ArchivePtr handle, std::string path)
      : handle_(std::move(handle)), path_(std::move(path)) {}
  ArchivePtr handle_;
  std::string path_;
};

// Adds one root's logged paths under `prefix`, each link on the way kept as a link.
tier::Result<void> addRoot(TarWriter& tar, const tier::FsRoot& root, const tier::AccessLog& log,
                           const std::string& prefix, GatherSummary& summary) {
  std::set<std::string> done;
  for (const auto& path : log.paths()) {
    if (path.empty()) continue;
    tier::FsRoot::LinkList links;
    auto resolved = root.resolve(path, &links);
    for (const auto& [link, target] : links) {
      if (!done.insert(link).second) continue;
      if (auto ok = tar.add(prefix + link, S_IFLNK | 0777, {}, target); !ok) return ok;
      ++summary.links;
    }
    if (!resolved || !done.insert(*resolved).second) continue;  // vanished, or absent
    auto mode = root.modeOf(*resolved);
    if (!mode) continue;
    if (S_ISDIR(*mode)) {
      if (auto ok = tar.add(prefix + *resolved, S_IFDIR | 0755, {}); !ok) return ok;
      ++summary.dirs;
    } else if (S_ISREG(*mode)) {
      auto data = root.readFile(*resolved);
      if (!data) continue;  // unreadable attribute: absent in the capture too
      if (auto ok = tar.add(prefix + *resolved, S_IFREG | 0444, *data); !ok) return ok;
      ++summary.files;
    }
  }
  // Links known only by name from a listing are kept as links (their
  // targets come along only if discovery read them).
  for (const auto& entry : log.listed()) {
    auto mode = root.modeOf(entry);
    if (!mode || !S_ISLNK(*mode)) continue;
    auto parent = root.resolve(tier::parentPath(entry));
    auto target = root.readLink(entry);
    if (!parent || !target) continue;
    std::string link = tier::joinPath(*parent, tier::baseName(entry));
    if (!done.insert(link).second) continue;
    if (auto ok = tar.add(prefix + link, S_IFLNK | 0777, {}, *target); !ok) return ok;
    ++summary.links;
  }
  return {};
}

}  // namespace

tier::Result<GatherSummary> gatherTopology(Roots& roots, const RootOptions& options,
                                           const std::string& tar_path) {
  auto sys_log = std::make_shared<tier::AccessLog>();
  auto proc_log = std::make_shared<tier::AccessLog>();
  roots.sys.setAccessLog(sys_log);
  if (roots.proc) roots.proc->setAccessLog(proc_log);
  auto topology = loadTopology(roots, options);
  roots.sys.setAccessLog(nullptr);
  if (roots.proc) roots.proc->setAccessLog(nullptr);
  if (!topology) return std::unexpected(topology.error());

  auto tar = TarWriter::create(tar_path);
  if (!tar) return std::unexpected(tar.error());
  GatherSummary summary;
  if (auto ok = addRoot(*tar, roots.sys, *sys_log, "sys/", summary); !ok)
    return std::unexpected(ok.error());
  if (roots.proc)
    if (auto ok = addRoot(*tar, *roots.proc, *proc_log, "proc/", summary); !ok)
      return std::unexpected(ok.error());
  if (auto ok = tar->close(); !ok) return std::unexpected(ok.error());
  return summary;
}

}  // namespace tierctl
