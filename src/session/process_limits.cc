#include "session/process_limits.h"

#include <sys/resource.h>

#include <algorithm>
#include <thread>

namespace ferry {

void raise_open_file_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

size_t worker_threads() { return std::max<size_t>(2, std::thread::hardware_concurrency()); }

}  // namespace ferry
