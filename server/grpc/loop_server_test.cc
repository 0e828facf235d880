// LoopServer on two event loops with gRPC C++'s client: ClaimCall admitted
// and run on the loops, every other method passed through to gRPC C++'s
// server with its metadata and status, the pass-through's bounds in both
// directions, shutdown.

#include "server/grpc/loop_server.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "audiosocket/bridge/v1/bridge.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/grpc_client/address.h"
#include "lib/grpc_client/connection.h"
#include "lib/grpc_client/message_reader.h"
#include "server/backend/claim_dispatcher.h"
#include "server/backend/stream_tracker.h"
#include "server/call/call_registry.h"
#include "server/grpc/bridge_service.h"
#include "server/grpc/proxy_stream.h"
#include "server/ops/counters.h"

namespace audiosocket {
namespace {

namespace v1 = ::audiosocket::bridge::v1;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(20);  // only bounds a broken test

// Waits until `done` holds, bounded.
template <typename Predicate>
bool Eventually(Predicate done) {
  for (absl::Time deadline = absl::Now() + kWait; absl::Now() < deadline;) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return done();
}

// A call that records the slot the dispatcher gives it.
class RecordingCall final : public WaitingCall {
 public:
  const std::string& call_id() const override { return id_; }
  const std::string& listener_name() const override { return listener_; }
  void OnClaimed(std::shared_ptr<ClaimSlot> slot) override { slot_ = std::move(slot); }
  std::shared_ptr<ClaimSlot> slot_;  // OnClaimed runs in Offer, on the test's thread

 private:
  const std::string id_ = "recording";
  const std::string listener_ = "main";
};

class LoopServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    v1::CallInfo info;
    info.set_call_id("call-1");
    info.set_listener("main");
    ASSERT_TRUE(registry_.Add(info, {}).ok());
    BridgeService::Options options;
    options.auth_token = "s3cret";
    options.counters = &counters_;
    options.streams = &streams_;
    service_ = std::make_unique<BridgeService>(&dispatcher_, &registry_, options);
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;  // no port: reached through the loops only
    builder.RegisterService(service_.get());
    AddToInnerServer(&builder);
    inner_ = builder.BuildAndStart();
    ASSERT_NE(inner_, nullptr);
    for (auto& loop : loops_) loop = std::make_unique<event::EpollDispatcher>();
    server_ = std::make_unique<LoopServer>(
        std::vector<event::Dispatcher*>{loops_[0].get(), loops_[1].get()}, service_.get());
    ASSERT_TRUE(server_->Bind("127.0.0.1:0").ok());
    for (auto& loop : loops_) loop->StartThread();
    server_->Start(inner_.get());
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::BridgeService::NewStub(channel_);
  }

  void TearDown() override {
    stub_.reset();
    channel_.reset();
    server_->StopAccepting();
    server_->Close();
    inner_->Shutdown(std::chrono::system_clock::now());
    for (auto& loop : loops_) loop->Stop();
    for (auto& loop : loops_) loop->Join();
    server_.reset();
  }

  // Services a fixture adds to gRPC's server beside the BridgeService.
  virtual void AddToInnerServer(grpc::ServerBuilder* builder) {}

  static void Authorize(grpc::ClientContext* context) {
    context->AddMetadata("authorization", "Bearer s3cret");
  }

  BridgeCounters counters_;
  ClaimDispatcher dispatcher_;
  CallRegistry registry_;
  StreamTracker streams_;
  std::unique_ptr<BridgeService> service_;
  std::unique_ptr<grpc::Server> inner_;
  std::unique_ptr<event::EpollDispatcher> loops_[2];
  std::unique_ptr<LoopServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::BridgeService::Stub> stub_;
};

TEST_F(LoopServerTest, OperationsPassThroughToGrpcsServerWithTheirMetadataAndStatus) {
  grpc::ClientContext context;
  Authorize(&context);
  v1::ListCallsResponse response;
  grpc::Status status = stub_->ListCalls(&context, v1::ListCallsRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.calls_size(), 1);
  EXPECT_EQ(response.calls(0).call_id(), "call-1");

  grpc::ClientContext without_token;
  status = stub_->ListCalls(&without_token, v1::ListCallsRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("missing"));

  grpc::ClientContext hangup;
  Authorize(&hangup);
  v1::HangupCallRequest request;
  request.set_call_id("no such call");
  v1::HangupCallResponse hung_up;
  status = stub_->HangupCall(&hangup, request, &hung_up);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(LoopServerTest, HealthChecksAndUnknownMethodsReachGrpcsServer) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = health->Check(&context, grpc::health::v1::HealthCheckRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  // A service gRPC's server does not have.
  auto handler = v1::CallHandlerService::NewStub(channel_);
  grpc::ClientContext other;
  auto stream = handler->HandleCall(&other);
  stream->WritesDone();
  v1::HandleCallResponse ignored;
  EXPECT_FALSE(stream->Read(&ignored));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(LoopServerTest, ClaimCallIsAdmittedAsOnGrpcsServerAndRunsOnALoop) {
  {
    grpc::ClientContext context;  // no token
    auto stream = stub_->ClaimCall(&context);
    v1::ClaimCallResponse response;
    EXPECT_FALSE(stream->Read(&response));
    grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(counters_.pull_streams_rejected.load(), 1u);
  }
  grpc::ClientContext context;
  Authorize(&context);
  auto stream = stub_->ClaimCall(&context);
  v1::ClaimCallRequest claim;
  claim.mutable_claim()->set_listener("main");
  ASSERT_TRUE(stream->Write(claim));
  ASSERT_TRUE(Eventually([&] { return dispatcher_.idle_slots() == 1; }));
  EXPECT_EQ(counters_.pull_streams.load(), 1);
  EXPECT_EQ(streams_.open(), 1u);
  // The slot is served by a loop, not by gRPC's threads.
  auto call = std::make_shared<RecordingCall>();
  dispatcher_.Offer(call);
  ASSERT_NE(call->slot_, nullptr);
  EXPECT_TRUE(call->slot_->loop() == loops_[0].get() || call->slot_->loop() == loops_[1].get());
  dispatcher_.ReturnSlot(std::move(call->slot_));

  // A command before any call: answered on the stream, which stays open.
  v1::ClaimCallRequest early;
  early.mutable_command()->set_command_id("too-early");
  early.mutable_command()->mutable_hangup();
  ASSERT_TRUE(stream->Write(early));
  v1::ClaimCallResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.event().result().command_id(), "too-early");
  EXPECT_EQ(response.event().result().code(), v1::RESULT_CODE_FAILED_PRECONDITION);

  // The worker leaves: the slot goes, the stream ends OK.
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_TRUE(Eventually([&] { return streams_.open() == 0; }));
  EXPECT_EQ(dispatcher_.idle_slots(), 0u);
  EXPECT_EQ(counters_.pull_streams.load(), 0);
}

TEST_F(LoopServerTest, AWorkerThatCompressesItsMessagesIsReadAsGrpcsServerReadsIt) {
  for (grpc_compression_algorithm algorithm : {GRPC_COMPRESS_GZIP, GRPC_COMPRESS_DEFLATE}) {
    grpc::ClientContext context;
    Authorize(&context);
    context.set_compression_algorithm(algorithm);
    auto stream = stub_->ClaimCall(&context);
    v1::ClaimCallRequest claim;
    claim.mutable_claim()->set_listener("main");
    ASSERT_TRUE(stream->Write(claim));
    // Long enough that gRPC does compress it (it sends a message plain
    // when compressing would not make it smaller).
    const std::string id(2000, 'c');
    v1::ClaimCallRequest early;
    early.mutable_command()->set_command_id(id);
    early.mutable_command()->mutable_hangup();
    ASSERT_TRUE(stream->Write(early));
    v1::ClaimCallResponse response;
    ASSERT_TRUE(stream->Read(&response)) << algorithm;
    EXPECT_EQ(response.event().result().command_id(), id);
    EXPECT_EQ(response.event().result().code(), v1::RESULT_CODE_FAILED_PRECONDITION);
    stream->WritesDone();
    EXPECT_FALSE(stream->Read(&response));
    grpc::Status status = stream->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
}

// A client stream that sends `body` (framed messages), half-closes and
// keeps how it ended.
class ClosingHandler final : public grpc_client::StreamHandler {
 public:
  explicit ClosingHandler(std::string body = "") : body_(std::move(body)) {}
  size_t ReadBody(uint8_t* out, size_t size, bool* end) override {
    const size_t n = std::min(size, body_.size() - sent_);
    std::memcpy(out, body_.data() + sent_, n);
    sent_ += n;
    *end = sent_ == body_.size();
    return n;
  }
  void OnMessage(absl::string_view) override {}
  void OnClose(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
  }
  std::optional<absl::Status> status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  const std::string body_;  // the loop's
  size_t sent_ = 0;         // the loop's
  absl::Mutex mu_;
  std::optional<absl::Status> status_ ABSL_GUARDED_BY(mu_);
};

// Calls ClaimCall with the bridge's own client, which sends any header
// and any bytes (gRPC C++'s client only sends what it can encode), and
// returns how the stream ended.
absl::Status RawClaimCall(event::Dispatcher* loop, int port, const std::string& encoding,
                          std::string body) {
  const std::string host_port = absl::StrCat("127.0.0.1:", port);
  absl::StatusOr<std::vector<grpc_client::Address>> addresses = grpc_client::ResolveName(host_port);
  if (!addresses.ok() || addresses->empty()) return absl::InternalError("no address");
  grpc_client::Connection::Options options;
  options.authority = host_port;
  auto handler = std::make_shared<ClosingHandler>(std::move(body));
  std::shared_ptr<grpc_client::Connection> connection;
  loop->Post([&] {
    connection = grpc_client::Connection::Start(loop, addresses->front(), options);
    absl::StatusOr<int32_t> stream =
        connection->OpenStream("/audiosocket.bridge.v1.BridgeService/ClaimCall",
                               {{"authorization", "Bearer s3cret"}, {"grpc-encoding", encoding}},
                               absl::Seconds(10), handler);
    EXPECT_TRUE(stream.ok()) << stream.status();
  });
  const bool ended = Eventually([&] { return handler->status().has_value(); });
  std::atomic<bool> closed{false};
  loop->Post([&] {
    connection->Close(absl::CancelledError("test over"));
    connection.reset();
    closed = true;
  });
  EXPECT_TRUE(Eventually([&] { return closed.load(); }));
  if (!ended) return absl::DeadlineExceededError("the stream did not end");
  return *handler->status();
}

TEST_F(LoopServerTest, AClaimInAnEncodingThisSideCannotReadIsRefusedNamingWhatItReads) {
  const absl::Status status = RawClaimCall(loops_[0].get(), server_->port(), "snappy", "");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented) << status;
  EXPECT_THAT(status.message(), HasSubstr("\"snappy\" cannot be read here"));
  EXPECT_EQ(counters_.pull_streams_rejected.load(), 1u);
  EXPECT_EQ(dispatcher_.idle_slots(), 0u);
}

TEST_F(LoopServerTest, AMessageFlaggedCompressedThatDoesNotInflateEndsTheStreamAndIsCounted) {
  const std::string garbage = "not gzip at all";
  std::string body;
  grpc_client::AppendMessagePrefix(garbage.size(), &body);
  body[0] = 1;  // compressed
  body += garbage;
  const absl::Status status = RawClaimCall(loops_[0].get(), server_->port(), "gzip", body);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;
  EXPECT_THAT(status.message(), HasSubstr("not valid gzip data"));
  EXPECT_EQ(counters_.pull_stream_errors.load(), 1u);
  EXPECT_EQ(counters_.pull_streams_rejected.load(), 0u);
}

TEST_F(LoopServerTest, AFirstMessageThatIsNotAClaimEndsTheStream) {
  grpc::ClientContext context;
  Authorize(&context);
  auto stream = stub_->ClaimCall(&context);
  v1::ClaimCallRequest command;
  command.mutable_command()->set_command_id("c");
  ASSERT_TRUE(stream->Write(command));
  v1::ClaimCallResponse response;
  EXPECT_FALSE(stream->Read(&response));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("must be a claim"));
  EXPECT_TRUE(Eventually([&] { return counters_.pull_streams.load() == 0; }));
  EXPECT_EQ(counters_.pull_stream_errors.load(), 1u);
}

TEST_F(LoopServerTest, WatchCallsStreamsThroughAndTheClientsCancelReachesGrpcsServer) {
  grpc::ClientContext context;
  Authorize(&context);
  auto reader = stub_->WatchCalls(&context, v1::WatchCallsRequest());
  v1::WatchCallsResponse change;
  ASSERT_TRUE(reader->Read(&change));  // the call already there
  v1::CallInfo info;
  info.set_call_id("call-2");
  info.set_listener("main");
  ASSERT_TRUE(registry_.Add(info, {}).ok());
  bool seen = false;
  while (!seen && reader->Read(&change)) {
    seen = change.has_started() && change.started().call_id() == "call-2";
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(streams_.open(), 1u);  // gRPC's WatchCalls stream
  context.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The cancel went through to gRPC's server, whose stream ended.
  EXPECT_TRUE(Eventually([&] { return streams_.open() == 0; }));
}

TEST_F(LoopServerTest, AWatcherThatDoesNotReadIsCutOffOnceTheBridgeHoldsTheBoundForIt) {
  // Without BDP probing the client's stream window stays at 64 KiB, so what
  // it does not read waits in the bridge rather than in its own transport.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                           grpc::InsecureChannelCredentials(), args);
  auto stub = v1::BridgeService::NewStub(channel);
  grpc::ClientContext context;
  Authorize(&context);
  context.set_deadline(absl::ToChronoTime(absl::Now() + kWait));
  auto reader = stub->WatchCalls(&context, v1::WatchCallsRequest());
  ASSERT_TRUE(Eventually([&] { return streams_.open() == 1; }));  // gRPC's WatchCalls stream

  // Calls with 64 KiB peer addresses, a MiB of changes at a time, until the
  // bridge cancels gRPC's stream; without the bound it never would, and the
  // changes stop at four times the bound.
  const std::string padding(64 << 10, 'p');
  size_t produced = 0;
  for (int i = 0; streams_.open() == 1 && produced < 4 * ProxyStream::kMaxBufferedBytes; ++i) {
    v1::CallInfo info;
    info.set_call_id(absl::StrCat("big-", i));
    info.set_listener("bulk");
    info.set_peer_address(padding);
    ASSERT_TRUE(registry_.Add(info, {}).ok());
    produced += padding.size();
    if (i % 16 == 15) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(Eventually([&] { return streams_.open() == 0; }));

  v1::WatchCallsResponse change;
  while (reader->Read(&change)) {
  }
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("read the response more slowly"));

  // The connection and the bridge's path to gRPC's server still serve. Only
  // "main": the bulk calls together pass the client's 4 MiB message limit.
  grpc::ClientContext list_context;
  Authorize(&list_context);
  v1::ListCallsRequest main_only;
  main_only.set_listener("main");
  v1::ListCallsResponse list;
  status = stub->ListCalls(&list_context, main_only, &list);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(list.calls_size(), 1);
  EXPECT_EQ(list.calls(0).call_id(), "call-1");
}

// Takes every method gRPC's server does not otherwise have and never reads
// its requests, so whatever a client sends it waits in the bridge.
class StalledService final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    return new Reactor(this);
  }
  int cancelled() const { return cancelled_.load(); }

 private:
  class Reactor final : public grpc::ServerGenericBidiReactor {
   public:
    explicit Reactor(StalledService* service) : service_(service) {}
    void OnCancel() override {
      service_->cancelled_++;
      Finish(grpc::Status::CANCELLED);
    }
    void OnDone() override { delete this; }

   private:
    StalledService* const service_;
  };

  std::atomic<int> cancelled_{0};
};

class LoopServerStalledServiceTest : public LoopServerTest {
 protected:
  void AddToInnerServer(grpc::ServerBuilder* builder) override {
    builder->RegisterCallbackGenericService(&stalled_);
  }
  void TearDown() override {
    LoopServerTest::TearDown();
    inner_.reset();  // its reactors point into stalled_
  }

  StalledService stalled_;
};

TEST_F(LoopServerStalledServiceTest,
       ASenderTheServiceDoesNotReadIsCutOffOnceTheBridgeHoldsTheBound) {
  // HandleCall is not among gRPC's server's services: the stalled one takes it.
  auto handler = v1::CallHandlerService::NewStub(channel_);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kWait));
  auto stream = handler->HandleCall(&context);
  v1::HandleCallRequest request;
  request.mutable_event()->mutable_audio()->set_pcm(std::string(1 << 20, '\0'));
  // Without the bound the bridge would take all of it.
  size_t sent = 0;
  while (sent < 4 * ProxyStream::kMaxBufferedBytes && stream->Write(request)) {
    sent += request.event().audio().pcm().size();
  }
  EXPECT_LT(sent, 4 * ProxyStream::kMaxBufferedBytes);
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("faster than the bridge's service took them"));
  // The bridge cancelled the stream toward gRPC's server.
  EXPECT_TRUE(Eventually([&] { return stalled_.cancelled() == 1; }));

  // The bridge still serves other calls.
  grpc::ClientContext list_context;
  Authorize(&list_context);
  v1::ListCallsResponse list;
  status = stub_->ListCalls(&list_context, v1::ListCallsRequest(), &list);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(list.calls_size(), 1);
}

TEST_F(LoopServerTest, ShutdownEndsIdleClaimsWithUnavailableThenClosesConnections) {
  grpc::ClientContext context;
  Authorize(&context);
  auto stream = stub_->ClaimCall(&context);
  v1::ClaimCallRequest claim;
  claim.mutable_claim();
  ASSERT_TRUE(stream->Write(claim));
  ASSERT_TRUE(Eventually([&] { return dispatcher_.idle_slots() == 1; }));
  service_->EndIdleStreams();
  v1::ClaimCallResponse response;
  EXPECT_FALSE(stream->Read(&response));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));
  EXPECT_TRUE(streams_.WaitIdle(absl::Now() + kWait));

  server_->StopAccepting();
  server_->Close();
  grpc::ClientContext after;
  Authorize(&after);
  after.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  v1::ListCallsResponse list;
  EXPECT_FALSE(stub_->ListCalls(&after, v1::ListCallsRequest(), &list).ok());
}

}  // namespace
}  // namespace audiosocket
