#ifndef AUDIOSOCKET_BRIDGE_SERVER_OPS_DESCRIPTOR_ROOM_H_
#define AUDIOSOCKET_BRIDGE_SERVER_OPS_DESCRIPTOR_ROOM_H_

// Room for the descriptors the bridge will hold, made once at start-up.
//
// Why: the kernel keeps a process's open files in a table that it grows by
// doubling when a new descriptor does not fit (at 64, 128, 256, 512, ...
// open files). In a process with more than one thread, each growth waits for
// an RCU grace period (synchronize_rcu in expand_fdtable): 10-25 ms measured
// on the benchmark machine, spent inside accept4 on an event loop, so every
// call on that loop missed its playout ticks meanwhile. Growing the table to
// its final size before any thread exists costs one allocation (8 bytes a
// descriptor) and no wait, and the kernel never shrinks it.
//
// The soft RLIMIT_NOFILE is raised as far as needed, within the hard limit,
// as Go's runtime and most servers do: Debian's default soft limit of 1,024
// would otherwise cap the bridge near 1,000 calls whatever --max_calls says.
//
// Threads: call from main before anything starts a thread.

#include <cstdint>

namespace audiosocket {

struct DescriptorRoom {
  uint64_t wanted = 0;       // what was asked for
  uint64_t soft_limit = 0;   // RLIMIT_NOFILE's soft limit afterwards
  uint64_t hard_limit = 0;   // and its hard limit
  uint64_t table_slots = 0;  // descriptors the kernel's table holds now
  bool limit_raised = false;
  // The soft limit is below `wanted` (the hard limit is lower, or raising
  // it failed): descriptors past it fail with EMFILE.
  bool short_of_wanted() const { return soft_limit < wanted; }
};

// Raises the soft RLIMIT_NOFILE to `wanted` if it is lower (at most to the
// hard limit) and grows the descriptor table to hold min(wanted, soft
// limit) descriptors. Never fails: what it could not do shows in the result.
DescriptorRoom ReserveDescriptors(uint64_t wanted);

// Descriptors the kernel's table of process `pid` holds now (its FDSize;
// 0: this process), or 0 when it cannot be read.
uint64_t DescriptorTableSlots(int pid = 0);

// Descriptors the bridge wants for `max_calls` calls: one socket per call,
// and room for listeners, backend and gRPC connections, the loops' own
// descriptors and the metrics server.
uint64_t DescriptorsForCalls(int max_calls);

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_OPS_DESCRIPTOR_ROOM_H_
