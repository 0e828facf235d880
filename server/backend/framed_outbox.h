#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_FRAMED_OUTBOX_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_FRAMED_OUTBOX_H_

// An EventOutbox whose message in flight is held as gRPC-framed bytes, for
// the links on the loops' own HTTP/2 (LoopPushLink, LoopClaimStream): the
// connection pulls the stream's body in pieces of whatever size HTTP/2 can
// send, and a message counts as written once its last byte was taken.
// `Message` (HandleCallRequest, ClaimCallResponse) holds the event as its
// only field: the queue keeps bare CallEvents and the wrapper's encoding,
// that field's tag and length, is written in front of each, so no wrapper
// message is built, moved into and freed per event.
//
// Not thread-safe: used on its link's loop.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "lib/grpc_client/message_reader.h"
#include "server/backend/event_outbox.h"
#include "server/ops/latency_histogram.h"

namespace audiosocket {

template <typename Message>
class FramedOutbox {
 public:
  explicit FramedOutbox(size_t max_audio_events) : events_(max_audio_events) {}

  // The queue itself: bounds, drops, overflow.
  EventOutbox<bridge::v1::CallEvent>& events() { return events_; }
  const EventOutbox<bridge::v1::CallEvent>& events() const { return events_; }
  bool idle() const { return events_.idle(); }

  // Queues `event`. Returns true when nothing was in flight: the stream's
  // body, paused for lack of bytes, has some again.
  bool Push(bridge::v1::CallEvent&& event, event::MonoTime now) {
    const bool was_idle = events_.Push(std::move(event), now);
    if (was_idle) FrameInFlight();
    return was_idle;
  }

  // An emptied audio event to fill and Push (EventOutbox::TakeSpareAudioEvent).
  bridge::v1::CallEvent TakeSpareAudioEvent() { return events_.TakeSpareAudioEvent(); }

  // Copies up to `size` bytes of framed messages to `out`. Each audio event
  // written whole is observed in `inbound_latency` (when set): the time
  // from its queueing to HTTP/2 taking its last byte.
  size_t Read(uint8_t* out, size_t size, LatencyHistogram* inbound_latency) {
    size_t copied = 0;
    while (copied < size && !events_.idle()) {
      const size_t n = std::min(size - copied, bytes_.size() - offset_);
      std::memcpy(out + copied, bytes_.data() + offset_, n);
      copied += n;
      offset_ += n;
      if (offset_ < bytes_.size()) break;  // the frame is full
      if (inbound_latency != nullptr && events_.in_flight().has_audio()) {
        inbound_latency->Observe(event::MonoClock::now() - events_.in_flight_since());
      }
      if (events_.WriteDone()) FrameInFlight();
    }
    return copied;
  }

 private:
  using WireFormatLite = google::protobuf::internal::WireFormatLite;
  using CodedOutputStream = google::protobuf::io::CodedOutputStream;
  static constexpr uint32_t kEventTag = WireFormatLite::MakeTag(
      Message::kEventFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  static_assert(kEventTag < 0x80, "the event field's tag is one byte");

  void FrameInFlight() {
    const bridge::v1::CallEvent& event = events_.in_flight();
    const bool audio = event.has_audio();
    const size_t chunk_size = audio ? AudioChunkSize(event.audio()) : 0;
    const size_t event_size =
        audio ? 1 + VarintSize(chunk_size) + chunk_size : event.ByteSizeLong();
    const size_t size = 1 + VarintSize(event_size) + event_size;
    bytes_.clear();
    grpc_client::AppendMessagePrefix(size, &bytes_);
    bytes_.resize(grpc_client::kMessagePrefixBytes + size);
    uint8_t* out = reinterpret_cast<uint8_t*>(bytes_.data()) + grpc_client::kMessagePrefixBytes;
    *out++ = static_cast<uint8_t>(kEventTag);
    out = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(event_size), out);
    if (audio) {
      *out++ = kAudioTag;
      out = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(chunk_size), out);
      WriteAudioChunk(event.audio(), out);
    } else {
      event.SerializeWithCachedSizesToArray(out);
    }
    offset_ = 0;
  }

  // The audio event, sent every frame, is encoded here rather than by
  // protobuf's generic size and serialize passes over the oneof: byte for
  // byte what protobuf writes (fields in number order, zeros left out;
  // framed_outbox_test compares the two). The queue's events are the
  // bridge's own, built field by field, so they carry no unknown fields.
  static constexpr uint8_t kAudioTag = WireFormatLite::MakeTag(
      bridge::v1::CallEvent::kAudioFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  static constexpr uint8_t kPcmTag = WireFormatLite::MakeTag(
      bridge::v1::AudioChunk::kPcmFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  static constexpr uint8_t kRateTag = WireFormatLite::MakeTag(
      bridge::v1::AudioChunk::kSampleRateHzFieldNumber, WireFormatLite::WIRETYPE_VARINT);
  static constexpr uint8_t kSequenceTag = WireFormatLite::MakeTag(
      bridge::v1::AudioChunk::kSequenceNumberFieldNumber, WireFormatLite::WIRETYPE_VARINT);
  static constexpr uint8_t kOffsetTag = WireFormatLite::MakeTag(
      bridge::v1::AudioChunk::kOffsetSamplesFieldNumber, WireFormatLite::WIRETYPE_VARINT);

  static size_t VarintSize(uint64_t value) { return CodedOutputStream::VarintSize64(value); }

  static size_t AudioChunkSize(const bridge::v1::AudioChunk& chunk) {
    const size_t pcm = chunk.pcm().size();
    return (pcm != 0 ? 1 + VarintSize(pcm) + pcm : 0) +
           (chunk.sample_rate_hz() != 0 ? 1 + VarintSize(chunk.sample_rate_hz()) : 0) +
           (chunk.sequence_number() != 0 ? 1 + VarintSize(chunk.sequence_number()) : 0) +
           (chunk.offset_samples() != 0 ? 1 + VarintSize(chunk.offset_samples()) : 0);
  }

  static uint8_t* WriteAudioChunk(const bridge::v1::AudioChunk& chunk, uint8_t* out) {
    const std::string& pcm = chunk.pcm();
    if (!pcm.empty()) {
      *out++ = kPcmTag;
      out = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(pcm.size()), out);
      std::memcpy(out, pcm.data(), pcm.size());
      out += pcm.size();
    }
    const auto varint_field = [&out](uint8_t tag, uint64_t value) {
      if (value == 0) return;
      *out++ = tag;
      out = CodedOutputStream::WriteVarint64ToArray(value, out);
    };
    varint_field(kRateTag, chunk.sample_rate_hz());
    varint_field(kSequenceTag, chunk.sequence_number());
    varint_field(kOffsetTag, chunk.offset_samples());
    return out;
  }

  EventOutbox<bridge::v1::CallEvent> events_;
  std::string bytes_;  // the framed message in flight
  size_t offset_ = 0;  // how much of it HTTP/2 has taken
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_FRAMED_OUTBOX_H_
