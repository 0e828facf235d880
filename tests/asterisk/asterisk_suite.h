#ifndef AUDIOSOCKET_BRIDGE_TESTS_ASTERISK_ASTERISK_SUITE_H_
#define AUDIOSOCKET_BRIDGE_TESTS_ASTERISK_ASTERISK_SUITE_H_

// The fixture the real-Asterisk suites share: one Asterisk for the whole
// suite (started in SetUpTestSuite, from $ASTERISK_PREFIX), a bridge and
// push backend per test, and the test's start in Asterisk's log. Without a
// prefix every test skips, saying why; when Asterisk could not be made
// ready every test fails with the reason.
//
// The suite's state is static: one fixture derived from this per test
// binary.
//
// Threads: the test's thread.

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "tests/asterisk/asterisk_server.h"
#include "tests/support/bridge_process.h"
#include "tests/support/test_backends.h"

namespace audiosocket::testing {

class AsteriskSuiteTest : public ::testing::Test {
 protected:
  // For a derived SetUpTestSuite: starts Asterisk, then `prepare` checks it
  // and sets the suite's dialplan. `built_by` names what builds the prefix,
  // for the skip message.
  static void StartAsterisk(const std::string& built_by,
                            const std::function<absl::Status(const std::string& prefix)>& prepare);
  static void TearDownTestSuite();

  // Skips or fails as above; notes where Asterisk's log stands.
  void SetUp() override;
  // Hangs up what the test left; on failure prints Asterisk's log tail and
  // the bridge's output.
  void TearDown() override;

  static AsteriskServer* asterisk_;
  size_t log_start_ = 0;  // Asterisk's log before this test
  std::unique_ptr<PushBackend> push_;
  std::unique_ptr<BridgeProcess> bridge_;

 private:
  static std::string* const skip_reason_;
  static std::string* const start_error_;
};

}  // namespace audiosocket::testing

#endif  // AUDIOSOCKET_BRIDGE_TESTS_ASTERISK_ASTERISK_SUITE_H_
