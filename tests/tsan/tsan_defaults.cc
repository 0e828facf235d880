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

extern "C" const char* __tsan_default_suppressions() {
  return "race:libgrpc.so\n"
         "race:libgrpc++.so\n"
         "race:libgpr.so\n"
         "race:libabsl_\n"
         "race:libprotobuf.so\n"
         "race:libupb.so\n"
         // OpenSSL's own locks (gRPC's TLS handshakes), equally invisible.
         "race:libcrypto.so\n"
         "race:libssl.so\n"
         "called_from_lib:libgrpc.so\n"
         "called_from_lib:libgrpc++.so\n"
         "called_from_lib:libgpr.so\n"
         "deadlock:libabsl_\n";
}
