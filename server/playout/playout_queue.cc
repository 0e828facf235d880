// Longer than the ~400 lines a server file aims at, for a reason: the
// queue's accounting (what was played, cleared or discarded, per response,
// in samples) must stay in one place for the results to add up exactly.

#include "server/playout/playout_queue.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace audiosocket {

PlayoutQueue::PlayoutQueue(PlayoutConfig config)
    : config_(config), samples_per_frame_(config.sample_rate_hz * config.frame_ms / 1000) {}

uint64_t PlayoutQueue::MsToSamples(uint32_t ms) const {
  return static_cast<uint64_t>(ms) * config_.sample_rate_hz / 1000;
}

uint32_t PlayoutQueue::SamplesToMs(uint64_t samples) const {
  return static_cast<uint32_t>(samples * 1000 / config_.sample_rate_hz);
}

uint32_t PlayoutQueue::buffered_ms() const { return SamplesToMs(buffered_samples_); }

void PlayoutQueue::Notice(PlayoutNotice::Type type, std::string name) {
  PlayoutNotice notice;
  notice.type = type;
  notice.name = std::move(name);
  notice.buffered_ms = buffered_ms();
  notices_.push_back(std::move(notice));
}

void PlayoutQueue::CheckWatermarks() {
  const uint32_t ms = buffered_ms();
  if (!above_high_ && ms >= static_cast<uint32_t>(config_.high_watermark_ms)) {
    above_high_ = true;
    Notice(PlayoutNotice::Type::kHighWatermark);
  } else if (above_high_ && ms <= static_cast<uint32_t>(config_.low_watermark_ms)) {
    above_high_ = false;
    Notice(PlayoutNotice::Type::kLowWatermark);
  }
}

uint64_t PlayoutQueue::OutputSamples(uint64_t input_samples, int input_rate_hz) const {
  if (input_rate_hz == config_.sample_rate_hz) return input_samples;
  return input_samples * static_cast<uint64_t>(config_.sample_rate_hz) /
         static_cast<uint64_t>(input_rate_hz);
}

absl::Status PlayoutQueue::CheckRoom(uint64_t samples, size_t bytes, absl::string_view what) const {
  const uint64_t limit = MsToSamples(config_.max_buffer_ms);
  const uint64_t queued = buffered_samples_ + dtmf_samples_;
  if (samples > limit || queued + samples > limit) {
    return absl::ResourceExhaustedError(
        absl::StrCat("playout buffer full: ", SamplesToMs(queued), " ms queued (audio and DTMF), ",
                     what, " adds ", SamplesToMs(samples), " ms, limit ", config_.max_buffer_ms,
                     " ms; wait for the low-watermark event before sending more"));
  }
  if (bytes > config_.max_item_bytes || item_bytes_ + bytes > config_.max_item_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("playout queue full: its marks, DTMF and response ids hold ", item_bytes_,
                     " bytes, ", what, " adds ", bytes, ", limit ", config_.max_item_bytes, " (",
                     kItemOverheadBytes, " per item plus its strings); wait for marks to resolve"));
  }
  return absl::OkStatus();
}

size_t PlayoutQueue::ItemBytes(const Item& item) {
  if (const auto* audio = std::get_if<AudioItem>(&item)) {
    return kItemOverheadBytes + audio->response_id.size();
  }
  if (const auto* mark = std::get_if<MarkItem>(&item))
    return kItemOverheadBytes + mark->name.size();
  if (const auto* dtmf = std::get_if<DtmfItem>(&item)) {
    return kItemOverheadBytes + dtmf->digits.size() + dtmf->command_id.size();
  }
  return kItemOverheadBytes;
}

uint64_t PlayoutQueue::DtmfRemaining(const DtmfItem& item) {
  const uint64_t per_digit = item.tone_samples + item.gap_samples;
  return (item.digits.size() - item.digit_index) * per_digit - item.position;
}

void PlayoutQueue::PushItem(Item item) {
  item_bytes_ += ItemBytes(item);
  items_.push_back(std::move(item));
}

void PlayoutQueue::PopFront() {
  item_bytes_ -= ItemBytes(items_.front());
  if (auto* audio = std::get_if<AudioItem>(&items_.front())) {
    // Kept for the next item: a backend streaming frame by frame makes an
    // item per frame, each played out before the next arrives.
    std::vector<int16_t>& used =
        audio->samples.capacity() >= audio->input.capacity() ? audio->samples : audio->input;
    if (used.capacity() <= kSpareSamplesMax && used.capacity() > spare_samples_.capacity()) {
      used.clear();
      spare_samples_.swap(used);
    }
  }
  items_.pop_front();
}

PlayoutQueue::ResponseAudio& PlayoutQueue::Response(absl::string_view response_id) {
  if (last_response_ == nullptr || last_response_id_ != response_id) {
    last_response_ = &responses_[response_id];
    last_response_id_.assign(response_id.data(), response_id.size());
  }
  return *last_response_;
}

void PlayoutQueue::EraseResponse(absl::string_view response_id) {
  if (last_response_ != nullptr && last_response_id_ == response_id) last_response_ = nullptr;
  responses_.erase(response_id);
}

void PlayoutQueue::Recount(absl::string_view response_id, int64_t delta) {
  buffered_samples_ = static_cast<uint64_t>(static_cast<int64_t>(buffered_samples_) + delta);
  uint64_t& queued = Response(response_id).queued;
  queued = static_cast<uint64_t>(static_cast<int64_t>(queued) + delta);
}

absl::Status PlayoutQueue::EnqueueAudio(absl::Span<const int16_t> samples,
                                        absl::string_view response_id) {
  return Enqueue(samples.size(), config_.sample_rate_hz, response_id, [&samples](int16_t* out) {
    std::memcpy(out, samples.data(), samples.size() * sizeof(int16_t));
  });
}

absl::Status PlayoutQueue::EnqueuePcm(absl::string_view pcm, int input_rate_hz,
                                      absl::string_view response_id) {
  // memcpy, not a cast: protobuf's bytes carry no alignment promise.
  return Enqueue(pcm.size() / sizeof(int16_t), input_rate_hz, response_id,
                 [&pcm](int16_t* out) { std::memcpy(out, pcm.data(), pcm.size()); });
}

absl::Status PlayoutQueue::Enqueue(size_t count, int input_rate_hz, absl::string_view response_id,
                                   absl::FunctionRef<void(int16_t*)> copy) {
  if (count == 0) return absl::OkStatus();
  const bool convert = input_rate_hz != config_.sample_rate_hz;
  if (convert && converter_ == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("audio at ", input_rate_hz,
                                                   " Hz cannot be converted to ",
                                                   config_.sample_rate_hz, " Hz here"));
  }
  AudioItem* last = items_.empty() ? nullptr : std::get_if<AudioItem>(&items_.back());
  // Audio of the response queued last joins its item while what is left to
  // play of it fits in a spare-sized vector; past that it starts the next
  // item. A prompt sent ahead thus sits in vectors of at most
  // kSpareSamplesMax, each reused as the spare once played, instead of one
  // vector regrown (and copied) to half again its size.
  const auto fits = [&](const AudioItem& item) {
    const size_t unplayed =
        convert ? item.input.size() - item.input_position : item.samples.size() - item.position;
    return unplayed == 0 || unplayed + count <= kSpareSamplesMax;
  };
  const bool append = last != nullptr && last->response_id == response_id &&
                      last->input_rate_hz == (convert ? input_rate_hz : 0) && fits(*last);
  // The bound first, in output samples, before anything is copied or
  // converted: refusing must cost nothing.
  const uint64_t pending_before = append && convert ? last->pending_samples : 0;
  const uint64_t pending_after =
      convert ? OutputSamples((append ? last->input.size() - last->input_position : 0) + count,
                              input_rate_hz)
              : 0;
  const uint64_t added = convert ? pending_after - pending_before : count;
  const size_t bytes = append ? 0 : kItemOverheadBytes + response_id.size();
  if (absl::Status room = CheckRoom(added, bytes, "this audio"); !room.ok()) return room;

  if (!starved_response_.empty() && response_id == starved_response_) {
    ++underruns_;
    Notice(PlayoutNotice::Type::kUnderrun, std::string(response_id));
  }
  starved_response_.clear();
  // Most audio continues the response already open: no copy then.
  if (open_response_ != response_id) open_response_.assign(response_id.data(), response_id.size());
  if (!append) {
    AudioItem item;
    item.response_id = std::string(response_id);
    item.input_rate_hz = convert ? input_rate_hz : 0;
    (convert ? item.input : item.samples).swap(spare_samples_);
    PushItem(std::move(item));
    last = &std::get<AudioItem>(items_.back());
  }
  std::vector<int16_t>& into = convert ? last->input : last->samples;
  const size_t used = convert ? last->input_position : last->position;
  // Drop what has been played or converted once it is half the vector or
  // more, when the vector would otherwise grow (growing copied the played
  // part too: a response played as it streams in regrew past the size the
  // spare keeps) or when it passes 4096 samples (a response streamed for an
  // hour must not keep an hour of audio). Each drop moves no more samples
  // than were played since the last: at most one move per sample played.
  if (used > 0 && used * 2 >= into.size() &&
      (into.size() + count > into.capacity() || used > 4096)) {
    into.erase(into.begin(), into.begin() + static_cast<ptrdiff_t>(used));
    (convert ? last->input_position : last->position) = 0;
  }
  const size_t at = into.size();
  if (at + count > into.capacity()) {
    // Half again, not double, and no further than a spare's size while
    // what is wanted fits in one (the vector is then kept as the spare once
    // played). An item grows past that only for a chunk bigger than a
    // spare, or while its played part is under half the vector.
    const size_t grown = into.capacity() + into.capacity() / 2;
    into.reserve(std::max(
        at + count, at + count <= kSpareSamplesMax ? std::min(grown, kSpareSamplesMax) : grown));
  }
  into.resize(at + count);
  copy(into.data() + at);
  if (convert) last->pending_samples = pending_after;
  Recount(response_id, static_cast<int64_t>(added));
  CheckWatermarks();
  return absl::OkStatus();
}

size_t PlayoutQueue::audio_buffer_bytes() const {
  size_t bytes = spare_samples_.capacity() * sizeof(int16_t);
  for (const Item& item : items_) {
    if (const auto* audio = std::get_if<AudioItem>(&item)) {
      bytes += (audio->samples.capacity() + audio->input.capacity()) * sizeof(int16_t);
    }
  }
  return bytes;
}

void PlayoutQueue::ConvertSlice(AudioItem& item, size_t wanted) {
  item.samples.clear();  // all played: ConvertSlice runs only then
  item.position = 0;
  const uint64_t in_rate = static_cast<uint64_t>(item.input_rate_hz);
  const uint64_t out_rate = static_cast<uint64_t>(config_.sample_rate_hz);
  const uint64_t out_target =
      std::max<uint64_t>(wanted, MsToSamples(static_cast<uint32_t>(config_.convert_slice_ms)));
  // Enough input for out_target output samples, plus one for the
  // resampler's fractional phase.
  const size_t left = item.input.size() - item.input_position;
  const size_t take = static_cast<size_t>(
      std::min<uint64_t>(left, (out_target * in_rate + out_rate - 1) / out_rate + 1));
  converter_->Convert(item.input_rate_hz,
                      absl::MakeConstSpan(item.input.data() + item.input_position, take),
                      &item.samples);
  item.input_position += take;
  const uint64_t pending =
      OutputSamples(item.input.size() - item.input_position, item.input_rate_hz);
  // The estimate of what this input would give is replaced by what it gave.
  Recount(item.response_id, static_cast<int64_t>(item.samples.size()) -
                                static_cast<int64_t>(item.pending_samples - pending));
  item.pending_samples = pending;
  if (item.input_position == item.input.size()) {
    item.input.clear();
    item.input.shrink_to_fit();
    item.input_position = 0;
  }
}

absl::Status PlayoutQueue::EnqueueMark(std::string name) {
  if (absl::Status room = CheckRoom(0, kItemOverheadBytes + name.size(), "this mark"); !room.ok()) {
    return room;
  }
  open_response_.clear();
  starved_response_.clear();
  PushItem(MarkItem{std::move(name)});
  return absl::OkStatus();
}

absl::Status PlayoutQueue::EnqueueDtmf(std::string digits, uint32_t tone_ms, uint32_t gap_ms,
                                       std::string command_id, bool inband) {
  DtmfItem item;
  item.tone_samples = MsToSamples(tone_ms);
  item.gap_samples = MsToSamples(gap_ms);
  const uint64_t time = digits.size() * (item.tone_samples + item.gap_samples);
  if (absl::Status room = CheckRoom(time, kItemOverheadBytes + digits.size() + command_id.size(),
                                    absl::StrCat(digits.size(), " DTMF digit(s)"));
      !room.ok()) {
    return room;
  }
  item.digits = std::move(digits);
  item.tone_ms = tone_ms;
  item.command_id = std::move(command_id);
  item.inband = inband;
  dtmf_samples_ += time;
  open_response_.clear();
  starved_response_.clear();
  PushItem(std::move(item));
  return absl::OkStatus();
}

void PlayoutQueue::EnqueueHangup() {
  open_response_.clear();
  starved_response_.clear();
  PushItem(HangupItem{});
}

size_t PlayoutQueue::FillDtmf(DtmfItem& item, absl::Span<int16_t> out, bool* done) {
  size_t written = 0;
  *done = false;
  while (written < out.size() && item.digit_index < item.digits.size()) {
    const char digit = item.digits[item.digit_index];
    const uint64_t total = item.tone_samples + item.gap_samples;
    if (item.position == 0) {
      PlayoutNotice notice;
      notice.type = PlayoutNotice::Type::kDtmfStart;
      notice.digit = digit;
      notice.buffered_ms = buffered_ms();
      notices_.push_back(std::move(notice));
    }
    absl::Span<int16_t> rest = out.subspan(written);
    if (item.position < item.tone_samples) {
      const size_t n =
          static_cast<size_t>(std::min<uint64_t>(rest.size(), item.tone_samples - item.position));
      if (item.inband && tone_renderer_ != nullptr) {
        tone_renderer_->Render(digit, item.position, item.tone_samples, rest.subspan(0, n));
      } else {
        std::fill_n(rest.begin(), n, 0);
      }
      item.position += n;
      written += n;
      dtmf_samples_ -= n;
      if (item.position == item.tone_samples) {
        PlayoutNotice notice;
        notice.type = PlayoutNotice::Type::kDtmfStop;
        notice.digit = digit;
        notice.duration_ms = item.tone_ms;
        notice.buffered_ms = buffered_ms();
        notices_.push_back(std::move(notice));
      }
    } else {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(rest.size(), total - item.position));
      std::fill_n(rest.begin(), n, 0);
      item.position += n;
      written += n;
      dtmf_samples_ -= n;
    }
    if (item.position >= total) {
      item.position = 0;
      ++item.digit_index;
    }
  }
  if (item.digit_index >= item.digits.size()) *done = true;
  return written;
}

bool PlayoutQueue::Tick(absl::Span<int16_t> frame) {
  size_t filled = 0;
  bool had_content = false;
  while (filled < frame.size() && !items_.empty() && !hangup_reached_) {
    Item& front = items_.front();
    if (auto* audio = std::get_if<AudioItem>(&front)) {
      if (audio->position == audio->samples.size() && audio->input_position < audio->input.size()) {
        ConvertSlice(*audio, frame.size() - filled);
      }
      const size_t n = std::min(frame.size() - filled, audio->samples.size() - audio->position);
      std::memcpy(frame.data() + filled, audio->samples.data() + audio->position,
                  n * sizeof(int16_t));
      audio->position += n;
      filled += n;
      had_content |= n > 0;
      buffered_samples_ -= n;
      ResponseAudio& response = Response(audio->response_id);
      response.played += n;
      response.queued -= n;
      if (playing_response_ != audio->response_id) {
        // The previous response finished; forget it unless audio remains.
        auto previous = responses_.find(playing_response_);
        if (previous != responses_.end() && previous->second.queued == 0) {
          EraseResponse(playing_response_);
        }
        playing_response_ = audio->response_id;
      }
      if (audio->position == audio->samples.size() &&
          audio->input_position == audio->input.size()) {
        PopFront();
      }
    } else if (auto* mark = std::get_if<MarkItem>(&front)) {
      // Audio before the mark is in this frame or already written. (Copied,
      // not moved: PopFront counts the name's bytes out.)
      Notice(PlayoutNotice::Type::kMarkPlayed, mark->name);
      PopFront();
    } else if (auto* dtmf = std::get_if<DtmfItem>(&front)) {
      bool done = false;
      filled += FillDtmf(*dtmf, frame.subspan(filled), &done);
      had_content = true;
      if (done) {
        Notice(PlayoutNotice::Type::kDtmfDone, dtmf->command_id);
        PopFront();
      }
    } else {
      hangup_reached_ = true;
      PopFront();
      Notice(PlayoutNotice::Type::kHangup);
    }
  }
  // Marks and a hang-up right after the audio this frame ended with take
  // effect now, not a frame later.
  while (!items_.empty() && !hangup_reached_) {
    if (auto* mark = std::get_if<MarkItem>(&items_.front())) {
      Notice(PlayoutNotice::Type::kMarkPlayed, mark->name);
    } else if (std::holds_alternative<HangupItem>(items_.front())) {
      hangup_reached_ = true;
      Notice(PlayoutNotice::Type::kHangup);
    } else {
      break;
    }
    PopFront();
  }
  if (filled < frame.size()) {
    std::fill(frame.begin() + filled, frame.end(), 0);
    // The caller hears silence after audio: the queue ran dry. Not when the
    // last queued sample merely ended a frame and more came before the
    // next one (a backend streaming at real-time pace): nobody heard a gap.
    if (had_content || last_frame_full_) {
      Notice(PlayoutNotice::Type::kDrained, playing_response_);
      // Inside a response whose audio may still be coming, more of it is an
      // underrun; after a mark, DTMF, hang-up or another response it ended.
      if (!open_response_.empty() && open_response_ == playing_response_) {
        starved_response_ = open_response_;
      }
    }
  }
  last_frame_full_ = had_content && filled == frame.size();
  CheckWatermarks();
  return had_content;
}

ClearReport PlayoutQueue::Clear(const std::string& response_id) {
  ClearReport report;
  const bool all = response_id.empty();
  absl::flat_hash_map<std::string, uint64_t> discarded;
  std::deque<Item> kept;
  // Each mark and DTMF cleared becomes a notice: room for all at once
  // rather than regrowing (and copying) through thousands of them.
  if (all) notices_.reserve_more(items_.size());
  for (Item& item : items_) {
    if (auto* audio = std::get_if<AudioItem>(&item)) {
      if (all || audio->response_id == response_id) {
        // Audio not converted yet counts at its length in output samples.
        const uint64_t n = audio->remaining();
        discarded[audio->response_id] += n;
        buffered_samples_ -= n;
        item_bytes_ -= ItemBytes(item);
        continue;
      }
    } else if (auto* mark = std::get_if<MarkItem>(&item)) {
      if (all) {
        item_bytes_ -= ItemBytes(item);
        Notice(PlayoutNotice::Type::kMarkCleared, std::move(mark->name));
        continue;
      }
    } else if (auto* dtmf = std::get_if<DtmfItem>(&item)) {
      if (all) {
        if (dtmf->position > 0 && dtmf->position <= dtmf->tone_samples) {
          // A tone is sounding: close it so the far end is not left mid-digit.
          PlayoutNotice notice;
          notice.type = PlayoutNotice::Type::kDtmfStop;
          notice.digit = dtmf->digits[dtmf->digit_index];
          notice.duration_ms = SamplesToMs(dtmf->position);
          notices_.push_back(std::move(notice));
        }
        dtmf_samples_ -= DtmfRemaining(*dtmf);
        item_bytes_ -= ItemBytes(item);
        Notice(PlayoutNotice::Type::kDtmfCancelled, std::move(dtmf->command_id));
        continue;
      }
    }
    kept.push_back(std::move(item));
  }
  items_.swap(kept);
  // Every response touched: the one playing and each with audio discarded.
  if (responses_.contains(playing_response_) && (all || playing_response_ == response_id)) {
    discarded.try_emplace(playing_response_, 0);
  }
  for (const auto& [id, samples] : discarded) {
    ResponseAccount account;
    account.response_id = id;
    account.discarded_samples = samples;
    auto response = responses_.find(id);
    account.played_samples = response == responses_.end() ? 0 : response->second.played;
    report.discarded_samples += samples;
    report.responses.push_back(std::move(account));
    EraseResponse(id);
  }
  std::sort(report.responses.begin(), report.responses.end(),
            [](const ResponseAccount& a, const ResponseAccount& b) {
              return a.response_id < b.response_id;
            });
  if (discarded.contains(playing_response_)) playing_response_.clear();
  if (all || discarded.contains(open_response_)) open_response_.clear();
  starved_response_.clear();
  CheckWatermarks();
  return report;
}

PlayoutQueue::Leftovers PlayoutQueue::Abandon() {
  Leftovers leftovers;
  leftovers.notices_ = ReleaseNotices();
  leftovers.items_.swap(items_);
  buffered_samples_ = 0;
  dtmf_samples_ = 0;
  item_bytes_ = 0;
  return leftovers;
}

void PlayoutQueue::Leftovers::Take(size_t max, std::vector<PlayoutNotice>* out) {
  size_t taken = notices_.TakeInto(max, out);
  for (; taken < max && !items_.empty(); ++taken) {
    Item& item = items_.front();
    if (auto* mark = std::get_if<MarkItem>(&item)) {
      out->push_back(PlayoutNotice{PlayoutNotice::Type::kMarkCleared, std::move(mark->name)});
    } else if (auto* dtmf = std::get_if<DtmfItem>(&item)) {
      out->push_back(
          PlayoutNotice{PlayoutNotice::Type::kDtmfCancelled, std::move(dtmf->command_id)});
    }
    items_.pop_front();
  }
}

NoticeList PlayoutQueue::ReleaseNotices() {
  NoticeList released;
  std::swap(released, notices_);
  return released;
}

void PlayoutQueue::AdoptNotices(NoticeList older) { notices_.Prepend(std::move(older)); }

std::vector<PlayoutNotice> PlayoutQueue::TakeNotices() {
  return notices_.Take(std::numeric_limits<size_t>::max());
}

std::vector<PlayoutNotice> PlayoutQueue::TakeNotices(size_t max) { return notices_.Take(max); }

std::vector<PlayoutNotice> NoticeList::Take(size_t max) {
  std::vector<PlayoutNotice> out;
  if (taken_ == 0 && notices_.size() <= max) {
    out.swap(notices_);  // the usual case: a few notices, taken whole
    return out;
  }
  out.reserve(std::min(max, size()));
  TakeInto(max, &out);
  return out;
}

size_t NoticeList::TakeInto(size_t max, std::vector<PlayoutNotice>* out) {
  const size_t n = std::min(max, size());
  for (size_t i = 0; i < n; ++i) out->push_back(std::move(notices_[taken_ + i]));
  taken_ += n;
  if (taken_ == notices_.size()) {
    notices_.clear();
    taken_ = 0;
  }
  return n;
}

void NoticeList::Prepend(NoticeList older) {
  if (older.empty()) return;
  if (empty()) {
    *this = std::move(older);
    return;
  }
  older.notices_.insert(older.notices_.end(),
                        std::make_move_iterator(notices_.begin() + static_cast<ptrdiff_t>(taken_)),
                        std::make_move_iterator(notices_.end()));
  *this = std::move(older);
}

}  // namespace audiosocket
