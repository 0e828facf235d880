// PullConnector: first with the ClaimDispatcher alone and slots that no
// gRPC stream backs (a claim posted to the loop, a slot handed back when
// the call is gone, the claim deadline in simulated time); then through an
// in-process gRPC server with the real BridgeService, where workers' claims
// pick calls by listener and call id.

#include "server/backend/pull_connector.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "audiosocket/bridge/v1/bridge.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/event/time_source.h"
#include "server/backend/claim_dispatcher.h"
#include "server/backend/claim_stream.h"
#include "server/backend/testing/link_fakes.h"
#include "server/backend/testing/loop_fixtures.h"
#include "server/call/call_registry.h"
#include "server/grpc/bridge_service.h"

namespace audiosocket {
namespace {

namespace v1 = ::audiosocket::bridge::v1;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// The call, as its connector sees it. On the loop (the test thread).
class FakeHost final : public BackendConnector::Host {
 public:
  void UseLink(std::shared_ptr<BackendLink> link, uint64_t link_id) override {
    log.push_back("UseLink");
    this->link = std::move(link);
    link_ids.push_back(link_id);
  }
  v1::CallEvent StartedEvent() const override {
    v1::CallEvent event;
    event.mutable_started()->set_call_id(call_id);
    event.mutable_started()->set_call_sample_rate_hz(8000);
    return event;
  }
  int call_rate_hz() const override { return 8000; }
  absl::Status ApplyMedia(const v1::MediaOptions& media, int announced_rate_hz) override {
    log.push_back("ApplyMedia");
    applied_media.push_back(media);
    announced_rates.push_back(announced_rate_hz);
    return apply_status;
  }
  void OnBackendConnected(int attempts, bool announce) override {
    log.push_back("OnBackendConnected");
    connected.emplace_back(attempts, announce);
    // As the call does: CallStarted first when told to announce.
    if (announce && link != nullptr) link->SendEvent(StartedEvent());
  }
  void Reply(const std::string&, v1::CommandKind, v1::ResultCode code, std::string message,
             uint32_t) override {
    replies.emplace_back(code, std::move(message));
  }
  void EndCall(v1::CallEndReason reason, std::string detail) override {
    log.push_back("EndCall");
    ends.emplace_back(reason, std::move(detail));
    // As the call does: CallEnded, then the stream ends after it.
    if (link != nullptr) {
      v1::CallEvent ended;
      ended.mutable_ended()->set_reason(reason);
      link->SendEvent(std::move(ended));
      link->CloseAfterQueued();
    }
  }

  std::string call_id = "call-1";
  absl::Status apply_status;
  std::shared_ptr<BackendLink> link;
  std::vector<std::string> log;
  std::vector<uint64_t> link_ids;
  std::vector<v1::MediaOptions> applied_media;
  std::vector<int> announced_rates;
  std::vector<std::pair<int, bool>> connected;
  std::vector<std::pair<v1::ResultCode, std::string>> replies;
  std::vector<std::pair<v1::CallEndReason, std::string>> ends;
};

class PullConnectorTestBase : public ConnectorTest {
 protected:
  std::shared_ptr<PullConnector> Make(FakeHost* host, std::string call_id = "call-1",
                                      std::string listener = "main",
                                      absl::Duration claim_timeout = absl::Seconds(10)) {
    return std::make_shared<PullConnector>(
        MakeContext(host, std::move(call_id), std::move(listener)), claim_timeout, &dispatcher_);
  }

  // Runs the loop (posted tasks come from gRPC threads) until `done` or a
  // generous real-time bound; the bound only keeps a broken test from
  // hanging.
  bool RunUntil(const std::function<bool()>& done) {
    const absl::Time limit = absl::Now() + absl::Seconds(10);
    while (!done()) {
      if (absl::Now() > limit) return false;
      loop_.RunOnce(milliseconds(5));
    }
    return true;
  }

  ClaimDispatcher dispatcher_;
};

// The setup message by reference, as the call hands it over.
template <typename Message>
BackendMessageRef Ref(const Message& message) {
  return &message;
}

// ------------------------------------------------ with the dispatcher alone

class PullConnectorTest : public PullConnectorTestBase {
 protected:
  // A worker slot no gRPC stream backs: its claim is empty (any call).
  std::shared_ptr<ClaimStream> Slot() {
    return std::make_shared<ClaimStream>(nullptr, &dispatcher_, 50, nullptr, nullptr);
  }
  FakeHost host_;
};

TEST_F(PullConnectorTest, ConnectOffersTheCallUntilTheClaimTimeout) {
  auto connector = Make(&host_, "call-1", "main", absl::Seconds(10));
  connector->Connect();
  EXPECT_EQ(dispatcher_.waiting_calls(), 1u);
  AdvanceMs(9999);
  EXPECT_THAT(host_.ends, IsEmpty());
  AdvanceMs(1);
  ASSERT_THAT(host_.ends, SizeIs(1));
  EXPECT_EQ(host_.ends[0].first, v1::CALL_END_REASON_CLAIM_TIMEOUT);
  EXPECT_THAT(host_.ends[0].second, HasSubstr("no worker claimed the call within 10s"));
  EXPECT_EQ(dispatcher_.waiting_calls(), 0u);  // withdrawn
  // A worker arriving later finds no call.
  auto slot = Slot();
  dispatcher_.AddSlot(slot);
  loop_.RunOnce(event::Nanos(0));
  EXPECT_EQ(dispatcher_.idle_slots(), 1u);
  EXPECT_THAT(host_.connected, IsEmpty());
}

TEST_F(PullConnectorTest, AClaimIsPostedToTheLoopThenAppliesMediaAndConnects) {
  auto slot = Slot();
  dispatcher_.AddSlot(slot);
  auto connector = Make(&host_);
  connector->Connect();  // pairs at once with the idle slot
  EXPECT_EQ(dispatcher_.idle_slots(), 0u);
  EXPECT_EQ(dispatcher_.waiting_calls(), 0u);
  EXPECT_THAT(host_.log, IsEmpty());  // not before the loop runs the claim
  loop_.RunOnce(event::Nanos(0));
  EXPECT_THAT(host_.log, ElementsAre("UseLink", "ApplyMedia", "OnBackendConnected"));
  EXPECT_EQ(host_.link, slot);
  EXPECT_THAT(host_.link_ids, ElementsAre(1u));
  EXPECT_THAT(host_.announced_rates, ElementsAre(8000));
  EXPECT_THAT(host_.connected, ElementsAre(std::make_pair(1, true)));
  // The deadline was cancelled.
  AdvanceMs(20000);
  EXPECT_THAT(host_.ends, IsEmpty());
}

TEST_F(PullConnectorTest, AClaimOnItsWayWinsOverTheTimeout) {
  auto slot = Slot();
  dispatcher_.AddSlot(slot);
  auto connector = Make(&host_, "call-1", "main", absl::Seconds(1));
  connector->Connect();
  // The deadline falls due in the same round as the posted claim: timers
  // run first, find the call already paired and leave it be.
  time_.Advance(std::chrono::seconds(1));
  loop_.RunOnce(event::Nanos(0));
  EXPECT_THAT(host_.ends, IsEmpty());
  EXPECT_THAT(host_.connected, ElementsAre(std::make_pair(1, true)));
}

TEST_F(PullConnectorTest, TheSlotGoesBackWhenTheCallIsGoneBeforeTheClaimRuns) {
  auto slot = Slot();
  dispatcher_.AddSlot(slot);
  auto connector = Make(&host_);
  connector->Connect();
  owner_.reset();  // the call ended and went away
  loop_.RunOnce(event::Nanos(0));
  EXPECT_THAT(host_.log, IsEmpty());
  EXPECT_EQ(dispatcher_.idle_slots(), 1u);
  // ...first in line for the next call.
  FakeHost next;
  owner_ = std::make_shared<int>(1);
  auto other = Make(&next, "call-2");
  other->Connect();
  loop_.RunOnce(event::Nanos(0));
  EXPECT_EQ(next.link, slot);
  EXPECT_THAT(next.connected, SizeIs(1));
}

TEST_F(PullConnectorTest, TheSlotGoesBackWhenTheConnectorStoppedBeforeTheClaimRuns) {
  auto slot = Slot();
  dispatcher_.AddSlot(slot);
  auto connector = Make(&host_);
  connector->Connect();
  connector->Stop();
  loop_.RunOnce(event::Nanos(0));
  EXPECT_THAT(host_.log, IsEmpty());
  EXPECT_EQ(dispatcher_.idle_slots(), 1u);
}

TEST_F(PullConnectorTest, StopWithdrawsTheOfferAndCancelsTheDeadline) {
  auto connector = Make(&host_, "call-1", "main", absl::Seconds(1));
  connector->Connect();
  connector->Stop();
  EXPECT_EQ(dispatcher_.waiting_calls(), 0u);
  AdvanceMs(2000);
  EXPECT_THAT(host_.ends, IsEmpty());
  dispatcher_.AddSlot(Slot());
  loop_.RunOnce(event::Nanos(0));
  EXPECT_EQ(dispatcher_.idle_slots(), 1u);
  EXPECT_THAT(host_.log, IsEmpty());
}

TEST_F(PullConnectorTest, AClaimSentAgainIsFailedPreconditionAndLinkEndsAreNotRetried) {
  auto connector = Make(&host_);
  v1::ClaimCallRequest claim;
  claim.mutable_claim()->set_command_id("again");
  for (bool waiting : {true, false}) {
    EXPECT_TRUE(connector->HandleSetupMessage(Ref(claim), waiting));
  }
  ASSERT_THAT(host_.replies, SizeIs(2));
  for (const auto& [code, message] : host_.replies) {
    EXPECT_EQ(code, v1::RESULT_CODE_FAILED_PRECONDITION);
    EXPECT_THAT(message, HasSubstr("already claimed"));
  }
  v1::ClaimCallRequest mark;
  mark.mutable_command()->mutable_mark()->set_name("m");
  EXPECT_FALSE(connector->HandleSetupMessage(Ref(mark), false));
  // A push stream's messages are not the pull connector's.
  v1::HandleCallResponse accept;
  accept.mutable_accept();
  EXPECT_FALSE(connector->HandleSetupMessage(Ref(accept), true));
  EXPECT_FALSE(connector->HandleLinkClosedWhileWaiting(grpc::Status::CANCELLED));
}

// ------------------------------------------- through an in-process server

class PullOverGrpcTest : public PullConnectorTestBase {
 protected:
  void SetUp() override {
    BridgeService::Options options;
    options.counters = &counters_;
    service_ = std::make_unique<BridgeService>(&dispatcher_, &registry_, options);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::BridgeService::NewStub(channel_);
  }

  void TearDown() override {
    // Streams still open end with the server.
    dispatcher_.EndIdleSlots(grpc::Status(grpc::StatusCode::UNAVAILABLE, "test over"));
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
  }

  struct Worker {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReaderWriter<v1::ClaimCallRequest, v1::ClaimCallResponse>> stream;
  };

  // A worker's ClaimCall stream with its claim sent.
  std::unique_ptr<Worker> Claim(const std::function<void(v1::ClaimCall*)>& fill) {
    auto worker = std::make_unique<Worker>();
    worker->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    worker->stream = stub_->ClaimCall(&worker->context);
    v1::ClaimCallRequest request;
    fill(request.mutable_claim());
    EXPECT_TRUE(worker->stream->Write(request));
    return worker;
  }

  // Every event until the bridge finishes the stream, and its status.
  static std::pair<std::vector<v1::CallEvent>, grpc::Status> ReadToEnd(Worker& worker) {
    std::vector<v1::CallEvent> events;
    v1::ClaimCallResponse response;
    while (worker.stream->Read(&response)) events.push_back(response.event());
    worker.stream->WritesDone();
    return {events, worker.stream->Finish()};
  }

  CallRegistry registry_;
  std::unique_ptr<BridgeService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::BridgeService::Stub> stub_;
};

TEST_F(PullOverGrpcTest, AClaimPairsAppliesItsMediaAndAnnouncesTheCall) {
  FakeHost host;
  auto connector = Make(&host, "call-1", "main");
  connector->Connect();
  auto worker = Claim([](v1::ClaimCall* claim) {
    claim->set_listener("main");
    claim->mutable_media()->set_sample_rate_hz(16000);
  });
  ASSERT_TRUE(RunUntil([&] { return !host.connected.empty(); }));
  EXPECT_THAT(host.log, ElementsAre("UseLink", "ApplyMedia", "OnBackendConnected"));
  ASSERT_THAT(host.applied_media, SizeIs(1));
  EXPECT_EQ(host.applied_media[0].sample_rate_hz(), 16000u);
  EXPECT_THAT(host.connected, ElementsAre(std::make_pair(1, true)));
  host.link->CloseAfterQueued();
  auto [events, status] = ReadToEnd(*worker);
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].started().call_id(), "call-1");
}

TEST_F(PullOverGrpcTest, RefusedMediaSendsCallStartedThenEndsBackendLost) {
  FakeHost host;
  host.apply_status = absl::InvalidArgumentError("sample_rate_hz 11025 is not supported");
  auto connector = Make(&host);
  connector->Connect();
  auto worker =
      Claim([](v1::ClaimCall* claim) { claim->mutable_media()->set_sample_rate_hz(11025); });
  ASSERT_TRUE(RunUntil([&] { return !host.ends.empty(); }));
  EXPECT_THAT(host.log, ElementsAre("UseLink", "ApplyMedia", "EndCall"));
  EXPECT_EQ(host.ends[0].first, v1::CALL_END_REASON_BACKEND_LOST);
  EXPECT_THAT(host.ends[0].second, HasSubstr("the claim's media options were refused"));
  EXPECT_THAT(host.ends[0].second, HasSubstr("11025"));
  EXPECT_THAT(host.connected, IsEmpty());
  auto [events, status] = ReadToEnd(*worker);
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_TRUE(events[0].has_started());  // the worker learns which call it lost
  EXPECT_EQ(events[1].ended().reason(), v1::CALL_END_REASON_BACKEND_LOST);
}

TEST_F(PullOverGrpcTest, ClaimTimeoutEndsTheCallAndLaterClaimsStayIdle) {
  FakeHost host;
  auto connector = Make(&host, "call-1", "main", absl::Seconds(10));
  connector->Connect();
  AdvanceMs(10000);
  ASSERT_THAT(host.ends, SizeIs(1));
  EXPECT_EQ(host.ends[0].first, v1::CALL_END_REASON_CLAIM_TIMEOUT);
  auto worker = Claim([](v1::ClaimCall*) {});
  ASSERT_TRUE(RunUntil([&] { return dispatcher_.idle_slots() == 1; }));
  loop_.RunOnce(event::Nanos(0));
  EXPECT_THAT(host.connected, IsEmpty());
  // Shutdown ends the idle slot with the status it is given.
  dispatcher_.EndIdleSlots(grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
  auto [events, status] = ReadToEnd(*worker);
  EXPECT_THAT(events, IsEmpty());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "shutting down");
}

TEST_F(PullOverGrpcTest, StopWithdrawsTheOfferAndTheSlotWaitsForTheNextCall) {
  FakeHost first;
  auto stopped = Make(&first, "call-1", "main");
  stopped->Connect();
  stopped->Stop();
  auto worker = Claim([](v1::ClaimCall* claim) { claim->set_listener("main"); });
  ASSERT_TRUE(RunUntil([&] { return dispatcher_.idle_slots() == 1; }));
  loop_.RunOnce(event::Nanos(0));
  EXPECT_THAT(first.log, IsEmpty());

  FakeHost second;
  second.call_id = "call-2";
  auto next = Make(&second, "call-2", "main");
  next->Connect();
  ASSERT_TRUE(RunUntil([&] { return !second.connected.empty(); }));
  second.link->CloseAfterQueued();
  auto [events, status] = ReadToEnd(*worker);
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].started().call_id(), "call-2");
}

TEST_F(PullOverGrpcTest, ClaimsPickCallsByListenerAndByCallId) {
  FakeHost on_other;
  on_other.call_id = "call-other";
  auto other = Make(&on_other, "call-other", "other");
  other->Connect();
  FakeHost wanted;
  wanted.call_id = "call-wanted";
  auto by_id = Make(&wanted, "call-wanted", "main");
  by_id->Connect();
  FakeHost on_main;
  on_main.call_id = "call-main";
  auto main_call = Make(&on_main, "call-main", "main");
  main_call->Connect();
  ASSERT_EQ(dispatcher_.waiting_calls(), 3u);

  // A claim for the listener "main" takes the oldest call there.
  auto main_worker = Claim([](v1::ClaimCall* claim) { claim->set_listener("main"); });
  ASSERT_TRUE(RunUntil([&] { return !wanted.connected.empty(); }));
  EXPECT_THAT(on_main.connected, IsEmpty());
  EXPECT_THAT(on_other.connected, IsEmpty());

  // A claim for a call id takes that call, whatever waited longer.
  auto id_worker = Claim([](v1::ClaimCall* claim) { claim->set_call_id("call-main"); });
  ASSERT_TRUE(RunUntil([&] { return !on_main.connected.empty(); }));
  EXPECT_THAT(on_other.connected, IsEmpty());

  // A claim for a call id that has not arrived waits for it.
  auto early = Claim([](v1::ClaimCall* claim) { claim->set_call_id("call-later"); });
  ASSERT_TRUE(RunUntil([&] { return dispatcher_.idle_slots() == 1; }));
  EXPECT_EQ(dispatcher_.waiting_calls(), 1u);  // "call-other" is not it
  FakeHost later;
  later.call_id = "call-later";
  auto later_call = Make(&later, "call-later", "elsewhere");
  later_call->Connect();
  ASSERT_TRUE(RunUntil([&] { return !later.connected.empty(); }));
  EXPECT_THAT(on_other.connected, IsEmpty());

  for (FakeHost* host : {&wanted, &on_main, &later}) host->link->CloseAfterQueued();
  EXPECT_EQ(ReadToEnd(*main_worker).first.at(0).started().call_id(), "call-wanted");
  EXPECT_EQ(ReadToEnd(*id_worker).first.at(0).started().call_id(), "call-main");
  EXPECT_EQ(ReadToEnd(*early).first.at(0).started().call_id(), "call-later");
  other->Stop();
}

}  // namespace
}  // namespace audiosocket
