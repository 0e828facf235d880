/*
 * audiosocket-bridge -- the extended AudioSocket protocol for Asterisk
 *
 * This program is free software, distributed under the terms of
 * the GNU General Public License Version 2. See COPYING in this folder.
 */

/*!
 * \file
 * \brief The extended AudioSocket wire format: parse and encode.
 */

#include "audiosocket_ext_proto.h"

#include <string.h>

static const unsigned int audio_rates[] = {
	8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000,
};

int as_ext_valid_digit(char c)
{
	return (c >= '0' && c <= '9') || c == '*' || c == '#' || (c >= 'A' && c <= 'D');
}

int as_ext_audio_kind_for_rate(unsigned int rate_hz)
{
	size_t i;

	for (i = 0; i < sizeof(audio_rates) / sizeof(audio_rates[0]); i++) {
		if (audio_rates[i] == rate_hz) {
			return AS_EXT_KIND_AUDIO_MIN + (int) i;
		}
	}
	return -1;
}

unsigned int as_ext_rate_for_audio_kind(uint8_t kind)
{
	if (kind < AS_EXT_KIND_AUDIO_MIN || kind > AS_EXT_KIND_AUDIO_MAX) {
		return 0;
	}
	return audio_rates[kind - AS_EXT_KIND_AUDIO_MIN];
}

static void malformed(struct as_ext_msg *msg, const char *problem)
{
	msg->type = AS_EXT_MSG_MALFORMED;
	msg->problem = problem;
}

size_t as_ext_parse(const uint8_t *buf, size_t len, struct as_ext_msg *msg)
{
	uint16_t length;
	const uint8_t *p;

	if (!buf || len < AS_EXT_HEADER_LEN) {
		return 0;
	}
	length = (uint16_t) ((buf[1] << 8) | buf[2]);
	if (len - AS_EXT_HEADER_LEN < length) {
		return 0;
	}

	memset(msg, 0, sizeof(*msg));
	msg->kind = buf[0];
	msg->length = length;
	msg->payload = buf + AS_EXT_HEADER_LEN;
	p = msg->payload;

	switch (msg->kind) {
	case AS_EXT_KIND_HANGUP:
		msg->type = AS_EXT_MSG_HANGUP;
		if (length != 0) {
			malformed(msg, "hangup with a payload");
		}
		break;
	case AS_EXT_KIND_UUID:
		msg->type = AS_EXT_MSG_UUID;
		if (length != 16) {
			malformed(msg, "uuid payload is not 16 bytes");
		}
		break;
	case AS_EXT_KIND_DTMF:
		msg->type = AS_EXT_MSG_DTMF;
		if (length != 6) {
			malformed(msg, "DTMF payload is not 6 bytes");
			break;
		}
		if (p[0] > 1) {
			malformed(msg, "DTMF state is neither 1 (start) nor 0 (stop)");
			break;
		}
		if (!as_ext_valid_digit((char) p[1])) {
			malformed(msg, "DTMF digit is not one of 0-9 * # A-D");
			break;
		}
		msg->dtmf_start = p[0];
		msg->dtmf_digit = (char) p[1];
		msg->dtmf_duration_ms = (uint32_t) p[2] | ((uint32_t) p[3] << 8)
			| ((uint32_t) p[4] << 16) | ((uint32_t) p[5] << 24);
		break;
	case AS_EXT_KIND_CONTROL:
		msg->type = AS_EXT_MSG_CONTROL;
		if (length != 1) {
			malformed(msg, "control payload is not 1 byte");
			break;
		}
		msg->control = p[0];
		break;
	case AS_EXT_KIND_ERROR:
		msg->type = AS_EXT_MSG_ERROR;
		msg->error_flags = length ? p[0] : 0;
		break;
	default:
		if (msg->kind >= AS_EXT_KIND_AUDIO_MIN && msg->kind <= AS_EXT_KIND_AUDIO_MAX) {
			msg->type = AS_EXT_MSG_AUDIO;
			msg->audio_rate_hz = as_ext_rate_for_audio_kind(msg->kind);
			if (length == 0) {
				malformed(msg, "audio payload is empty");
			} else if (length % 2) {
				malformed(msg, "audio payload has an odd length for 16-bit samples");
			}
		} else {
			msg->type = AS_EXT_MSG_UNKNOWN;
		}
		break;
	}

	return AS_EXT_HEADER_LEN + (size_t) length;
}

void as_ext_encode_header(uint8_t out[AS_EXT_HEADER_LEN], uint8_t kind, uint16_t length)
{
	out[0] = kind;
	out[1] = (uint8_t) (length >> 8);
	out[2] = (uint8_t) (length & 0xff);
}

size_t as_ext_encode_dtmf(uint8_t out[9], int start, char digit, uint32_t duration_ms)
{
	if (!as_ext_valid_digit(digit)) {
		return 0;
	}
	as_ext_encode_header(out, AS_EXT_KIND_DTMF, 6);
	out[3] = start ? 1 : 0;
	out[4] = (uint8_t) digit;
	out[5] = (uint8_t) (duration_ms & 0xff);
	out[6] = (uint8_t) ((duration_ms >> 8) & 0xff);
	out[7] = (uint8_t) ((duration_ms >> 16) & 0xff);
	out[8] = (uint8_t) ((duration_ms >> 24) & 0xff);
	return 9;
}

size_t as_ext_encode_control(uint8_t out[4], uint8_t control)
{
	as_ext_encode_header(out, AS_EXT_KIND_CONTROL, 1);
	out[3] = control;
	return 4;
}

static const char *const control_names[] = {
	"unknown", "hangup", "ring", "ringing", "answer", "busy", "take_off_hook", "off_hook",
	"congestion", "flash", "wink", "option", "radio_key", "radio_unkey", "progress",
	"proceeding", "hold", "unhold", "video_update", "t38", "source_update", "transfer",
	"connected_line", "redirecting", "t38_parameters", "call_completion", "source_change",
	"read_action", "advice_of_charge", "end_of_queue", "incomplete", "malicious_call_id",
	"update_rtp_peer", "private_cause_code", "masquerade_notify",
	"stream_topology_request_change", "stream_topology_changed",
	"stream_topology_source_changed",
};

const char *as_ext_control_name(unsigned int control)
{
	if (control >= sizeof(control_names) / sizeof(control_names[0])) {
		return "unknown";
	}
	return control_names[control];
}
