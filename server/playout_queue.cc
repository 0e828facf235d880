#include "server/playout_queue.h"

#include <algorithm>
#include <cstring>

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

absl::Status PlayoutQueue::EnqueueAudio(absl::Span<const int16_t> samples,
                                        const std::string& response_id) {
  if (samples.empty()) return absl::OkStatus();
  if (buffered_samples_ + samples.size() > MsToSamples(config_.max_buffer_ms)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "playout buffer full: ", buffered_ms(), " ms queued, limit ", config_.max_buffer_ms,
        " ms; wait for the low-watermark event before sending more"));
  }
  if (!drained_response_.empty() && response_id == drained_response_) {
    ++underruns_;
    Notice(PlayoutNotice::Type::kUnderrun, response_id);
  }
  drained_response_.clear();
  // Appending to a trailing item of the same response keeps the queue short
  // when a backend streams small chunks.
  if (!items_.empty()) {
    if (auto* last = std::get_if<AudioItem>(&items_.back());
        last != nullptr && last->response_id == response_id) {
      last->samples.insert(last->samples.end(), samples.begin(), samples.end());
      buffered_samples_ += samples.size();
      queued_[response_id] += samples.size();
      CheckWatermarks();
      return absl::OkStatus();
    }
  }
  AudioItem item;
  item.samples.assign(samples.begin(), samples.end());
  item.response_id = response_id;
  items_.push_back(std::move(item));
  buffered_samples_ += samples.size();
  queued_[response_id] += samples.size();
  CheckWatermarks();
  return absl::OkStatus();
}

void PlayoutQueue::EnqueueMark(std::string name) { items_.push_back(MarkItem{std::move(name)}); }

void PlayoutQueue::EnqueueDtmf(std::string digits, uint32_t tone_ms, uint32_t gap_ms,
                               std::string command_id, bool inband) {
  DtmfItem item;
  item.digits = std::move(digits);
  item.tone_samples = MsToSamples(tone_ms);
  item.gap_samples = MsToSamples(gap_ms);
  item.tone_ms = tone_ms;
  item.command_id = std::move(command_id);
  item.inband = inband;
  items_.push_back(std::move(item));
  drained_response_.clear();
}

void PlayoutQueue::EnqueueHangup() { items_.push_back(HangupItem{}); }

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
      const size_t n = std::min(frame.size() - filled, audio->samples.size() - audio->position);
      std::memcpy(frame.data() + filled, audio->samples.data() + audio->position,
                  n * sizeof(int16_t));
      audio->position += n;
      filled += n;
      had_content = true;
      buffered_samples_ -= n;
      played_[audio->response_id] += n;
      uint64_t& queued = queued_[audio->response_id];
      queued -= n;
      if (playing_response_ != audio->response_id) {
        // The previous response finished; forget it unless audio remains.
        if (queued_.contains(playing_response_) && queued_[playing_response_] == 0) {
          queued_.erase(playing_response_);
          played_.erase(playing_response_);
        }
        playing_response_ = audio->response_id;
      }
      if (audio->position == audio->samples.size()) items_.pop_front();
    } else if (auto* mark = std::get_if<MarkItem>(&front)) {
      // Audio before the mark is in this frame or already written.
      Notice(PlayoutNotice::Type::kMarkPlayed, std::move(mark->name));
      items_.pop_front();
    } else if (auto* dtmf = std::get_if<DtmfItem>(&front)) {
      bool done = false;
      filled += FillDtmf(*dtmf, frame.subspan(filled), &done);
      had_content = true;
      if (done) {
        Notice(PlayoutNotice::Type::kDtmfDone, std::move(dtmf->command_id));
        items_.pop_front();
      }
    } else {
      hangup_reached_ = true;
      items_.pop_front();
      Notice(PlayoutNotice::Type::kHangup);
    }
  }
  // Marks and a hang-up right after the audio this frame ended with take
  // effect now, not a frame later.
  while (!items_.empty() && !hangup_reached_) {
    if (auto* mark = std::get_if<MarkItem>(&items_.front())) {
      Notice(PlayoutNotice::Type::kMarkPlayed, std::move(mark->name));
    } else if (std::holds_alternative<HangupItem>(items_.front())) {
      hangup_reached_ = true;
      Notice(PlayoutNotice::Type::kHangup);
    } else {
      break;
    }
    items_.pop_front();
  }
  if (filled < frame.size()) {
    std::fill(frame.begin() + filled, frame.end(), 0);
    if (had_content && items_.empty() && !playing_response_.empty()) {
      // Ran dry inside or at the end of a response; an underrun if more of
      // the same response arrives later.
      drained_response_ = playing_response_;
    }
    if (had_content && items_.empty()) Notice(PlayoutNotice::Type::kDrained, playing_response_);
  } else if (had_content && items_.empty()) {
    drained_response_ = playing_response_;
    Notice(PlayoutNotice::Type::kDrained, playing_response_);
  }
  CheckWatermarks();
  return had_content;
}

ClearReport PlayoutQueue::Clear(const std::string& response_id) {
  ClearReport report;
  const bool all = response_id.empty();
  absl::flat_hash_map<std::string, uint64_t> discarded;
  std::deque<Item> kept;
  for (Item& item : items_) {
    if (auto* audio = std::get_if<AudioItem>(&item)) {
      if (all || audio->response_id == response_id) {
        const uint64_t n = audio->samples.size() - audio->position;
        discarded[audio->response_id] += n;
        buffered_samples_ -= n;
        continue;
      }
    } else if (auto* mark = std::get_if<MarkItem>(&item)) {
      if (all) {
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
        Notice(PlayoutNotice::Type::kDtmfCancelled, std::move(dtmf->command_id));
        continue;
      }
    }
    kept.push_back(std::move(item));
  }
  items_.swap(kept);
  // Every response touched: the one playing and each with audio discarded.
  if (played_.contains(playing_response_) && (all || playing_response_ == response_id)) {
    discarded.try_emplace(playing_response_, 0);
  }
  for (const auto& [id, samples] : discarded) {
    ResponseAccount account;
    account.response_id = id;
    account.discarded_samples = samples;
    auto played = played_.find(id);
    account.played_samples = played == played_.end() ? 0 : played->second;
    report.discarded_samples += samples;
    report.responses.push_back(std::move(account));
    queued_.erase(id);
    played_.erase(id);
  }
  std::sort(report.responses.begin(), report.responses.end(),
            [](const ResponseAccount& a, const ResponseAccount& b) {
              return a.response_id < b.response_id;
            });
  if (discarded.contains(playing_response_)) playing_response_.clear();
  drained_response_.clear();
  CheckWatermarks();
  return report;
}

std::vector<PlayoutNotice> PlayoutQueue::Abandon() {
  for (Item& item : items_) {
    if (auto* mark = std::get_if<MarkItem>(&item)) {
      Notice(PlayoutNotice::Type::kMarkCleared, std::move(mark->name));
    } else if (auto* dtmf = std::get_if<DtmfItem>(&item)) {
      Notice(PlayoutNotice::Type::kDtmfCancelled, std::move(dtmf->command_id));
    }
  }
  items_.clear();
  buffered_samples_ = 0;
  return TakeNotices();
}

std::vector<PlayoutNotice> PlayoutQueue::TakeNotices() {
  std::vector<PlayoutNotice> out;
  out.swap(notices_);
  return out;
}

}  // namespace audiosocket
