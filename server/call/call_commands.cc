#include "server/call/call_commands.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/ops/quote.h"

namespace audiosocket {
namespace {

using bridge::v1::CallCommand;

bool ValidDtmfDigits(const std::string& digits) {
  if (digits.empty()) return false;
  for (char c : digits) {
    if (!wire::IsDtmfDigit(c)) return false;
  }
  return true;
}

}  // namespace

void CallCommands::Execute(const CallCommand& command, Playout& playout, int backend_rate_hz) {
  switch (command.command_case()) {
    case CallCommand::kPlay: {
      const bridge::v1::PlayAudio& play = command.play();
      Play(PlayRequest{command.command_id(), play.pcm(), play.sample_rate_hz(), play.response_id()},
           playout, backend_rate_hz);
      return;
    }
    case CallCommand::kMark:
      if (absl::Status queued = playout.queue().EnqueueMark(command.mark().name()); !queued.ok()) {
        Reply(command, bridge::v1::RESULT_CODE_RESOURCE_EXHAUSTED, std::string(queued.message()));
        return;
      }
      Reply(command, bridge::v1::RESULT_CODE_OK, "");
      return;
    case CallCommand::kClear:
      Clear(command, playout);
      return;
    case CallCommand::kSendDtmf:
      SendDtmf(command, playout);
      return;
    case CallCommand::kSendControl:
      SendControl(command);
      return;
    case CallCommand::kHangup:
      Reply(command, bridge::v1::RESULT_CODE_OK, "");
      host_->HangupFromBackend(command.hangup().after_playout());
      return;
    default:
      Reply(command, bridge::v1::RESULT_CODE_INVALID_ARGUMENT,
            "the command is empty or of a kind this bridge does not know");
      return;
  }
}

void CallCommands::Play(const PlayRequest& play, Playout& playout, int backend_rate_hz) {
  const uint32_t rate =
      play.sample_rate_hz == 0 ? static_cast<uint32_t>(backend_rate_hz) : play.sample_rate_hz;
  if (play.pcm.size() % 2 != 0) {
    Reply(play, bridge::v1::RESULT_CODE_INVALID_ARGUMENT,
          absl::StrCat("pcm has ", play.pcm.size(),
                       " bytes; LINEAR16 audio needs an even number of bytes"));
    return;
  }
  if (!wire::AudioKindForRate(static_cast<int>(rate)).has_value()) {
    Reply(play, bridge::v1::RESULT_CODE_INVALID_ARGUMENT,
          absl::StrCat("sample_rate_hz ", rate,
                       " is not supported; use 0 (the backend rate) or an AudioSocket rate "
                       "(8000 ... 192000 Hz)"));
    return;
  }
  if (absl::Status prepared = playout.converter().Prepare(static_cast<int>(rate)); !prepared.ok()) {
    Reply(play, bridge::v1::RESULT_CODE_INVALID_ARGUMENT, std::string(prepared.message()));
    return;
  }
  // The queue checks the room in output samples before it copies anything,
  // and converts at most a slice at a time as playout reaches the audio:
  // the work a message costs here is bounded whatever its size and rate.
  absl::Status queued =
      playout.queue().EnqueuePcm(play.pcm, static_cast<int>(rate), play.response_id);
  if (!queued.ok()) {
    Reply(play, bridge::v1::RESULT_CODE_RESOURCE_EXHAUSTED, std::string(queued.message()));
    return;
  }
  Reply(play, bridge::v1::RESULT_CODE_OK, "");
  playout.FlushNotices();
}

void CallCommands::Clear(const CallCommand& command, Playout& playout) {
  ClearReport report = playout.queue().Clear(command.clear().response_id());
  bridge::v1::CallEvent event;
  auto* cleared = event.mutable_cleared();
  cleared->set_command_id(command.command_id());
  const auto to_ms = [rate = playout.rate_hz()](uint64_t samples) {
    return static_cast<uint32_t>(samples * 1000 / static_cast<uint64_t>(rate));
  };
  for (const ResponseAccount& account : report.responses) {
    auto* response = cleared->add_responses();
    response->set_response_id(account.response_id);
    response->set_played_ms(to_ms(account.played_samples));
    response->set_discarded_ms(to_ms(account.discarded_samples));
  }
  cleared->set_discarded_ms(to_ms(report.discarded_samples));
  host_->SendToBackend(std::move(event));
  // Then the marks and DTMF the clear resolved.
  playout.FlushNotices();
}

void CallCommands::SendDtmf(const CallCommand& command, Playout& playout) {
  const bridge::v1::SendDtmf& dtmf = command.send_dtmf();
  const uint32_t tone_ms = dtmf.tone_ms() == 0 ? 100 : dtmf.tone_ms();
  const uint32_t gap_ms = dtmf.gap_ms() == 0 ? 50 : dtmf.gap_ms();
  if (tone_ms < 40 || gap_ms < 30 || tone_ms > 10000 || gap_ms > 10000) {
    Reply(command, bridge::v1::RESULT_CODE_INVALID_ARGUMENT,
          absl::StrCat("tone_ms must be 40-10000 and gap_ms 30-10000 (got ", tone_ms, " and ",
                       gap_ms, ")"));
    return;
  }
  if (!ValidDtmfDigits(dtmf.digits())) {
    Reply(command, bridge::v1::RESULT_CODE_INVALID_ARGUMENT,
          absl::StrCat("digits ", QuoteForError(dtmf.digits()),
                       " must be one or more of 0-9 * # A-D"));
    return;
  }
  // Digits that could never fit are refused before they are copied (a
  // message holds at most gRPC's 4 MiB, so the scan above is bounded too).
  const uint64_t total_ms = dtmf.digits().size() * static_cast<uint64_t>(tone_ms + gap_ms);
  if (total_ms > static_cast<uint64_t>(max_playout_ms_)) {
    Reply(command, bridge::v1::RESULT_CODE_RESOURCE_EXHAUSTED,
          absl::StrCat(dtmf.digits().size(), " digit(s) take ", total_ms,
                       " ms to play, more than --max_playout_ms (", max_playout_ms_,
                       " ms); send fewer at a time"));
    return;
  }
  // Stock Asterisk takes DTMF only as tones in the audio; the extended
  // dialect signals it with 0x02 start/stop. Either way the result is sent
  // when the last tone has played (kDtmfDone).
  if (absl::Status queued =
          playout.queue().EnqueueDtmf(dtmf.digits(), tone_ms, gap_ms, command.command_id(),
                                      /*inband=*/dialect_ == wire::Dialect::kAsterisk);
      !queued.ok()) {
    Reply(command, bridge::v1::RESULT_CODE_RESOURCE_EXHAUSTED, std::string(queued.message()));
  }
}

void CallCommands::SendControl(const CallCommand& command) {
  if (dialect_ == wire::Dialect::kAsterisk) {
    Reply(command, bridge::v1::RESULT_CODE_UNSUPPORTED,
          "stock Asterisk hangs up on control messages; use a listener with dialect=extended");
    return;
  }
  const bridge::v1::SendControl& control = command.send_control();
  const uint32_t code = control.type() != bridge::v1::CONTROL_TYPE_UNSPECIFIED
                            ? static_cast<uint32_t>(control.type())
                            : control.raw_code();
  if (code == 0 || code > 255) {
    Reply(command, bridge::v1::RESULT_CODE_INVALID_ARGUMENT,
          absl::StrCat("control code ", code, " is out of range; set type or raw_code 1-255"));
    return;
  }
  if (!host_->WriteToCaller(wire::Control{static_cast<uint8_t>(code)})) {
    Reply(command, bridge::v1::RESULT_CODE_CALL_ENDED, "the caller is gone");
    return;
  }
  Reply(command, bridge::v1::RESULT_CODE_OK, "");
}

}  // namespace audiosocket
