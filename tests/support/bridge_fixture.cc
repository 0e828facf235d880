#include "tests/support/bridge_fixture.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace audiosocket::testing {

std::string ModeName(const ::testing::TestParamInfo<Mode>& info) {
  return info.param == Mode::kPush ? "Push" : "Pull";
}

std::unique_ptr<BridgeProcess> LaunchBridge(Mode mode, std::vector<std::string> flags,
                                            std::unique_ptr<PushBackend>& push) {
  if (mode == Mode::kPush) {
    push = std::make_unique<PushBackend>();
    flags.push_back("--backend=" + push->target());
  } else {
    flags.push_back("--mode=pull");
  }
  return std::make_unique<BridgeProcess>(std::move(flags));
}

void ModeTest::StartBridge(std::vector<std::string> flags, const std::string& listen) {
  flags.push_back("--listen=" + listen);
  flags.push_back("--first_audio_wait=100ms");
  bridge_ = LaunchBridge(GetParam(), std::move(flags), push_);
  ASSERT_TRUE(bridge_->ok()) << bridge_->Output();
}

std::shared_ptr<BackendCall> ModeTest::Connect(FakeAsterisk& asterisk, const std::string& uuid,
                                               size_t listener, bool accept) {
  std::shared_ptr<BackendCall> call;
  if (GetParam() == Mode::kPull) {
    workers_.push_back(std::make_shared<PullWorker>(bridge_->grpc_port(), ClaimAny()));
    call = workers_.back();
  }
  EXPECT_TRUE(asterisk.Dial(bridge_->audiosocket_port(listener), uuid));
  asterisk.SendAudio(NumberedFrame(0));
  if (GetParam() == Mode::kPush) {
    call = push_->NextCall(kWait);
    if (call == nullptr) return nullptr;
  }
  auto started = call->Next(kWait);
  EXPECT_TRUE(started.has_value() && started->has_started());
  if (started.has_value()) started_ = started->started();
  if (accept && GetParam() == Mode::kPush) {
    EXPECT_TRUE(call->Accept());
  }
  return call;
}

std::shared_ptr<BackendCall> ModeTest::StartCall(FakeAsterisk& asterisk,
                                                 std::vector<std::string> flags,
                                                 const std::string& listen) {
  StartBridge(std::move(flags), listen);
  if (HasFatalFailure()) return nullptr;
  return Connect(asterisk);
}

std::optional<CallEvent> SendForResult(BackendCall& call, const CallCommand& command) {
  if (!call.Send(command)) {
    ADD_FAILURE() << "the backend could not send command " << command.command_id();
    return std::nullopt;
  }
  return call.NextResult(command.command_id(), kWait);
}

std::vector<Received> ReadFor(FakeAsterisk& asterisk, absl::Duration duration) {
  std::vector<Received> out;
  const absl::Time deadline = absl::Now() + duration;
  while (absl::Now() < deadline) {
    auto message = asterisk.Read(deadline - absl::Now());
    if (!message.has_value()) break;
    out.push_back(std::move(*message));
  }
  return out;
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
}

}  // namespace audiosocket::testing
