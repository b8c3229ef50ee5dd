// The real environment and files behind `${NAME}` and `@FILE` references in
// the configuration (cdr/core/config.h).
#pragma once

#include "cdr/core/config.h"

namespace cdr::service {

// getenv(), and files read whole: a regular file of at most 64 KiB (a
// secret, not a data file), following no symbolic link in its last
// component, e.g. a systemd credential under $CREDENTIALS_DIRECTORY.
const secret_reader& system_secrets();

}  // namespace cdr::service
