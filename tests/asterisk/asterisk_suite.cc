#include "tests/asterisk/asterisk_suite.h"

#include <iostream>

#include "absl/time/time.h"

namespace audiosocket::testing {

AsteriskServer* AsteriskSuiteTest::asterisk_ = nullptr;
std::string* const AsteriskSuiteTest::skip_reason_ = new std::string();
std::string* const AsteriskSuiteTest::start_error_ = new std::string();

void AsteriskSuiteTest::StartAsterisk(
    const std::string& built_by,
    const std::function<absl::Status(const std::string& prefix)>& prepare) {
  const std::string prefix = AsteriskServer::InstallPrefix();
  if (prefix.empty()) {
    *skip_reason_ =
        "no Asterisk: ASTERISK_PREFIX is not set (./test.sh sets it after " + built_by + ")";
    return;
  }
  auto server = AsteriskServer::Start(prefix);
  if (!server.ok()) {
    *start_error_ = std::string(server.status().message());
    return;
  }
  asterisk_ = server->release();
  const absl::Status prepared = prepare(prefix);
  if (!prepared.ok()) *start_error_ = std::string(prepared.message());
}

void AsteriskSuiteTest::TearDownTestSuite() {
  delete asterisk_;
  asterisk_ = nullptr;
}

void AsteriskSuiteTest::SetUp() {
  if (!skip_reason_->empty()) GTEST_SKIP() << *skip_reason_;
  ASSERT_TRUE(start_error_->empty()) << "Asterisk did not start: " << *start_error_;
  ASSERT_NE(asterisk_, nullptr);
  log_start_ = asterisk_->Log().size();
}

void AsteriskSuiteTest::TearDown() {
  if (asterisk_ == nullptr) return;
  EXPECT_TRUE(asterisk_->HangUpEverything(absl::Seconds(15)).ok());
  if (HasFailure()) {
    std::cerr << "Asterisk log (last 60 lines):\n" << asterisk_->LogTail(60);
    if (bridge_ != nullptr) std::cerr << "bridge output:\n" << bridge_->Output() << "\n";
  }
}

}  // namespace audiosocket::testing
