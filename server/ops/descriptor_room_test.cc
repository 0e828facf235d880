// ReserveDescriptors: the soft limit raised within the hard one, and the
// kernel's descriptor table grown at once. Each case runs in a child process
// (EXPECT_EXIT): limits and the table are the process's and never shrink.

#include "server/ops/descriptor_room.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "gtest/gtest.h"

namespace audiosocket {
namespace {

using ::testing::ExitedWithCode;

// Exits 0 when `check` holds, printing the room otherwise.
void ExitWith(bool check, const DescriptorRoom& room) {
  if (!check) {
    std::fprintf(stderr, "wanted %llu soft %llu hard %llu table %llu raised %d\n",
                 static_cast<unsigned long long>(room.wanted),
                 static_cast<unsigned long long>(room.soft_limit),
                 static_cast<unsigned long long>(room.hard_limit),
                 static_cast<unsigned long long>(room.table_slots), room.limit_raised);
  }
  std::_Exit(check ? 0 : 1);
}

TEST(DescriptorRoomTest, GrowsTheTableAndRaisesTheSoftLimitWithinTheHardOne) {
  EXPECT_EXIT(
      {
        rlimit limit{};
        getrlimit(RLIMIT_NOFILE, &limit);
        // A low soft limit, as Debian's default is, under a higher hard one.
        const rlim_t hard = limit.rlim_max == RLIM_INFINITY ? 8192 : limit.rlim_max;
        if (hard < 2048) std::_Exit(0);  // nothing to raise into here
        limit.rlim_cur = 256;
        setrlimit(RLIMIT_NOFILE, &limit);
        const DescriptorRoom room = ReserveDescriptors(2000);
        ExitWith(room.limit_raised && room.soft_limit == 2000 && !room.short_of_wanted() &&
                     room.table_slots >= 2000,
                 room);
      },
      ExitedWithCode(0), "");
}

TEST(DescriptorRoomTest, StopsAtTheHardLimitAndSaysSo) {
  EXPECT_EXIT(
      {
        rlimit limit{};
        getrlimit(RLIMIT_NOFILE, &limit);
        limit.rlim_cur = 300;
        limit.rlim_max = 600;  // lowering the hard limit needs no privilege
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0) std::_Exit(1);
        const DescriptorRoom room = ReserveDescriptors(5000);
        ExitWith(room.limit_raised && room.soft_limit == 600 && room.short_of_wanted() &&
                     room.table_slots >= 600 && room.table_slots < 5000,
                 room);
      },
      ExitedWithCode(0), "");
}

TEST(DescriptorRoomTest, LeavesAHigherSoftLimitAlone) {
  EXPECT_EXIT(
      {
        rlimit limit{};
        getrlimit(RLIMIT_NOFILE, &limit);
        if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < 1024) std::_Exit(0);
        limit.rlim_cur = 1024;
        setrlimit(RLIMIT_NOFILE, &limit);
        const DescriptorRoom room = ReserveDescriptors(500);
        ExitWith(!room.limit_raised && room.soft_limit == 1024 && room.table_slots >= 500, room);
      },
      ExitedWithCode(0), "");
}

TEST(DescriptorRoomTest, CallsGetASocketEachAndHeadroom) {
  EXPECT_EQ(DescriptorsForCalls(10000), 10256u);
  EXPECT_EQ(DescriptorsForCalls(0), 256u);
}

}  // namespace
}  // namespace audiosocket
