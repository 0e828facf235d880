#ifndef AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_ALLOCATION_COUNTER_H_
#define AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_ALLOCATION_COUNTER_H_

// Counts heap allocations: linking this library replaces the global
// operator new of the whole binary with one that counts each call and then
// allocates with malloc. For tests and benchmarks that prove code
// allocation-free; link it only into such binaries.
//
// Thread-safety: the count is atomic; read it from any thread.

namespace audiosocket::testing {

// Calls of operator new since the program started.
long AllocationCount();

}  // namespace audiosocket::testing

#endif  // AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_ALLOCATION_COUNTER_H_
