/*
 * audiosocket-bridge -- the extended AudioSocket protocol for Asterisk
 *
 * This program is free software, distributed under the terms of
 * the GNU General Public License Version 2. See COPYING in this folder's parent.
 */

/*
 * libFuzzer target for the module's wire parser (audiosocket_ext_proto.c):
 * the input is a byte stream from a server. Every message is parsed in
 * one piece and again as the module receives it (in chunks of varying
 * size through a buffer), and the two must agree; each parsed message must
 * keep the parser's promises (framing, decoded fields, re-encoding).
 *
 *   clang -fsanitize=fuzzer,address,undefined -I.. audiosocket_ext_proto_fuzz.c ../audiosocket_ext_proto.c
 *
 * asterisk/fuzz/fuzz.sh builds and runs it; the test suite replays corpus/.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audiosocket_ext_proto.h"

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                     \
		}                                                                    \
	} while (0)

/* Checks one message parsed from buf (len bytes available), n bytes long. */
static void check_message(const uint8_t *buf, size_t len, size_t n, const struct as_ext_msg *msg)
{
	uint8_t out[9];

	CHECK(n >= AS_EXT_HEADER_LEN && n <= len);
	CHECK(n == AS_EXT_HEADER_LEN + (size_t) msg->length);
	CHECK(msg->kind == buf[0]);
	CHECK(msg->length == ((buf[1] << 8) | buf[2]));
	CHECK(msg->payload == buf + AS_EXT_HEADER_LEN);
	CHECK((msg->type == AS_EXT_MSG_MALFORMED) == (msg->problem != NULL));
	/* One byte fewer is not a message yet. */
	{
		struct as_ext_msg shorter;

		CHECK(as_ext_parse(buf, n - 1, &shorter) == 0);
	}
	switch (msg->type) {
	case AS_EXT_MSG_HANGUP:
		CHECK(msg->kind == AS_EXT_KIND_HANGUP && msg->length == 0);
		break;
	case AS_EXT_MSG_UUID:
		CHECK(msg->kind == AS_EXT_KIND_UUID && msg->length == 16);
		break;
	case AS_EXT_MSG_DTMF:
		CHECK(msg->kind == AS_EXT_KIND_DTMF && msg->length == 6);
		CHECK(msg->dtmf_start == 0 || msg->dtmf_start == 1);
		CHECK(as_ext_valid_digit(msg->dtmf_digit));
		CHECK(as_ext_encode_dtmf(out, msg->dtmf_start, msg->dtmf_digit, msg->dtmf_duration_ms) == 9);
		CHECK(memcmp(out, buf, 9) == 0);
		break;
	case AS_EXT_MSG_CONTROL:
		CHECK(msg->kind == AS_EXT_KIND_CONTROL && msg->length == 1);
		CHECK(as_ext_encode_control(out, msg->control) == 4);
		CHECK(memcmp(out, buf, 4) == 0);
		CHECK(as_ext_control_name(msg->control) != NULL);
		break;
	case AS_EXT_MSG_AUDIO:
		CHECK(msg->kind >= AS_EXT_KIND_AUDIO_MIN && msg->kind <= AS_EXT_KIND_AUDIO_MAX);
		CHECK(msg->length > 0 && msg->length % 2 == 0);
		CHECK(msg->audio_rate_hz == as_ext_rate_for_audio_kind(msg->kind));
		CHECK(as_ext_audio_kind_for_rate(msg->audio_rate_hz) == msg->kind);
		break;
	case AS_EXT_MSG_ERROR:
		CHECK(msg->kind == AS_EXT_KIND_ERROR);
		CHECK(msg->error_flags == (msg->length ? buf[3] : 0));
		break;
	case AS_EXT_MSG_UNKNOWN:
		CHECK(msg->kind > AS_EXT_KIND_CONTROL && msg->kind != AS_EXT_KIND_ERROR
			&& (msg->kind < AS_EXT_KIND_AUDIO_MIN || msg->kind > AS_EXT_KIND_AUDIO_MAX));
		break;
	case AS_EXT_MSG_MALFORMED:
		CHECK(msg->kind <= AS_EXT_KIND_CONTROL
			|| (msg->kind >= AS_EXT_KIND_AUDIO_MIN && msg->kind <= AS_EXT_KIND_AUDIO_MAX));
		break;
	default:
		CHECK(0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct as_ext_msg msg;
	size_t off = 0, n, whole = 0;
	/* The module's receive path: a buffer filled in chunks, parsed, consumed. */
	static uint8_t rx[AS_EXT_MAX_MESSAGE + 4096];
	size_t rx_len = 0, fed = 0, chunked = 0, chunk_seed = size;

	/* In one piece. */
	while ((n = as_ext_parse(data + off, size - off, &msg)) > 0) {
		check_message(data + off, size - off, n, &msg);
		off += n;
		whole++;
	}
	CHECK(off <= size);
	CHECK(size - off < AS_EXT_HEADER_LEN
		|| size - off < AS_EXT_HEADER_LEN + (size_t) ((data[off + 1] << 8) | data[off + 2]));

	/* In chunks of 1 to 61 bytes, as reads from a socket may deliver it. */
	while (fed < size) {
		size_t chunk = 1 + (chunk_seed = chunk_seed * 1103515245u + 12345u) % 61;

		if (chunk > size - fed) {
			chunk = size - fed;
		}
		CHECK(rx_len + chunk <= sizeof(rx));
		memcpy(rx + rx_len, data + fed, chunk);
		rx_len += chunk;
		fed += chunk;
		while ((n = as_ext_parse(rx, rx_len, &msg)) > 0) {
			check_message(rx, rx_len, n, &msg);
			memmove(rx, rx + n, rx_len - n);
			rx_len -= n;
			chunked++;
		}
	}
	CHECK(chunked == whole);
	CHECK(rx_len == size - off);
	return 0;
}
