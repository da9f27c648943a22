// Output for node_exporter's textfile collector
// (--collector.textfile.directory, e.g. /var/lib/node_exporter/textfile_collector).
#pragma once

#include <string>

#include "base/result.h"

namespace tierd::metrics {

// Replaces `<directory>/<name>.prom` with `text` atomically, so the collector
// never reads a half-written file: writes `<directory>/.<name>.prom.<pid>.tmp`
// (hidden, and not matching *.prom), fsyncs it, renames it over the target.
// The file is mode 0644. On failure the temporary file is removed and the
// error names the path that failed. `name` must be a plain file name (no '/',
// not empty, not starting with '.'). Calls from several threads are
// serialized.
tier::Result<void> writeTextfile(const std::string& directory, const std::string& name,
                                 const std::string& text);

}  // namespace tierd::metrics
