#include "server/backend/command_budget.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace audiosocket {
namespace {

TEST(CommandBudget, ReservesUpToTheBoundAndNoFurther) {
  CommandBudget budget(100);
  EXPECT_TRUE(budget.TryReserve(60));
  EXPECT_TRUE(budget.TryReserve(40));
  EXPECT_FALSE(budget.TryReserve(1));
  EXPECT_EQ(budget.used(), 100u);
}

TEST(CommandBudget, ARefusedReservationTakesNothing) {
  CommandBudget budget(100);
  EXPECT_TRUE(budget.TryReserve(90));
  EXPECT_FALSE(budget.TryReserve(20));
  EXPECT_EQ(budget.used(), 90u);
  EXPECT_TRUE(budget.TryReserve(10));
}

TEST(CommandBudget, ReleasedBytesCanBeReservedAgain) {
  CommandBudget budget(100);
  ASSERT_TRUE(budget.TryReserve(100));
  budget.Release(30);
  EXPECT_TRUE(budget.TryReserve(30));
  EXPECT_FALSE(budget.TryReserve(1));
}

TEST(CommandBudget, OneCommandLargerThanTheBoundIsRefused) {
  CommandBudget budget(100);
  EXPECT_FALSE(budget.TryReserve(101));
  EXPECT_EQ(budget.used(), 0u);
}

TEST(CommandBudget, ConcurrentReservationsNeverPassTheBound) {
  CommandBudget budget(1000);
  std::vector<std::thread> threads;
  std::atomic<int> granted{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (budget.TryReserve(7)) granted++;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(granted.load(), 1000 / 7);
  EXPECT_EQ(budget.used(), static_cast<uint64_t>(granted.load()) * 7);
}

}  // namespace
}  // namespace audiosocket
