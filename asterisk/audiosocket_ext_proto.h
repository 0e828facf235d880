/*
 * audiosocket-bridge -- the extended AudioSocket protocol for Asterisk
 *
 * This program is free software, distributed under the terms of
 * the GNU General Public License Version 2. See COPYING in this folder.
 */

/*!
 * \file
 * \brief The extended AudioSocket wire format: parse and encode.
 *
 * Plain C without Asterisk headers, so that it can be fuzzed and tested on
 * its own. Every message is a 3-byte header (kind, payload length as a
 * big-endian uint16) and the payload. The extended dialect adds to stock
 * AudioSocket:
 *
 *   0x02  DTMF, 6 bytes: state (1 start, 0 stop), digit (ASCII 0-9 * # A-D),
 *         duration in ms (uint32 little-endian, 0 at start)
 *   0x03  control, 1 byte: an AST_CONTROL_* value
 *
 * The parser never loses the framing: the header says where the next
 * message starts, so a message with a bad payload or an unknown kind is
 * reported (AS_EXT_MSG_MALFORMED / AS_EXT_MSG_UNKNOWN) and skipped.
 */

#ifndef AUDIOSOCKET_EXT_PROTO_H
#define AUDIOSOCKET_EXT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AS_EXT_HEADER_LEN 3
#define AS_EXT_MAX_PAYLOAD 65535
#define AS_EXT_MAX_MESSAGE (AS_EXT_HEADER_LEN + AS_EXT_MAX_PAYLOAD)

enum as_ext_kind {
	AS_EXT_KIND_HANGUP = 0x00,
	AS_EXT_KIND_UUID = 0x01,
	AS_EXT_KIND_DTMF = 0x02,
	AS_EXT_KIND_CONTROL = 0x03,
	AS_EXT_KIND_AUDIO_MIN = 0x10, /* 8 kHz */
	AS_EXT_KIND_AUDIO_MAX = 0x18, /* 192 kHz */
	AS_EXT_KIND_ERROR = 0xff,
};

/*! What a parsed message turned out to be. */
enum as_ext_msg_type {
	AS_EXT_MSG_HANGUP,
	AS_EXT_MSG_UUID,
	AS_EXT_MSG_DTMF,
	AS_EXT_MSG_CONTROL,
	AS_EXT_MSG_AUDIO,
	AS_EXT_MSG_ERROR,
	/*! A kind the extended dialect does not define. */
	AS_EXT_MSG_UNKNOWN,
	/*! A defined kind with a payload that breaks its rules (see problem). */
	AS_EXT_MSG_MALFORMED,
};

struct as_ext_msg {
	enum as_ext_msg_type type;
	uint8_t kind;
	uint16_t length;
	/*! Points into the parsed buffer; length bytes. */
	const uint8_t *payload;
	/*! AS_EXT_MSG_MALFORMED: why, a static string. NULL otherwise. */
	const char *problem;
	/* Decoded fields, by type. */
	int dtmf_start;			/*!< DTMF: 1 start, 0 stop */
	char dtmf_digit;		/*!< DTMF: '0'-'9', '*', '#', 'A'-'D' */
	uint32_t dtmf_duration_ms;	/*!< DTMF: 0 at start */
	uint8_t control;		/*!< CONTROL: AST_CONTROL_* value */
	unsigned int audio_rate_hz;	/*!< AUDIO: the kind's rate */
	uint8_t error_flags;		/*!< ERROR: first payload byte, 0 if none */
};

/*!
 * \brief Parse one message from the start of buf.
 * \retval 0 the buffer holds no complete message yet (need more bytes)
 * \retval n>0 one message of n bytes was parsed into msg; the next message
 *   starts at buf + n. msg->payload points into buf.
 */
size_t as_ext_parse(const uint8_t *buf, size_t len, struct as_ext_msg *msg);

/*! \brief Whether c is a DTMF digit the protocol carries (upper-case A-D). */
int as_ext_valid_digit(char c);

/*! \brief The audio kind for a sample rate; -1 if the protocol has none. */
int as_ext_audio_kind_for_rate(unsigned int rate_hz);

/*! \brief The sample rate of an audio kind; 0 if kind is not audio. */
unsigned int as_ext_rate_for_audio_kind(uint8_t kind);

/*! \brief Writes a 3-byte header. */
void as_ext_encode_header(uint8_t out[AS_EXT_HEADER_LEN], uint8_t kind, uint16_t length);

/*!
 * \brief Writes a 9-byte DTMF message.
 * \retval 9 written
 * \retval 0 digit is not a valid DTMF digit (nothing written)
 */
size_t as_ext_encode_dtmf(uint8_t out[9], int start, char digit, uint32_t duration_ms);

/*! \brief Writes a 4-byte control message. */
size_t as_ext_encode_control(uint8_t out[4], uint8_t control);

/*! \brief A short name for an AST_CONTROL_* value ("ringing"), or "unknown". */
const char *as_ext_control_name(unsigned int control);

#ifdef __cplusplus
}
#endif

#endif /* AUDIOSOCKET_EXT_PROTO_H */
