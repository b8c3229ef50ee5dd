// libFuzzer entry point: deploy/dev/fuzz.sh builds and runs it.
#include "harnesses.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cdr::fuzz::admin_request(data, size);
  return 0;
}
