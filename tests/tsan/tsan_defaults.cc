// ThreadSanitizer suppressions for Debian's uninstrumented gRPC, gpr,
// Abseil, Protobuf and OpenSSL shared libraries. TSan sees neither their internal
// synchronization (gRPC's pollers, Abseil's Mutex) nor the happens-before
// edges absl::Mutex gives our own code, so it reports races that are not
// there:
//   - inside the libraries (gRPC's epoll poller, Abseil's deadlock graph);
//   - on our data guarded by absl::Mutex, where one side runs inside the
//     library (a Condition evaluated by Mutex::Await/LockWhen, a gRPC
//     reaction).
// A race whose two stacks are entirely our code is still reported.
// (called_from_lib must name exactly one library, hence no libabsl_ entry.)

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace {

// Reports inside the libraries (OpenSSL's for its own locks, taken in
// gRPC's TLS handshakes) and (called_from_lib) from their interceptors.
#define LIBRARY_SUPPRESSIONS       \
  "race:libgrpc.so\n"              \
  "race:libgrpc++.so\n"            \
  "race:libgpr.so\n"               \
  "race:libprotobuf.so\n"          \
  "race:libupb.so\n"               \
  "race:libcrypto.so\n"            \
  "race:libssl.so\n"               \
  "called_from_lib:libgrpc.so\n"   \
  "called_from_lib:libgrpc++.so\n" \
  "called_from_lib:libgpr.so\n"    \
  "deadlock:libabsl_\n"

constexpr char kLibraries[] = LIBRARY_SUPPRESSIONS;
constexpr char kLibrariesAndAbseil[] = LIBRARY_SUPPRESSIONS "race:libabsl_\n";

// Whether the environment has AUDIOSOCKET_TSAN_STRICT_ABSL=1. TSan asks for
// the suppressions while it initializes: before libc has set up getenv's
// environment and before TSan's shadow memory exists. So: raw system calls
// on /proc/self/environ, a static buffer, and no instrumentation.
__attribute__((no_sanitize_thread)) bool StrictAbseil() {
  static char environ[1 << 16];
  const long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/environ", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  long size = 0;
  while (size < static_cast<long>(sizeof(environ)) - 1) {
    const long n = syscall(SYS_read, fd, environ + size, sizeof(environ) - 1 - size);
    if (n <= 0) break;
    size += n;
  }
  syscall(SYS_close, fd);
  constexpr char kWanted[] = "AUDIOSOCKET_TSAN_STRICT_ABSL=1";
  for (long at = 0; at < size; at += static_cast<long>(std::strlen(environ + at)) + 1) {
    if (std::strcmp(environ + at, kWanted) == 0) return true;
  }
  return false;
}

}  // namespace

// AUDIOSOCKET_TSAN_STRICT_ABSL=1 leaves races with Abseil frames reported:
// the shim's own test (absl_mutex_tsan_test) runs that way, so a report the
// shim should have prevented is not hidden by the suppression.
extern "C" __attribute__((no_sanitize_thread)) const char* __tsan_default_suppressions() {
  return StrictAbseil() ? kLibraries : kLibrariesAndAbseil;
}
