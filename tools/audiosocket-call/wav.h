#ifndef AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_WAV_H_
#define AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_WAV_H_

// lib/audio's WAV reading, writing and resampling, by the short names the
// emulator and its tests use.

#include "lib/audio/wav.h"

namespace audiosocket::call {

using audio::EncodeWav;
using audio::ParseWav;
using audio::ReadWavFile;
using audio::Resample;
using audio::WavAudio;
using audio::WavWriter;

}  // namespace audiosocket::call

#endif  // AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_WAV_H_
