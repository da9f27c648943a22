// Errors as values across module boundaries: an errno plus the context that
// names what failed. Exceptions never cross a module's public functions.
#pragma once

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>
#include <utility>

namespace tier {

struct Error {
  int errnum = 0;       // errno value; 0 when the failure is not an OS error
  std::string context;  // what was being done, e.g. "read devices/system/node/online"

  std::string message() const {
    if (errnum == 0) return context;
    return context + ": " + std::strerror(errnum);
  }
};

template <typename T>
using Result = std::expected<T, Error>;

// Shorthand for the error side: `return fail(errno, "open " + path);`
inline std::unexpected<Error> fail(int errnum, std::string context) {
  return std::unexpected<Error>(Error{errnum, std::move(context)});
}

// Adds an outer layer of context, innermost last: "load topology: read x: No such file".
inline Error wrap(Error inner, const std::string& outer) {
  inner.context = outer + ": " + inner.context;
  return inner;
}

}  // namespace tier
