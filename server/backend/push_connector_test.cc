// PushConnector in simulated time: dialling, accept and reject, the retry
// backoff after streams that fail before the accept, the accept deadline,
// and that nothing runs once the call is stopped or gone.

#include "server/backend/push_connector.h"

#include <chrono>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/event/time_source.h"
#include "server/backend/testing/link_fakes.h"
#include "server/backend/testing/loop_fixtures.h"

namespace audiosocket {
namespace {

namespace v1 = ::audiosocket::bridge::v1;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

struct EndRecord {
  v1::CallEndReason reason;
  std::string detail;
};

// The call, as the connector sees it.
class FakeHost final : public BackendConnector::Host {
 public:
  void UseLink(std::shared_ptr<BackendLink> link, uint64_t link_id) override {
    used_links.push_back(std::move(link));
    used_link_ids.push_back(link_id);
  }
  v1::CallEvent StartedEvent() const override {
    v1::CallEvent event;
    event.mutable_started()->set_call_id("call-1");
    event.mutable_started()->set_call_sample_rate_hz(rate_hz);
    return event;
  }
  int call_rate_hz() const override { return rate_hz; }
  absl::Status ApplyMedia(const v1::MediaOptions& media, int announced_rate_hz) override {
    applied_media.push_back(media);
    announced_rates.push_back(announced_rate_hz);
    return apply_status;
  }
  void OnBackendConnected(int attempts, bool announce) override {
    connected.emplace_back(attempts, announce);
  }
  void Reply(const std::string& command_id, v1::CommandKind kind, v1::ResultCode code,
             std::string message, uint32_t backend_rate_hz) override {
    replies.push_back({command_id, kind, code, std::move(message), backend_rate_hz});
  }
  void EndCall(v1::CallEndReason reason, std::string detail) override {
    ends.push_back({reason, std::move(detail)});
    if (on_end) on_end();
  }

  int rate_hz = 8000;
  absl::Status apply_status;
  std::function<void()> on_end;  // the call stops its connector when it ends
  std::vector<std::shared_ptr<BackendLink>> used_links;
  std::vector<uint64_t> used_link_ids;
  std::vector<v1::MediaOptions> applied_media;
  std::vector<int> announced_rates;
  std::vector<std::pair<int, bool>> connected;
  std::vector<ReplyRecord> replies;
  std::vector<EndRecord> ends;
};

v1::HandleCallResponse Accept(uint32_t rate_hz, std::string id = "acc") {
  v1::HandleCallResponse command;
  command.mutable_accept()->set_command_id(std::move(id));
  command.mutable_accept()->mutable_media()->set_sample_rate_hz(rate_hz);
  return command;
}

v1::HandleCallResponse Reject(v1::RejectReason reason, std::string detail = "") {
  v1::HandleCallResponse command;
  command.mutable_reject()->set_reason(reason);
  command.mutable_reject()->set_detail(std::move(detail));
  return command;
}

// The setup message by reference, as the call hands it over.
template <typename Message>
BackendMessageRef Ref(const Message& message) {
  return &message;
}

class PushConnectorTest : public ConnectorTest {
 protected:
  std::shared_ptr<PushConnector> Make(PushConnector::Options options) {
    auto connector = std::make_shared<PushConnector>(
        MakeContext(&host_, "call-1", "default"), options,
        [this](uint64_t link_id, std::weak_ptr<LinkObserver> observer) {
          EXPECT_FALSE(observer.expired());
          // The backend's end of one attempt.
          auto link = std::make_shared<RecordingLink>();
          links_.push_back(link);
          link_ids_.push_back(link_id);
          dial_times_.push_back(Elapsed());
          return link;
        });
    host_.on_end = [raw = connector.get()] { raw->Stop(); };
    return connector;
  }

  // The call ended once, for `reason`, with each of `details` in its detail.
  void ExpectOneEnd(v1::CallEndReason reason, std::initializer_list<std::string> details = {}) {
    ASSERT_THAT(host_.ends, SizeIs(1));
    EXPECT_EQ(host_.ends[0].reason, reason);
    for (const std::string& detail : details) EXPECT_THAT(host_.ends[0].detail, HasSubstr(detail));
  }

  // Simulated milliseconds since the test started.
  int64_t Elapsed() const {
    return std::chrono::duration_cast<milliseconds>(time_.Now() - start_).count();
  }

  const event::MonoTime start_ = time_.Now();
  FakeHost host_;
  std::vector<std::shared_ptr<RecordingLink>> links_;
  std::vector<uint64_t> link_ids_;
  std::vector<int64_t> dial_times_;
};

TEST_F(PushConnectorTest, ConnectDialsOnceAndSendsCallStarted) {
  auto connector = Make({});
  connector->Connect();
  ASSERT_THAT(links_, SizeIs(1));
  EXPECT_THAT(link_ids_, ElementsAre(1u));
  ASSERT_THAT(host_.used_links, SizeIs(1));
  EXPECT_EQ(host_.used_links[0], links_[0]);
  EXPECT_THAT(host_.used_link_ids, ElementsAre(1u));
  ASSERT_THAT(links_[0]->events, SizeIs(1));
  EXPECT_TRUE(links_[0]->events[0].has_started());
  EXPECT_EQ(links_[0]->events[0].started().call_id(), "call-1");
  AdvanceMs(1000);
  EXPECT_THAT(links_, SizeIs(1));  // no second dial while waiting
  EXPECT_THAT(host_.ends, IsEmpty());
}

TEST_F(PushConnectorTest, AcceptAppliesMediaRepliesWithRateAndConnects) {
  auto connector = Make({});
  connector->Connect();
  ASSERT_TRUE(connector->HandleSetupMessage(Ref(Accept(16000)), /*waiting=*/true));
  ASSERT_THAT(host_.applied_media, SizeIs(1));
  EXPECT_EQ(host_.applied_media[0].sample_rate_hz(), 16000u);
  EXPECT_THAT(host_.announced_rates, ElementsAre(8000));
  ASSERT_THAT(host_.replies, SizeIs(1));
  EXPECT_EQ(host_.replies[0].code, v1::RESULT_CODE_OK);
  EXPECT_EQ(host_.replies[0].command_id, "acc");
  EXPECT_EQ(host_.replies[0].backend_rate_hz, 16000u);
  EXPECT_THAT(host_.connected, ElementsAre(std::make_pair(1, false)));
  // The deadline no longer runs.
  AdvanceMs(6000);
  EXPECT_THAT(host_.ends, IsEmpty());
  EXPECT_THAT(links_, SizeIs(1));
}

TEST_F(PushConnectorTest, AcceptWithRateZeroGetsTheRateCallStartedAnnounced) {
  auto connector = Make({});
  host_.rate_hz = 8000;
  connector->Connect();
  host_.rate_hz = 16000;  // the call's rate changed after CallStarted went out
  ASSERT_TRUE(connector->HandleSetupMessage(Ref(Accept(0)), /*waiting=*/true));
  EXPECT_THAT(host_.announced_rates, ElementsAre(8000));
  ASSERT_THAT(host_.replies, SizeIs(1));
  EXPECT_EQ(host_.replies[0].code, v1::RESULT_CODE_OK);
  EXPECT_EQ(host_.replies[0].backend_rate_hz, 8000u);
}

TEST_F(PushConnectorTest, AcceptWithRefusedMediaRepliesUnsupportedAndStillWaits) {
  auto connector = Make({.accept_timeout = absl::Seconds(2), .backend_attempts = 3});
  connector->Connect();
  host_.apply_status = absl::InvalidArgumentError("sample_rate_hz 12345 is not supported");
  ASSERT_TRUE(connector->HandleSetupMessage(Ref(Accept(12345)), /*waiting=*/true));
  ASSERT_THAT(host_.replies, SizeIs(1));
  EXPECT_EQ(host_.replies[0].code, v1::RESULT_CODE_UNSUPPORTED);
  EXPECT_THAT(host_.replies[0].message, HasSubstr("12345"));
  EXPECT_EQ(host_.replies[0].backend_rate_hz, 0u);
  EXPECT_THAT(host_.connected, IsEmpty());

  // Still waiting: a good accept connects...
  host_.apply_status = absl::OkStatus();
  ASSERT_TRUE(connector->HandleSetupMessage(Ref(Accept(8000)), /*waiting=*/true));
  EXPECT_THAT(host_.connected, ElementsAre(std::make_pair(1, false)));
  AdvanceMs(3000);
  EXPECT_THAT(host_.ends, IsEmpty());
}

TEST_F(PushConnectorTest, AcceptWithRefusedMediaLeavesTheDeadlineRunning) {
  auto connector = Make({.accept_timeout = absl::Seconds(2), .backend_attempts = 3});
  connector->Connect();
  host_.apply_status = absl::InvalidArgumentError("no");
  connector->HandleSetupMessage(Ref(Accept(12345)), /*waiting=*/true);
  AdvanceMs(2000);
  ExpectOneEnd(v1::CALL_END_REASON_ACCEPT_TIMEOUT);
}

TEST_F(PushConnectorTest, BusyRejectDialsTheNextBackendUpToBackendAttempts) {
  auto connector = Make({.accept_timeout = absl::Seconds(5), .backend_attempts = 3});
  connector->Connect();
  ASSERT_TRUE(connector->HandleSetupMessage(Ref(Reject(v1::REJECT_REASON_BUSY)), true));
  ASSERT_THAT(links_, SizeIs(2));
  EXPECT_EQ(links_[0]->aborts, 1);  // the rejected stream is abandoned
  EXPECT_THAT(link_ids_, ElementsAre(1u, 2u));
  ASSERT_THAT(links_[1]->events, SizeIs(1));
  EXPECT_TRUE(links_[1]->events[0].has_started());
  EXPECT_THAT(host_.ends, IsEmpty());

  ASSERT_TRUE(connector->HandleSetupMessage(Ref(Reject(v1::REJECT_REASON_BUSY)), true));
  ASSERT_THAT(links_, SizeIs(3));
  EXPECT_THAT(host_.ends, IsEmpty());

  ASSERT_TRUE(connector->HandleSetupMessage(Ref(Reject(v1::REJECT_REASON_BUSY, "full")), true));
  EXPECT_THAT(links_, SizeIs(3));
  ExpectOneEnd(v1::CALL_END_REASON_ALL_BACKENDS_REJECTED, {"3 attempt(s)", "rejected busy: full"});
  EXPECT_EQ(counters_.backend_rejects.load(), 3u);
  AdvanceMs(6000);
  EXPECT_THAT(links_, SizeIs(3));
  EXPECT_THAT(host_.ends, SizeIs(1));
}

TEST_F(PushConnectorTest, BusyThenAcceptReportsTheAttempts) {
  auto connector = Make({});
  connector->Connect();
  connector->HandleSetupMessage(Ref(Reject(v1::REJECT_REASON_BUSY)), true);
  connector->HandleSetupMessage(Ref(Accept(0)), true);
  EXPECT_THAT(host_.connected, ElementsAre(std::make_pair(2, false)));
}

TEST_F(PushConnectorTest, DeclinedEndsTheCallAtOnce) {
  auto connector = Make({.accept_timeout = absl::Seconds(5), .backend_attempts = 3});
  connector->Connect();
  ASSERT_TRUE(connector->HandleSetupMessage(Ref(Reject(v1::REJECT_REASON_DECLINED, "no")), true));
  EXPECT_THAT(links_, SizeIs(1));
  ExpectOneEnd(v1::CALL_END_REASON_ALL_BACKENDS_REJECTED, {"declined: no"});
  EXPECT_EQ(counters_.backend_rejects.load(), 1u);
}

TEST_F(PushConnectorTest, LinkClosedBeforeAcceptRetriesWithDoublingBackoffCappedAtOneSecond) {
  auto connector = Make({.accept_timeout = absl::Seconds(60), .backend_attempts = 2});
  connector->Connect();
  std::vector<int64_t> waits;
  for (int failure = 1; failure <= 7; ++failure) {
    const int64_t failed_at = Elapsed();
    ASSERT_TRUE(connector->HandleLinkClosedWhileWaiting(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused")));
    EXPECT_EQ(counters_.backend_connect_failures.load(), static_cast<uint64_t>(failure));
    const size_t dials = links_.size();
    for (int i = 0; i < 2000 && links_.size() == dials; ++i) AdvanceMs(1);
    ASSERT_EQ(links_.size(), dials + 1) << "no retry after failure " << failure;
    waits.push_back(dial_times_.back() - failed_at);
    EXPECT_EQ(links_[dials - 1]->aborts, 1);
  }
  EXPECT_THAT(waits, ElementsAre(100, 200, 400, 800, 1000, 1000, 1000));
  EXPECT_THAT(host_.ends, IsEmpty());
  // Failed streams are not busy rejections: --backend_attempts still allows
  // one busy rejection and the next dial.
  connector->HandleSetupMessage(Ref(Reject(v1::REJECT_REASON_BUSY)), true);
  EXPECT_THAT(host_.ends, IsEmpty());
  connector->HandleSetupMessage(Ref(Reject(v1::REJECT_REASON_BUSY)), true);
  ExpectOneEnd(v1::CALL_END_REASON_ALL_BACKENDS_REJECTED);
}

TEST_F(PushConnectorTest, AcceptTimeoutEndsTheCall) {
  auto connector = Make({.accept_timeout = absl::Seconds(3), .backend_attempts = 3});
  connector->Connect();
  AdvanceMs(2999);
  EXPECT_THAT(host_.ends, IsEmpty());
  AdvanceMs(1);
  ExpectOneEnd(v1::CALL_END_REASON_ACCEPT_TIMEOUT, {"no backend accepted within 3s"});
  AdvanceMs(5000);
  EXPECT_THAT(host_.ends, SizeIs(1));
  EXPECT_THAT(links_, SizeIs(1));
}

TEST_F(PushConnectorTest, DeadlineBetweenRetriesEndsAllBackendsRejected) {
  auto connector = Make({.accept_timeout = absl::Milliseconds(250), .backend_attempts = 3});
  connector->Connect();
  connector->HandleLinkClosedWhileWaiting(grpc::Status(grpc::StatusCode::UNAVAILABLE, "refused"));
  AdvanceMs(100);  // retried at 100 ms
  ASSERT_THAT(links_, SizeIs(2));
  connector->HandleLinkClosedWhileWaiting(grpc::Status(grpc::StatusCode::UNAVAILABLE, "refused"));
  // The next retry would be at 300 ms; the deadline at 250 ms falls between.
  AdvanceMs(149);
  EXPECT_THAT(host_.ends, IsEmpty());
  AdvanceMs(1);
  ExpectOneEnd(v1::CALL_END_REASON_ALL_BACKENDS_REJECTED, {"no backend reachable", "refused"});
  AdvanceMs(1000);
  EXPECT_THAT(links_, SizeIs(2));  // the end stopped the pending retry
}

TEST_F(PushConnectorTest, StopCancelsTheDeadlineAndThePendingRetry) {
  auto connector = Make({.accept_timeout = absl::Seconds(1), .backend_attempts = 3});
  connector->Connect();
  connector->HandleLinkClosedWhileWaiting(grpc::Status(grpc::StatusCode::UNAVAILABLE, "refused"));
  connector->Stop();
  AdvanceMs(5000);
  EXPECT_THAT(links_, SizeIs(1));
  EXPECT_THAT(host_.ends, IsEmpty());
}

TEST_F(PushConnectorTest, SetupCommandsWhenNotWaitingAreFailedPrecondition) {
  auto connector = Make({});
  connector->Connect();
  connector->HandleSetupMessage(Ref(Accept(0)), true);
  host_.replies.clear();

  EXPECT_TRUE(connector->HandleSetupMessage(Ref(Accept(0, "again")), /*waiting=*/false));
  EXPECT_TRUE(
      connector->HandleSetupMessage(Ref(Reject(v1::REJECT_REASON_BUSY)), /*waiting=*/false));
  ASSERT_THAT(host_.replies, SizeIs(2));
  EXPECT_EQ(host_.replies[0].command_id, "again");
  EXPECT_EQ(host_.replies[0].kind, v1::COMMAND_KIND_ACCEPT);
  EXPECT_EQ(host_.replies[1].kind, v1::COMMAND_KIND_REJECT);
  for (const ReplyRecord& reply : host_.replies) {
    EXPECT_EQ(reply.code, v1::RESULT_CODE_FAILED_PRECONDITION) << reply.message;
    EXPECT_FALSE(reply.message.empty());
  }
  EXPECT_THAT(host_.replies[1].message, HasSubstr("send Hangup instead"));
  EXPECT_THAT(host_.connected, SizeIs(1));
  EXPECT_THAT(links_, SizeIs(1));  // the reject did not dial
  EXPECT_THAT(host_.ends, IsEmpty());

  // Not a setup message: the call handles it.
  v1::HandleCallResponse play;
  play.mutable_command()->mutable_play()->set_pcm("ab");
  EXPECT_FALSE(connector->HandleSetupMessage(Ref(play), false));
  // A pull stream's messages are not the push connector's.
  v1::ClaimCallRequest claim;
  claim.mutable_claim()->set_listener("x");
  EXPECT_FALSE(connector->HandleSetupMessage(Ref(claim), true));
  EXPECT_THAT(host_.replies, SizeIs(2));
}

TEST_F(PushConnectorTest, NoTimerRunsAfterTheOwnerIsGone) {
  auto connector = Make({.accept_timeout = absl::Seconds(1), .backend_attempts = 3});
  connector->Connect();
  connector->HandleLinkClosedWhileWaiting(grpc::Status(grpc::StatusCode::UNAVAILABLE, "refused"));
  owner_.reset();
  AdvanceMs(5000);
  EXPECT_THAT(links_, SizeIs(1));      // no retry
  EXPECT_THAT(host_.ends, IsEmpty());  // no deadline
}

}  // namespace
}  // namespace audiosocket
