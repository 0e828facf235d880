/*
 * audiosocket-bridge -- the extended AudioSocket protocol for Asterisk
 *
 * Based on Asterisk's AudioSocket modules (res_audiosocket, app_audiosocket,
 * chan_audiosocket), Copyright (C) 2019, CyCore Systems, Inc, Seán C McCord.
 *
 * This program is free software, distributed under the terms of
 * the GNU General Public License Version 2. See COPYING in this folder.
 */

/*! \file
 *
 * \brief AudioSocket with DTMF start/stop (0x02) and control signals (0x03)
 *
 * One module providing the dialplan application AudioSocketExt() and the
 * channel technology AudioSocketExt/, with the same arguments as stock
 * AudioSocket() and Dial(AudioSocket/...). It shares no symbol with
 * res_audiosocket: both can be loaded side by side.
 */

/*** MODULEINFO
	<support_level>extended</support_level>
 ***/

#include "asterisk.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "asterisk/app.h"
#include "asterisk/bridge.h"
#include "asterisk/bridge_channel.h"
#include "asterisk/bridge_features.h"
#include "asterisk/causes.h"
#include "asterisk/channel.h"
#include "asterisk/format_cache.h"
#include "asterisk/frame.h"
#include "asterisk/framehook.h"
#include "asterisk/logger.h"
#include "asterisk/module.h"
#include "asterisk/netsock2.h"
#include "asterisk/pbx.h"
#include "asterisk/taskprocessor.h"
#include "asterisk/utils.h"
#include "asterisk/uuid.h"

#include "audiosocket_ext_proto.h"

#define EXT_NAME "AudioSocketExt"
/*! How long to wait for the TCP connection, per resolved address. */
#define EXT_CONNECT_TIMEOUT_MS 2000
/*! The application ends after this long without activity on either side. */
#define EXT_IDLE_TIMEOUT_MS 2000
/*! A DTMF start from the server without a stop is ended after this long. */
#define EXT_DIGIT_MAX_MS 10000
/*! How long a write may wait for room in the socket's send buffer. */
#define EXT_WRITE_TIMEOUT_MS 200
/*! Problems with what the server sent are logged this many times per call. */
#define EXT_PROBLEMS_LOGGED 10
/*! Receive buffer: one whole message of the largest size, and room to read. */
#define EXT_RX_CAPACITY (AS_EXT_MAX_MESSAGE + 4096)

/*! \brief Bytes received from the server and not yet parsed. */
struct ext_rx {
	uint8_t *buf;
	size_t len;
};

/*! \brief What the server's side of a connection needs, for the app and the channel. */
struct ext_conn {
	int svc;
	char server[128];
	char id[AST_UUID_STR_LEN];
	struct ext_rx rx;
	unsigned int problems;
	/*! Digit started toward the server and not yet stopped (0: none). */
	char out_digit;
	struct timeval out_digit_tv;
	/*! Digit the server started on the channel and not yet stopped (0: none). */
	char in_digit;
	struct timeval in_digit_tv;
};

/*! \brief Values the server may send as 0x03 that can be applied without data. */
static int control_applicable(unsigned int control)
{
	switch (control) {
	case AST_CONTROL_RING:
	case AST_CONTROL_RINGING:
	case AST_CONTROL_ANSWER:
	case AST_CONTROL_BUSY:
	case AST_CONTROL_TAKEOFFHOOK:
	case AST_CONTROL_OFFHOOK:
	case AST_CONTROL_CONGESTION:
	case AST_CONTROL_FLASH:
	case AST_CONTROL_WINK:
	case AST_CONTROL_RADIO_KEY:
	case AST_CONTROL_RADIO_UNKEY:
	case AST_CONTROL_PROGRESS:
	case AST_CONTROL_PROCEEDING:
	case AST_CONTROL_HOLD:
	case AST_CONTROL_UNHOLD:
	case AST_CONTROL_VIDUPDATE:
	case AST_CONTROL_SRCUPDATE:
	case AST_CONTROL_SRCCHANGE:
	case AST_CONTROL_INCOMPLETE:
	case AST_CONTROL_MCID:
		return 1;
	default:
		/* Hangup is handled by the caller; the others carry data that a
		 * single byte cannot give (connected line, T.38 parameters, ...)
		 * or are internal to Asterisk. */
		return 0;
	}
}

static int ext_conn_init(struct ext_conn *conn, const char *server, const char *id)
{
	memset(conn, 0, sizeof(*conn));
	conn->svc = -1;
	ast_copy_string(conn->server, server, sizeof(conn->server));
	ast_copy_string(conn->id, id, sizeof(conn->id));
	conn->rx.buf = ast_malloc(EXT_RX_CAPACITY);
	return conn->rx.buf ? 0 : -1;
}

static void ext_conn_destroy(struct ext_conn *conn)
{
	if (conn->svc >= 0) {
		close(conn->svc);
		conn->svc = -1;
	}
	ast_free(conn->rx.buf);
	conn->rx.buf = NULL;
}

/*! \brief Logs a problem with what the server sent, a bounded number of times per call. */
static void __attribute__((format(printf, 2, 3))) ext_problem(struct ext_conn *conn, const char *fmt, ...)
{
	char text[256];
	va_list ap;

	conn->problems++;
	if (conn->problems > EXT_PROBLEMS_LOGGED) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ast_log(LOG_WARNING, "%s server '%s' (call %s): %s, ignored%s\n", EXT_NAME, conn->server,
		conn->id, text, conn->problems == EXT_PROBLEMS_LOGGED ? " (further problems on this call are not logged)" : "");
}

/*! \brief Connects to host:port without blocking longer than the timeout per address. */
static int ext_connect(const char *server)
{
	struct ast_sockaddr *addrs = NULL;
	int num_addrs, i, s = -1;

	if (ast_strlen_zero(server)) {
		ast_log(LOG_ERROR, "%s: no server given (host:port)\n", EXT_NAME);
		return -1;
	}
	num_addrs = ast_sockaddr_resolve(&addrs, server, PARSE_PORT_REQUIRE, AST_AF_UNSPEC);
	if (num_addrs <= 0) {
		ast_log(LOG_ERROR, "%s: cannot resolve '%s' (host:port required)\n", EXT_NAME, server);
		return -1;
	}

	for (i = 0; i < num_addrs; i++) {
		struct pollfd pfd;
		int err = 0, res;
		socklen_t errlen = sizeof(err);

		if (!ast_sockaddr_port(&addrs[i])) {
			ast_log(LOG_ERROR, "%s: no port in '%s'\n", EXT_NAME, server);
			break;
		}
		s = ast_socket_nonblock(addrs[i].ss.ss_family, SOCK_STREAM, IPPROTO_TCP);
		if (s < 0) {
			ast_log(LOG_WARNING, "%s: cannot create a socket: %s\n", EXT_NAME, strerror(errno));
			continue;
		}
		if (setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int)) < 0) {
			ast_log(LOG_WARNING, "%s: cannot set TCP_NODELAY: %s\n", EXT_NAME, strerror(errno));
		}
		if (ast_connect(s, &addrs[i]) && errno != EINPROGRESS) {
			ast_log(LOG_WARNING, "%s: connect to '%s' failed: %s\n", EXT_NAME,
				ast_sockaddr_stringify(&addrs[i]), strerror(errno));
			close(s);
			s = -1;
			continue;
		}
		pfd.fd = s;
		pfd.events = POLLOUT;
		do {
			res = ast_poll(&pfd, 1, EXT_CONNECT_TIMEOUT_MS);
		} while (res < 0 && errno == EINTR);
		if (res == 1 && !getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &errlen) && !err) {
			break;
		}
		ast_log(LOG_WARNING, "%s: connect to '%s' failed: %s\n", EXT_NAME,
			ast_sockaddr_stringify(&addrs[i]), res == 0 ? "timed out" : strerror(err ? err : errno));
		close(s);
		s = -1;
	}
	ast_free(addrs);
	if (s < 0) {
		ast_log(LOG_ERROR, "%s: cannot connect to '%s'\n", EXT_NAME, server);
	}
	return s;
}

/*!
 * \brief Writes all of iov to the socket (one writev in practice), waiting a
 * little for room if the send buffer is full.
 */
static int ext_writev(struct ext_conn *conn, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		ssize_t n = writev(conn->svc, iov, iovcnt);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				struct pollfd pfd = { .fd = conn->svc, .events = POLLOUT };

				if (ast_poll(&pfd, 1, EXT_WRITE_TIMEOUT_MS) > 0) {
					continue;
				}
			}
			ast_log(LOG_WARNING, "%s: cannot write to server '%s' (call %s): %s\n", EXT_NAME,
				conn->server, conn->id, n < 0 && errno ? strerror(errno) : "timed out");
			return -1;
		}
		while (iovcnt > 0 && (size_t) n >= iov->iov_len) {
			n -= iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (uint8_t *) iov->iov_base + n;
			iov->iov_len -= n;
		}
	}
	return 0;
}

static int ext_write(struct ext_conn *conn, const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };

	return ext_writev(conn, &iov, 1);
}

static int ext_send_uuid(struct ext_conn *conn)
{
	uint8_t buf[AS_EXT_HEADER_LEN + 16];
	uuid_t uu;

	if (uuid_parse(conn->id, uu)) {
		ast_log(LOG_ERROR, "%s: '%s' is not a UUID\n", EXT_NAME, conn->id);
		return -1;
	}
	as_ext_encode_header(buf, AS_EXT_KIND_UUID, 16);
	memcpy(buf + AS_EXT_HEADER_LEN, uu, 16);
	return ext_write(conn, buf, sizeof(buf));
}

/*! \brief Sends a voice frame: slin at its rate's kind, other codecs as 0x10 like stock. */
static int ext_send_voice(struct ext_conn *conn, const struct ast_frame *f)
{
	uint8_t header[AS_EXT_HEADER_LEN];
	struct iovec iov[2];
	int kind = AS_EXT_KIND_AUDIO_MIN;

	if (f->datalen <= 0 || !f->data.ptr) {
		return 0;
	}
	if (f->datalen > AS_EXT_MAX_PAYLOAD) {
		ast_log(LOG_WARNING, "%s: voice frame of %d bytes is too large, dropped\n", EXT_NAME, f->datalen);
		return 0;
	}
	if (ast_format_cache_is_slinear(f->subclass.format)) {
		kind = as_ext_audio_kind_for_rate(ast_format_get_sample_rate(f->subclass.format));
		if (kind < 0) {
			kind = AS_EXT_KIND_AUDIO_MIN;
		}
	}
	as_ext_encode_header(header, (uint8_t) kind, (uint16_t) f->datalen);
	iov[0].iov_base = header;
	iov[0].iov_len = sizeof(header);
	iov[1].iov_base = f->data.ptr;
	iov[1].iov_len = f->datalen;
	return ext_writev(conn, iov, 2);
}

static int ext_send_dtmf(struct ext_conn *conn, int start, char digit, uint32_t duration_ms)
{
	uint8_t buf[9];

	digit = toupper((unsigned char) digit);
	if (!as_ext_encode_dtmf(buf, start, digit, duration_ms)) {
		ast_debug(1, "%s: digit '%c' cannot be sent\n", EXT_NAME, digit);
		return 0;
	}
	ast_debug(2, "%s: DTMF %s '%c' (%u ms) to server '%s'\n", EXT_NAME, start ? "start" : "stop",
		digit, duration_ms, conn->server);
	return ext_write(conn, buf, sizeof(buf));
}

/*!
 * \brief A digit started on the channel: 0x02 start (a digit still open is
 * stopped first). A start of the digit that is already open is a repeat (the
 * core emulating a begin for an end whose begin took another path) and is
 * not sent again.
 */
static int ext_digit_begin(struct ext_conn *conn, char digit, struct timeval when)
{
	if (conn->out_digit == digit) {
		return 0;
	}
	if (conn->out_digit) {
		int64_t ms = ast_tvdiff_ms(when, conn->out_digit_tv);

		if (ext_send_dtmf(conn, 0, conn->out_digit, ms > 0 ? ms : 0)) {
			return -1;
		}
	}
	conn->out_digit = digit;
	conn->out_digit_tv = when;
	return ext_send_dtmf(conn, 1, digit, 0);
}

/*!
 * \brief A digit ended on the channel: 0x02 stop with its duration (the
 * frame's, or measured from its start); a start first if none was sent.
 */
static int ext_digit_end(struct ext_conn *conn, char digit, long duration_ms, struct timeval when)
{
	if (conn->out_digit != digit) {
		struct timeval start = when;

		if (duration_ms > 0) {
			start = ast_tvsub(when, ast_samp2tv(duration_ms, 1000));
		}
		if (ext_digit_begin(conn, digit, start)) {
			return -1;
		}
	}
	if (duration_ms <= 0) {
		duration_ms = ast_tvdiff_ms(when, conn->out_digit_tv);
	}
	conn->out_digit = 0;
	return ext_send_dtmf(conn, 0, digit, duration_ms > 0 ? (uint32_t) duration_ms : 0);
}

static int ext_send_control(struct ext_conn *conn, int control)
{
	uint8_t buf[4];

	if (control <= 0 || control > 255) {
		return 0;
	}
	ast_debug(2, "%s: control %d (%s) to server '%s'\n", EXT_NAME, control,
		as_ext_control_name(control), conn->server);
	as_ext_encode_control(buf, (uint8_t) control);
	return ext_write(conn, buf, sizeof(buf));
}

/*!
 * \brief Reads what the socket has into the receive buffer.
 * \retval 1 bytes were read
 * \retval 0 nothing to read now
 * \retval -1 the server closed the connection or it failed
 */
static int ext_fill(struct ext_conn *conn)
{
	ssize_t n;

	if (conn->rx.len >= EXT_RX_CAPACITY) {
		return 1; /* cannot happen: a whole message always fits */
	}
	do {
		n = read(conn->svc, conn->rx.buf + conn->rx.len, EXT_RX_CAPACITY - conn->rx.len);
	} while (n < 0 && errno == EINTR);
	if (n > 0) {
		conn->rx.len += n;
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		return 0;
	}
	if (n < 0) {
		ast_log(LOG_WARNING, "%s: cannot read from server '%s' (call %s): %s\n", EXT_NAME,
			conn->server, conn->id, strerror(errno));
	}
	return -1;
}

/*! \brief Drops the first n bytes of the receive buffer. */
static void ext_consume(struct ext_conn *conn, size_t n)
{
	memmove(conn->rx.buf, conn->rx.buf + n, conn->rx.len - n);
	conn->rx.len -= n;
}

/*!
 * \brief Logs a message that is not applied.
 * \retval 1 msg was such a message (logged, to be ignored)
 * \retval 0 msg is to be applied
 */
static int ext_check_message(struct ext_conn *conn, const struct as_ext_msg *msg)
{
	switch (msg->type) {
	case AS_EXT_MSG_MALFORMED:
		ext_problem(conn, "malformed message of kind 0x%02x, %u bytes: %s", msg->kind, msg->length,
			msg->problem);
		return 1;
	case AS_EXT_MSG_UNKNOWN:
		ext_problem(conn, "message of unknown kind 0x%02x, %u bytes", msg->kind, msg->length);
		return 1;
	case AS_EXT_MSG_UUID:
		ext_problem(conn, "uuid message (only Asterisk sends one)");
		return 1;
	case AS_EXT_MSG_ERROR:
		ast_log(LOG_NOTICE, "%s server '%s' (call %s) reported an error, flags 0x%02x, %u bytes\n",
			EXT_NAME, conn->server, conn->id, msg->error_flags, msg->length);
		return 1;
	case AS_EXT_MSG_CONTROL:
		if (msg->control != AST_CONTROL_HANGUP && !control_applicable(msg->control)) {
			ext_problem(conn, "control %u (%s) cannot be applied without data", msg->control,
				as_ext_control_name(msg->control));
			return 1;
		}
		return 0;
	default:
		return 0;
	}
}

/*! \brief A voice frame for audio the server sent (data points into the receive buffer). */
static void ext_voice_frame(const struct as_ext_msg *msg, struct ast_frame *f)
{
	memset(f, 0, sizeof(*f));
	f->frametype = AST_FRAME_VOICE;
	f->subclass.format = ast_format_cache_get_slin_by_rate(msg->audio_rate_hz);
	f->data.ptr = (void *) msg->payload;
	f->datalen = msg->length;
	f->samples = msg->length / 2;
	f->src = EXT_NAME;
}

/* ------------------------------------------------------------------ */
/* The dialplan application                                            */
/* ------------------------------------------------------------------ */

static const char app[] = EXT_NAME;

enum {
	OPT_CODEC = (1 << 0),
	OPT_MOH_CLASS = (1 << 1),
};

enum {
	OPT_ARG_CODEC = 0,
	OPT_ARG_MOH_CLASS,
	OPT_ARG_ARRAY_SIZE,
};

AST_APP_OPTIONS(ext_app_options, BEGIN_OPTIONS
	AST_APP_OPTION_ARG('c', OPT_CODEC, OPT_ARG_CODEC),
	AST_APP_OPTION_ARG('m', OPT_MOH_CLASS, OPT_ARG_MOH_CLASS),
END_OPTIONS );

/*! \brief One DTMF frame the framehook took from the channel's read path. */
struct ext_dtmf_event {
	int begin;
	char digit;
	long len;
	struct timeval when;
};

#define EXT_DTMF_EVENTS 32

/*!
 * \brief State shared by the framehook and the application (ao2, locked).
 *
 * The framehook takes DTMF begin and end frames out of the channel's read
 * path before the core sees them: the core would otherwise drop voice
 * while a digit is in progress (AST_FLAG_IN_DTMF) or emulate a digit it
 * thinks too short (AST_FLAG_EMULATE_DTMF), leaving the server a gap in the
 * audio. The application sends each event as a 0x02 message.
 */
struct ext_dtmf_hook {
	unsigned int count;
	unsigned int dropped;
	struct ext_dtmf_event events[EXT_DTMF_EVENTS];
};

static struct ast_frame *ext_hook_event(struct ast_channel *chan, struct ast_frame *frame,
	enum ast_framehook_event event, void *data)
{
	struct ext_dtmf_hook *hook = data;

	if (!frame || event != AST_FRAMEHOOK_EVENT_READ) {
		return frame;
	}
	if (frame->frametype != AST_FRAME_DTMF_BEGIN && frame->frametype != AST_FRAME_DTMF_END) {
		return frame;
	}
	ao2_lock(hook);
	if (hook->count < EXT_DTMF_EVENTS) {
		struct ext_dtmf_event *e = &hook->events[hook->count++];

		e->begin = frame->frametype == AST_FRAME_DTMF_BEGIN;
		e->digit = (char) frame->subclass.integer;
		e->len = frame->len;
		e->when = ast_tvnow();
	} else {
		hook->dropped++;
	}
	ao2_unlock(hook);
	ast_log(LOG_DTMF, "%s: DTMF %s '%c' (%ld ms) on %s goes to the server\n", EXT_NAME,
		frame->frametype == AST_FRAME_DTMF_BEGIN ? "begin" : "end", frame->subclass.integer,
		frame->len, ast_channel_name(chan));
	ast_frfree(frame);
	return &ast_null_frame;
}

static int ext_dtmf_framehook_consume(void *data, enum ast_frame_type type)
{
	return type == AST_FRAME_DTMF_BEGIN || type == AST_FRAME_DTMF_END;
}

static void ext_dtmf_framehook_release(void *data)
{
	ao2_ref(data, -1);
}

/*!
 * \brief The framehook of both DTMF hooks (the application's and the peer's):
 * it consumes DTMF begin and end frames, and data is an ao2 object whose
 * reference the framehook holds until Asterisk destroys it.
 */
static struct ast_framehook_interface ext_dtmf_framehook(ast_framehook_event_callback event_cb,
	void *data)
{
	struct ast_framehook_interface interface = {
		.version = AST_FRAMEHOOK_INTERFACE_VERSION,
		.event_cb = event_cb,
		.consume_cb = ext_dtmf_framehook_consume,
		.destroy_cb = ext_dtmf_framehook_release,
		/* Not moved by a masquerade: each hook serves the channel it was
		 * attached to (the next peer task finds the peer anew). */
		.disable_inheritance = 1,
		.data = data,
	};

	return interface;
}

static int ext_hook_attach(struct ast_channel *chan, struct ext_dtmf_hook *hook)
{
	struct ast_framehook_interface interface = ext_dtmf_framehook(ext_hook_event, hook);
	int id;

	ao2_ref(hook, +1); /* the framehook's reference */
	ast_channel_lock(chan);
	id = ast_framehook_attach(chan, &interface);
	ast_channel_unlock(chan);
	if (id < 0) {
		ao2_ref(hook, -1);
	}
	return id;
}

/*! \brief Sends the DTMF events the framehook collected. */
static int ext_app_flush_dtmf(struct ext_conn *conn, struct ext_dtmf_hook *hook)
{
	struct ext_dtmf_event events[EXT_DTMF_EVENTS];
	unsigned int count, dropped, i;

	ao2_lock(hook);
	count = hook->count;
	dropped = hook->dropped;
	memcpy(events, hook->events, count * sizeof(events[0]));
	hook->count = 0;
	hook->dropped = 0;
	ao2_unlock(hook);

	if (dropped) {
		ast_log(LOG_WARNING, "%s: %u DTMF events for server '%s' dropped (too many at once)\n",
			EXT_NAME, dropped, conn->server);
	}
	for (i = 0; i < count; i++) {
		int res = events[i].begin
			? ext_digit_begin(conn, events[i].digit, events[i].when)
			: ext_digit_end(conn, events[i].digit, events[i].len, events[i].when);

		if (res) {
			return -1;
		}
	}
	return 0;
}

/*! \brief Ends a digit the server started on the channel and did not stop. */
static void ext_app_end_in_digit(struct ast_channel *chan, struct ext_conn *conn, unsigned int duration_ms)
{
	if (!conn->in_digit) {
		return;
	}
	if (!duration_ms) {
		duration_ms = ast_tvdiff_ms(ast_tvnow(), conn->in_digit_tv);
	}
	ast_senddigit_end(chan, conn->in_digit, duration_ms);
	conn->in_digit = 0;
}

/*! \brief Applies a 0x03 control from the server to the channel. */
static void ext_app_apply_control(struct ast_channel *chan, struct ext_conn *conn,
	unsigned int control, const char *moh_class)
{
	ast_verb(3, "%s: server '%s' indicates %s (%u) on %s\n", EXT_NAME, conn->server,
		as_ext_control_name(control), control, ast_channel_name(chan));
	switch (control) {
	case AST_CONTROL_ANSWER:
		if (ast_channel_state(chan) != AST_STATE_UP) {
			ast_answer(chan);
		}
		break;
	case AST_CONTROL_HOLD:
		ast_indicate_data(chan, AST_CONTROL_HOLD, moh_class,
			!ast_strlen_zero(moh_class) ? strlen(moh_class) + 1 : 0);
		break;
	default:
		ast_indicate(chan, control);
		break;
	}
}

/*!
 * \brief Parses and applies what the server sent.
 * \retval 0 go on
 * \retval 1 the server ended the session (hangup message or control)
 * \retval -1 writing to the channel failed
 */
static int ext_app_handle_rx(struct ast_channel *chan, struct ext_conn *conn, const char *moh_class)
{
	struct as_ext_msg msg;
	size_t n;
	int res = 0;

	while (!res && (n = as_ext_parse(conn->rx.buf, conn->rx.len, &msg)) > 0) {
		if (!ext_check_message(conn, &msg)) {
			switch (msg.type) {
			case AS_EXT_MSG_HANGUP:
				res = 1;
				break;
			case AS_EXT_MSG_AUDIO: {
				struct ast_frame f;

				ext_voice_frame(&msg, &f);
				if (ast_write(chan, &f)) {
					if (ast_check_hangup(chan)) {
						/* Hung up since its last read: the usual end, not a fault. */
						ast_verb(4, "%s: %s hung up\n", EXT_NAME, ast_channel_name(chan));
					} else {
						ast_log(LOG_WARNING, "%s: cannot write audio from server '%s' to %s\n",
							EXT_NAME, conn->server, ast_channel_name(chan));
					}
					res = -1;
				}
				break;
			}
			case AS_EXT_MSG_DTMF:
				if (msg.dtmf_start) {
					ext_app_end_in_digit(chan, conn, 0);
					conn->in_digit = msg.dtmf_digit;
					conn->in_digit_tv = ast_tvnow();
					ast_senddigit_begin(chan, msg.dtmf_digit);
				} else {
					if (conn->in_digit != msg.dtmf_digit) {
						/* A stop without its start: the whole digit at once. */
						ext_app_end_in_digit(chan, conn, 0);
						ast_senddigit_begin(chan, msg.dtmf_digit);
						conn->in_digit = msg.dtmf_digit;
						conn->in_digit_tv = ast_tvnow();
					}
					ext_app_end_in_digit(chan, conn, msg.dtmf_duration_ms ? msg.dtmf_duration_ms : 0);
				}
				break;
			case AS_EXT_MSG_CONTROL:
				if (msg.control == AST_CONTROL_HANGUP) {
					res = 1;
				} else {
					ext_app_apply_control(chan, conn, msg.control, moh_class);
				}
				break;
			default:
				break;
			}
		}
		ext_consume(conn, n);
	}
	return res;
}

static int ext_app_run(struct ast_channel *chan, struct ext_conn *conn, struct ext_dtmf_hook *hook,
	const char *moh_class)
{
	const char *name = ast_channel_name(chan);

	for (;;) {
		int ms = EXT_IDLE_TIMEOUT_MS;
		int outfd = -1;
		struct ast_channel *ready;

		if (conn->in_digit) {
			int64_t left = EXT_DIGIT_MAX_MS - ast_tvdiff_ms(ast_tvnow(), conn->in_digit_tv);

			if (left <= 0) {
				ext_problem(conn, "DTMF '%c' started and not stopped within %d ms; stopped",
					conn->in_digit, EXT_DIGIT_MAX_MS);
				ext_app_end_in_digit(chan, conn, 0);
			} else if (left < ms) {
				ms = left;
			}
		}

		ready = ast_waitfor_nandfds(&chan, 1, &conn->svc, 1, NULL, &outfd, &ms);
		if (ready) {
			struct ast_frame *f = ast_read(chan);
			int res = 0;

			if (!f) {
				ast_verb(4, "%s: %s hung up\n", EXT_NAME, name);
				return -1;
			}
			switch (f->frametype) {
			case AST_FRAME_VOICE:
				res = ext_send_voice(conn, f);
				break;
			case AST_FRAME_CONTROL:
				res = ext_send_control(conn, f->subclass.integer);
				break;
			case AST_FRAME_DTMF_BEGIN:
				/* Only when the framehook is not there (it takes them). */
				res = ext_digit_begin(conn, f->subclass.integer, ast_tvnow());
				break;
			case AST_FRAME_DTMF_END:
				res = ext_digit_end(conn, f->subclass.integer, f->len, ast_tvnow());
				break;
			default:
				break;
			}
			ast_frfree(f);
			if (!res && hook) {
				res = ext_app_flush_dtmf(conn, hook);
			}
			if (res) {
				ast_log(LOG_WARNING, "%s: cannot forward from %s to server '%s'\n", EXT_NAME,
					name, conn->server);
				return -1;
			}
		} else if (outfd >= 0) {
			int filled = ext_fill(conn);
			int res;

			if (filled < 0) {
				return 0; /* the server closed the connection */
			}
			res = ext_app_handle_rx(chan, conn, moh_class);
			if (res) {
				return res > 0 ? 0 : -1;
			}
		} else if (ms == 0 && !conn->in_digit) {
			ast_log(LOG_ERROR, "%s: no activity for %d ms between %s and server '%s'\n", EXT_NAME,
				EXT_IDLE_TIMEOUT_MS, name, conn->server);
			return -1;
		}
	}
}

static int ext_app_exec(struct ast_channel *chan, const char *data)
{
	char *parse;
	struct ast_format *read_format = NULL, *write_format = NULL, *format = NULL;
	struct ext_conn conn;
	struct ext_dtmf_hook *hook = NULL;
	int hook_id = -1;
	int res = -1;
	uuid_t uu;
	struct ast_flags opts = { 0, };
	char *opt_args[OPT_ARG_ARRAY_SIZE] = { NULL, };
	const char *moh_class = NULL;
	AST_DECLARE_APP_ARGS(args,
		AST_APP_ARG(uuid);
		AST_APP_ARG(server);
		AST_APP_ARG(options);
	);

	parse = ast_strdupa(S_OR(data, ""));
	AST_STANDARD_APP_ARGS(args, parse);
	if (ast_strlen_zero(args.uuid) || uuid_parse(args.uuid, uu)) {
		ast_log(LOG_ERROR, "%s: a UUID is required as the first argument (got '%s')\n", EXT_NAME,
			S_OR(args.uuid, ""));
		return -1;
	}
	if (ast_strlen_zero(args.server)) {
		ast_log(LOG_ERROR, "%s: host:port of the server is required\n", EXT_NAME);
		return -1;
	}
	if (!ast_strlen_zero(args.options)
		&& ast_app_parse_options(ext_app_options, &opts, opt_args, args.options)) {
		ast_log(LOG_ERROR, "%s: cannot parse options '%s'\n", EXT_NAME, args.options);
		return -1;
	}
	if (ast_test_flag(&opts, OPT_CODEC) && !ast_strlen_zero(opt_args[OPT_ARG_CODEC])) {
		format = ast_format_cache_get(opt_args[OPT_ARG_CODEC]);
		if (!format) {
			ast_log(LOG_ERROR, "%s: unknown codec '%s'\n", EXT_NAME, opt_args[OPT_ARG_CODEC]);
			return -1;
		}
	} else {
		format = ao2_bump(ast_format_slin);
	}
	if (ast_test_flag(&opts, OPT_MOH_CLASS)) {
		moh_class = opt_args[OPT_ARG_MOH_CLASS];
	}

	if (ext_conn_init(&conn, args.server, args.uuid)) {
		ao2_ref(format, -1);
		return -1;
	}

	/* Connecting may take a while: keep the channel serviced meanwhile. */
	if (ast_autoservice_start(chan)) {
		ast_log(LOG_WARNING, "%s: cannot start autoservice on %s\n", EXT_NAME, ast_channel_name(chan));
		goto end;
	}
	conn.svc = ext_connect(args.server);
	if (ast_autoservice_stop(chan) || conn.svc < 0) {
		goto end;
	}

	ast_channel_lock(chan);
	write_format = ao2_bump(ast_channel_writeformat(chan));
	read_format = ao2_bump(ast_channel_readformat(chan));
	ast_channel_unlock(chan);
	if (ast_set_write_format(chan, format) || ast_set_read_format(chan, format)) {
		ast_log(LOG_ERROR, "%s: cannot set %s on %s\n", EXT_NAME, ast_format_get_name(format),
			ast_channel_name(chan));
		goto end;
	}

	hook = ao2_alloc(sizeof(*hook), NULL);
	if (!hook) {
		goto end;
	}
	hook_id = ext_hook_attach(chan, hook);
	if (hook_id < 0) {
		ast_log(LOG_WARNING, "%s: cannot attach the DTMF framehook to %s; DTMF reaches the server "
			"from the core (with its gap in the audio)\n", EXT_NAME, ast_channel_name(chan));
	}

	if (ext_send_uuid(&conn)) {
		goto end;
	}
	res = ext_app_run(chan, &conn, hook_id >= 0 ? hook : NULL, moh_class);

end:
	if (hook_id >= 0) {
		ast_channel_lock(chan);
		ast_framehook_detach(chan, hook_id);
		ast_channel_unlock(chan);
	}
	if (hook) {
		if (conn.svc >= 0 && !res) {
			ext_app_flush_dtmf(&conn, hook);
		}
		ao2_ref(hook, -1);
	}
	ext_app_end_in_digit(chan, &conn, 0);
	if (write_format) {
		if (ast_set_write_format(chan, write_format)) {
			ast_log(LOG_WARNING, "%s: cannot restore the write format of %s\n", EXT_NAME,
				ast_channel_name(chan));
		}
		ao2_ref(write_format, -1);
	}
	if (read_format) {
		if (ast_set_read_format(chan, read_format)) {
			ast_log(LOG_WARNING, "%s: cannot restore the read format of %s\n", EXT_NAME,
				ast_channel_name(chan));
		}
		ao2_ref(read_format, -1);
	}
	ao2_ref(format, -1);
	ext_conn_destroy(&conn);
	return res;
}

/* ------------------------------------------------------------------ */
/* The channel technology                                              */
/* ------------------------------------------------------------------ */

static struct ast_channel *ext_request(const char *type, struct ast_format_cap *cap,
	const struct ast_assigned_ids *assignedids, const struct ast_channel *requestor,
	const char *data, int *cause);
static int ext_call(struct ast_channel *ast, const char *dest, int timeout);
static int ext_hangup(struct ast_channel *ast);
static struct ast_frame *ext_read(struct ast_channel *ast);
static int ext_write_frame(struct ast_channel *ast, struct ast_frame *f);
static int ext_indicate(struct ast_channel *ast, int condition, const void *data, size_t datalen);
static int ext_send_digit_begin(struct ast_channel *ast, char digit);
static int ext_send_digit_end(struct ast_channel *ast, char digit, unsigned int duration);

static struct ast_channel_tech ext_tech = {
	.type = EXT_NAME,
	.description = "AudioSocket with DTMF and control signals (extended protocol)",
	.requester = ext_request,
	.call = ext_call,
	.hangup = ext_hangup,
	.read = ext_read,
	.write = ext_write_frame,
	.indicate = ext_indicate,
	.send_digit_begin = ext_send_digit_begin,
	.send_digit_end = ext_send_digit_end,
};

/*! How often a bridged channel looks for a new peer, besides when its bridge changes. */
#define EXT_PEER_CHECK_MS 1000

/*!
 * \brief A channel's private data (ao2).
 *
 * Two threads write to the socket: the channel's own (the tech callbacks,
 * with the channel locked) and the bridged peer's (its DTMF, from the peer
 * framehook below, with the peer locked). The pvt's lock serializes them;
 * it is a leaf: nothing else is locked while it is held.
 */
struct ext_pvt {
	/*! The socket and the digit state toward the server (out_digit) are
	 *  guarded by the pvt lock; the receive side only by the channel lock. */
	struct ext_conn conn;
	/*! Set (pvt lock) when the channel hangs up: the peer hook stands aside. */
	int hungup;
	/*! The peer hook in use (pvt lock; a reference), NULL when none. */
	struct ext_peer_hook *hook;
	/*! The channel the hook is attached to (a reference) and its id there:
	 *  touched only by peer tasks (one at a time, on ext_tps). */
	struct ast_channel *peer;
	int peer_hook_id;
	/*! When a peer task was last queued and for which bridge (compared,
	 *  never dereferenced): under the channel's lock. */
	struct ast_bridge *seen_bridge;
	struct timeval last_check;
};

/*!
 * \brief A framehook on the channel bridged with ours (ao2, guarded by its
 * pvt's lock).
 *
 * The peer's core drops the peer's voice while a DTMF digit is down
 * (AST_FLAG_IN_DTMF in __ast_read) and emulates digits it finds too short,
 * before a bridge passes anything on; through a bridge the server would get
 * a gap in the audio under every digit. This hook takes the peer's DTMF
 * begin and end frames out of its read path before the core sees them and
 * sends them to the server directly, so the peer's core never enters its
 * DTMF state and its voice keeps flowing. It does so only while the peer is
 * in the bridge it shared with our channel when attached, and our channel
 * has not hung up; otherwise it passes the frames on untouched.
 */
struct ext_peer_hook {
	/*! A reference. */
	struct ext_pvt *pvt;
	/*! The bridge shared with our channel (a reference: the address is compared). */
	struct ast_bridge *bridge;
	/*! Cleared when Asterisk detaches the hook (peer hangup, masquerade). */
	int attached;
};

/*! Runs peer tasks, one at a time, with no channel locked. */
static struct ast_taskprocessor *ext_tps;
/*! Peer hooks in existence (the module may not unload under them). */
static int ext_peer_hooks;

static void ext_pvt_destroy(void *obj)
{
	struct ext_pvt *pvt = obj;

	ext_conn_destroy(&pvt->conn);
}

static void ext_peer_hook_destroy(void *obj)
{
	struct ext_peer_hook *hook = obj;

	ao2_cleanup(hook->pvt);
	ao2_cleanup(hook->bridge);
	ast_atomic_fetchadd_int(&ext_peer_hooks, -1);
}

static struct ast_frame *ext_peer_hook_event(struct ast_channel *peer, struct ast_frame *frame,
	enum ast_framehook_event event, void *data)
{
	struct ext_peer_hook *hook = data;
	struct ext_pvt *pvt = hook->pvt;
	char digit;
	int begin, taken = 0;

	if (event == AST_FRAMEHOOK_EVENT_DETACHED) {
		ao2_lock(pvt);
		hook->attached = 0;
		ao2_unlock(pvt);
		return NULL;
	}
	if (event != AST_FRAMEHOOK_EVENT_READ || !frame
		|| (frame->frametype != AST_FRAME_DTMF_BEGIN && frame->frametype != AST_FRAME_DTMF_END)) {
		return frame;
	}
	digit = toupper(frame->subclass.integer);
	begin = frame->frametype == AST_FRAME_DTMF_BEGIN;
	if (!as_ext_valid_digit(digit) || ast_channel_internal_bridge(peer) != hook->bridge) {
		return frame;
	}
	ao2_lock(pvt);
	if (!pvt->hungup && pvt->hook == hook && pvt->conn.svc >= 0) {
		taken = 1;
		if (begin) {
			ext_digit_begin(&pvt->conn, digit, ast_tvnow());
		} else {
			ext_digit_end(&pvt->conn, digit, frame->len, ast_tvnow());
		}
	}
	ao2_unlock(pvt);
	if (!taken) {
		return frame;
	}
	ast_log(LOG_DTMF, "%s: DTMF %s '%c' (%ld ms) read on %s goes to server '%s'\n", EXT_NAME,
		begin ? "begin" : "end", digit, frame->len, ast_channel_name(peer), pvt->conn.server);
	ast_frfree(frame);
	return &ast_null_frame;
}

/*! \brief Detaches the peer hook, if any. Peer tasks only. */
static void ext_peer_detach(struct ext_pvt *pvt)
{
	struct ext_peer_hook *hook;

	ao2_lock(pvt);
	hook = pvt->hook;
	pvt->hook = NULL;
	ao2_unlock(pvt);
	if (pvt->peer) {
		int attached;

		ast_channel_lock(pvt->peer);
		ao2_lock(pvt);
		attached = hook && hook->attached;
		ao2_unlock(pvt);
		/* Asterisk detaches it itself when the peer hangs up or is
		 * masqueraded; only a hook still attached is detached here. */
		if (attached) {
			ast_framehook_detach(pvt->peer, pvt->peer_hook_id);
		}
		ast_channel_unlock(pvt->peer);
		ast_verb(4, "%s: DTMF of %s no longer taken for server '%s'\n", EXT_NAME,
			ast_channel_name(pvt->peer), pvt->conn.server);
		pvt->peer = ast_channel_unref(pvt->peer);
	}
	ao2_cleanup(hook);
}

/*!
 * \brief Whether the peer's DTMF may bypass its bridge: not when the
 * bridge would not pass DTMF on, nor when the peer has DTMF features (a
 * transfer code, say) that must see its digits.
 */
static int ext_peer_suitable(struct ast_channel *peer)
{
	struct ast_bridge_channel *bridge_channel = ast_channel_get_bridge_channel(peer);
	int suitable = 0;

	if (bridge_channel) {
		ast_bridge_channel_lock(bridge_channel);
		suitable = bridge_channel->features && bridge_channel->features->dtmf_passthrough
			&& !ao2_container_count(bridge_channel->features->dtmf_hooks);
		ast_bridge_channel_unlock(bridge_channel);
		ao2_ref(bridge_channel, -1);
	}
	return suitable;
}

/*! \brief Attaches a peer hook to peer. Peer tasks only, with none attached. */
static void ext_peer_attach(struct ext_pvt *pvt, struct ast_channel *peer, struct ast_bridge *bridge)
{
	struct ext_peer_hook *hook;
	struct ast_framehook_interface interface;
	int id;

	hook = ao2_alloc_options(sizeof(*hook), ext_peer_hook_destroy, AO2_ALLOC_OPT_LOCK_NOLOCK);
	if (!hook) {
		return;
	}
	ast_atomic_fetchadd_int(&ext_peer_hooks, +1);
	hook->pvt = ao2_bump(pvt);
	hook->bridge = ao2_bump(bridge);
	interface = ext_dtmf_framehook(ext_peer_hook_event, hook);
	ao2_ref(hook, +1); /* the framehook's reference */
	ast_channel_lock(peer);
	id = ast_framehook_attach(peer, &interface);
	if (id >= 0) {
		ao2_lock(pvt);
		hook->attached = 1;
		pvt->hook = hook; /* takes the allocation's reference */
		ao2_unlock(pvt);
	}
	ast_channel_unlock(peer);
	if (id < 0) {
		ast_log(LOG_WARNING, "%s: cannot attach a framehook to %s; its voice has a gap while a "
			"digit is down\n", EXT_NAME, ast_channel_name(peer));
		ao2_ref(hook, -2);
		return;
	}
	pvt->peer = ast_channel_ref(peer);
	pvt->peer_hook_id = id;
	ast_verb(4, "%s: DTMF of %s goes to server '%s' directly\n", EXT_NAME, ast_channel_name(peer),
		pvt->conn.server);
}

struct ext_peer_task {
	/*! References; chan is NULL when the channel hung up. */
	struct ast_channel *chan;
	struct ext_pvt *pvt;
};

/*!
 * \brief Puts the peer hook on the channel's current peer: the other
 * channel of a two-party bridge, when suitable; none otherwise.
 */
static int ext_peer_task(void *data)
{
	struct ext_peer_task *task = data;
	struct ext_pvt *pvt = task->pvt;
	struct ast_bridge *bridge = NULL;
	struct ast_channel *peer = NULL;
	int hungup, keep;

	ao2_lock(pvt);
	hungup = pvt->hungup;
	ao2_unlock(pvt);
	if (!hungup && task->chan) {
		ast_channel_lock(task->chan);
		bridge = ast_channel_get_bridge(task->chan);
		ast_channel_unlock(task->chan);
		if (bridge) {
			peer = ast_channel_bridge_peer(task->chan);
		}
		if (peer && !ext_peer_suitable(peer)) {
			peer = ast_channel_unref(peer);
		}
	}
	ao2_lock(pvt);
	keep = peer && pvt->hook && pvt->hook->attached && pvt->peer == peer && pvt->hook->bridge == bridge;
	ao2_unlock(pvt);
	if (!keep) {
		ext_peer_detach(pvt);
		if (peer) {
			ext_peer_attach(pvt, peer, bridge);
		}
	}
	ao2_cleanup(bridge);
	ast_channel_cleanup(peer);
	ast_channel_cleanup(task->chan);
	ao2_ref(pvt, -1);
	ast_free(task);
	return 0;
}

/*! \brief Queues a peer task (chan NULL: only detach). */
static void ext_peer_queue(struct ast_channel *chan, struct ext_pvt *pvt)
{
	struct ext_peer_task *task = ast_calloc(1, sizeof(*task));

	if (!task) {
		return;
	}
	task->chan = chan ? ast_channel_ref(chan) : NULL;
	task->pvt = ao2_bump(pvt);
	if (ast_taskprocessor_push(ext_tps, ext_peer_task, task)) {
		ast_channel_cleanup(task->chan);
		ao2_ref(task->pvt, -1);
		ast_free(task);
	}
}

/*!
 * \brief From the channel's own callbacks (channel locked): queues a peer
 * task when the channel's bridge changed, and every EXT_PEER_CHECK_MS while
 * bridged (a peer may be swapped within a bridge).
 */
static void ext_peer_check(struct ast_channel *ast, struct ext_pvt *pvt)
{
	struct ast_bridge *bridge = ast_channel_internal_bridge(ast);
	struct timeval now;

	if (bridge == pvt->seen_bridge) {
		if (!bridge) {
			return;
		}
		now = ast_tvnow();
		if (ast_tvdiff_ms(now, pvt->last_check) < EXT_PEER_CHECK_MS) {
			return;
		}
	} else {
		now = ast_tvnow();
	}
	pvt->seen_bridge = bridge;
	pvt->last_check = now;
	ext_peer_queue(ast, pvt);
}

/*! \brief Queues a DTMF frame from the server on the channel. */
static void ext_queue_dtmf(struct ast_channel *ast, int begin, char digit, long len)
{
	struct ast_frame f = {
		.frametype = begin ? AST_FRAME_DTMF_BEGIN : AST_FRAME_DTMF_END,
		.subclass.integer = digit,
		.len = len,
		.src = EXT_NAME,
	};

	ast_queue_frame(ast, &f);
}

static void ext_chan_apply(struct ast_channel *ast, struct ext_conn *conn, const struct as_ext_msg *msg)
{
	switch (msg->type) {
	case AS_EXT_MSG_AUDIO: {
		struct ast_frame f;

		ext_voice_frame(msg, &f);
		ast_queue_frame(ast, &f);
		break;
	}
	case AS_EXT_MSG_DTMF:
		if (msg->dtmf_start) {
			if (conn->in_digit) {
				ext_queue_dtmf(ast, 0, conn->in_digit, ast_tvdiff_ms(ast_tvnow(), conn->in_digit_tv));
			}
			conn->in_digit = msg->dtmf_digit;
			conn->in_digit_tv = ast_tvnow();
			ext_queue_dtmf(ast, 1, msg->dtmf_digit, 0);
		} else {
			long len = msg->dtmf_duration_ms;

			if (conn->in_digit != msg->dtmf_digit) {
				if (conn->in_digit) {
					ext_queue_dtmf(ast, 0, conn->in_digit, ast_tvdiff_ms(ast_tvnow(), conn->in_digit_tv));
				}
				ext_queue_dtmf(ast, 1, msg->dtmf_digit, 0);
			} else if (!len) {
				len = ast_tvdiff_ms(ast_tvnow(), conn->in_digit_tv);
			}
			conn->in_digit = 0;
			ext_queue_dtmf(ast, 0, msg->dtmf_digit, len);
		}
		break;
	case AS_EXT_MSG_CONTROL:
		ast_verb(3, "%s: server '%s' signals %s (%u) on %s\n", EXT_NAME, conn->server,
			as_ext_control_name(msg->control), msg->control, ast_channel_name(ast));
		switch (msg->control) {
		case AST_CONTROL_HOLD:
			ast_queue_hold(ast, NULL);
			break;
		case AST_CONTROL_UNHOLD:
			ast_queue_unhold(ast);
			break;
		case AST_CONTROL_ANSWER:
			if (ast_channel_state(ast) != AST_STATE_UP) {
				ast_queue_control(ast, AST_CONTROL_ANSWER);
			}
			break;
		default:
			ast_queue_control(ast, msg->control);
			break;
		}
		break;
	default:
		break;
	}
}

/*!
 * \brief Reads what the server sent and queues it on the channel in order.
 * \return &ast_null_frame, or NULL when the server hung up or the socket
 * closed (the channel then hangs up).
 */
static struct ast_frame *ext_read(struct ast_channel *ast)
{
	struct ext_pvt *pvt = ast_channel_tech_pvt(ast);
	struct ext_conn *conn = pvt ? &pvt->conn : NULL;
	struct as_ext_msg msg;
	size_t n;
	int filled;

	if (!conn || conn->svc < 0) {
		return NULL;
	}
	ext_peer_check(ast, pvt);
	filled = ext_fill(conn);
	while ((n = as_ext_parse(conn->rx.buf, conn->rx.len, &msg)) > 0) {
		if (!ext_check_message(conn, &msg)) {
			if (msg.type == AS_EXT_MSG_HANGUP
				|| (msg.type == AS_EXT_MSG_CONTROL && msg.control == AST_CONTROL_HANGUP)) {
				ext_consume(conn, n);
				ast_channel_hangupcause_set(ast, AST_CAUSE_NORMAL_CLEARING);
				return NULL;
			}
			ext_chan_apply(ast, conn, &msg);
		}
		ext_consume(conn, n);
	}
	if (filled < 0) {
		ast_channel_hangupcause_set(ast, AST_CAUSE_NORMAL_CLEARING);
		return NULL;
	}
	return &ast_null_frame;
}

static int ext_write_frame(struct ast_channel *ast, struct ast_frame *f)
{
	struct ext_pvt *pvt = ast_channel_tech_pvt(ast);
	int res;

	if (!pvt) {
		return -1;
	}
	ext_peer_check(ast, pvt);
	if (f->frametype != AST_FRAME_VOICE) {
		return 0;
	}
	ao2_lock(pvt);
	res = pvt->conn.svc < 0 ? -1 : ext_send_voice(&pvt->conn, f);
	ao2_unlock(pvt);
	return res;
}

static int ext_indicate(struct ast_channel *ast, int condition, const void *data, size_t datalen)
{
	struct ext_pvt *pvt = ast_channel_tech_pvt(ast);
	int res;

	if (!pvt || condition <= 0 || condition > 255) {
		return -1;
	}
	ao2_lock(pvt);
	res = pvt->conn.svc < 0 || ext_send_control(&pvt->conn, condition) ? -1 : 0;
	ao2_unlock(pvt);
	return res;
}

/*! \brief A digit the core writes to our channel: its start (begin) or its end. */
static int ext_send_digit_event(struct ast_channel *ast, char digit, int begin, unsigned int duration)
{
	struct ext_pvt *pvt = ast_channel_tech_pvt(ast);
	int res = -1;

	digit = toupper((unsigned char) digit);
	if (!pvt || !as_ext_valid_digit(digit)) {
		return -1;
	}
	ao2_lock(pvt);
	if (pvt->conn.svc >= 0) {
		res = begin ? ext_digit_begin(&pvt->conn, digit, ast_tvnow())
			: ext_digit_end(&pvt->conn, digit, duration, ast_tvnow());
	}
	ao2_unlock(pvt);
	return res;
}

static int ext_send_digit_begin(struct ast_channel *ast, char digit)
{
	return ext_send_digit_event(ast, digit, 1, 0);
}

static int ext_send_digit_end(struct ast_channel *ast, char digit, unsigned int duration)
{
	return ext_send_digit_event(ast, digit, 0, duration);
}

static int ext_call(struct ast_channel *ast, const char *dest, int timeout)
{
	struct ext_pvt *pvt = ast_channel_tech_pvt(ast);
	int res;

	ast_queue_control(ast, AST_CONTROL_ANSWER);
	ao2_lock(pvt);
	res = ext_send_uuid(&pvt->conn);
	ao2_unlock(pvt);
	return res;
}

/*!
 * \brief Closes the socket (the peer hook stands aside from now on) and
 * leaves the hook's detachment to a peer task: the peer may not be locked
 * here, with this channel locked.
 */
static int ext_hangup(struct ast_channel *ast)
{
	struct ext_pvt *pvt = ast_channel_tech_pvt(ast);

	if (pvt) {
		ao2_lock(pvt);
		pvt->hungup = 1;
		if (pvt->conn.svc >= 0) {
			close(pvt->conn.svc);
			pvt->conn.svc = -1;
		}
		ao2_unlock(pvt);
		ext_peer_queue(NULL, pvt);
		ao2_ref(pvt, -1);
	}
	ast_channel_tech_pvt_set(ast, NULL);
	return 0;
}

static struct ast_channel *ext_request(const char *type, struct ast_format_cap *cap,
	const struct ast_assigned_ids *assignedids, const struct ast_channel *requestor,
	const char *data, int *cause)
{
	char *parse;
	struct ext_pvt *pvt = NULL;
	struct ext_conn *conn;
	struct ast_sockaddr address;
	struct ast_channel *chan;
	struct ast_format_cap *caps = NULL;
	struct ast_format *fmt = NULL;
	uuid_t uu;
	struct ast_flags opts = { 0, };
	char *opt_args[OPT_ARG_ARRAY_SIZE] = { NULL, };
	AST_DECLARE_APP_ARGS(args,
		AST_APP_ARG(destination);
		AST_APP_ARG(uuid);
		AST_APP_ARG(options);
	);

	parse = ast_strdupa(S_OR(data, ""));
	AST_NONSTANDARD_APP_ARGS(args, parse, '/');
	if (ast_strlen_zero(args.destination)
		|| ast_sockaddr_resolve_first_af(&address, args.destination, PARSE_PORT_REQUIRE, AST_AF_UNSPEC)) {
		ast_log(LOG_ERROR, "%s: '%s' is not host:port/uuid[/c(codec)]\n", EXT_NAME, S_OR(data, ""));
		goto failure;
	}
	if (ast_strlen_zero(args.uuid) || uuid_parse(args.uuid, uu)) {
		ast_log(LOG_ERROR, "%s: a UUID is required after host:port (got '%s')\n", EXT_NAME,
			S_OR(args.uuid, ""));
		goto failure;
	}
	if (!ast_strlen_zero(args.options)
		&& ast_app_parse_options(ext_app_options, &opts, opt_args, ast_strdupa(args.options))) {
		ast_log(LOG_ERROR, "%s: cannot parse channel options '%s'\n", EXT_NAME, args.options);
		goto failure;
	}
	if (ast_test_flag(&opts, OPT_CODEC) && !ast_strlen_zero(opt_args[OPT_ARG_CODEC])) {
		fmt = ast_format_cache_get(opt_args[OPT_ARG_CODEC]);
		if (!fmt) {
			ast_log(LOG_ERROR, "%s: unknown codec '%s'\n", EXT_NAME, opt_args[OPT_ARG_CODEC]);
			goto failure;
		}
	} else {
		fmt = ast_format_cap_get_format(cap, 0);
		if (!fmt) {
			ast_log(LOG_ERROR, "%s: no codec for the connection to '%s'\n", EXT_NAME, args.destination);
			goto failure;
		}
	}

	caps = ast_format_cap_alloc(AST_FORMAT_CAP_FLAG_DEFAULT);
	pvt = ao2_alloc(sizeof(*pvt), ext_pvt_destroy);
	if (!pvt) {
		goto failure;
	}
	conn = &pvt->conn;
	if (ext_conn_init(conn, args.destination, args.uuid) || !caps) {
		goto failure;
	}
	conn->svc = ext_connect(args.destination);
	if (conn->svc < 0) {
		goto failure;
	}

	chan = ast_channel_alloc(1, AST_STATE_DOWN, "", "", "", "", "", assignedids, requestor, 0,
		EXT_NAME "/%s-%s", args.destination, args.uuid);
	if (!chan) {
		goto failure;
	}
	ast_channel_set_fd(chan, 0, conn->svc);
	ast_set_flag(ast_channel_flags(chan), AST_FLAG_DISABLE_DEVSTATE_CACHE);
	ast_channel_tech_set(chan, &ext_tech);
	ast_format_cap_append(caps, fmt, 0);
	ast_channel_nativeformats_set(chan, caps);
	ast_channel_set_writeformat(chan, fmt);
	ast_channel_set_rawwriteformat(chan, fmt);
	ast_channel_set_readformat(chan, fmt);
	ast_channel_set_rawreadformat(chan, fmt);
	ast_channel_tech_pvt_set(chan, pvt); /* takes the allocation's reference */
	pbx_builtin_setvar_helper(chan, "AUDIOSOCKET_UUID", args.uuid);
	pbx_builtin_setvar_helper(chan, "AUDIOSOCKET_SERVICE", args.destination);
	ast_channel_unlock(chan);

	ao2_ref(fmt, -1);
	ao2_ref(caps, -1);
	return chan;

failure:
	*cause = AST_CAUSE_FAILURE;
	ao2_cleanup(fmt);
	ao2_cleanup(caps);
	ao2_cleanup(pvt);
	return NULL;
}

/* ------------------------------------------------------------------ */

static const char app_synopsis[] =
	"Carry a channel's audio, DTMF and control signals over an extended AudioSocket connection.";
static const char app_description[] =
	"AudioSocketExt(uuid,host:port[,options])\n"
	"Like AudioSocket(), and also: DTMF begin and end (with the duration) go to the\n"
	"server as 0x02 messages without a gap in the audio, control frames as 0x03;\n"
	"the server's 0x02 are sent on the channel as DTMF, its 0x03 indicated.\n"
	"Options:\n"
	"  c(codec) - the audio format on the socket (default slin, 8 kHz)\n"
	"  m(class) - music-on-hold class passed with a hold from the server\n";

static int unload_module(void)
{
	int res;

	if (ext_peer_hooks) {
		/* Their callbacks are in this module. */
		ast_log(LOG_WARNING, "%s: %d DTMF framehooks still on bridged channels; not unloading\n",
			EXT_NAME, ext_peer_hooks);
		return -1;
	}
	res = ast_unregister_application(app);
	ast_channel_unregister(&ext_tech);
	ao2_cleanup(ext_tech.capabilities);
	ext_tech.capabilities = NULL;
	if (ext_tps) {
		ext_tps = ast_taskprocessor_unreference(ext_tps);
	}
	return res;
}

static int load_module(void)
{
	ext_tech.capabilities = ast_format_cap_alloc(AST_FORMAT_CAP_FLAG_DEFAULT);
	if (!ext_tech.capabilities) {
		return AST_MODULE_LOAD_DECLINE;
	}
	ast_format_cap_append_by_type(ext_tech.capabilities, AST_MEDIA_TYPE_UNKNOWN);
	ext_tps = ast_taskprocessor_get("res_audiosocket_ext/peer", TPS_REF_DEFAULT);
	if (!ext_tps) {
		ao2_ref(ext_tech.capabilities, -1);
		ext_tech.capabilities = NULL;
		return AST_MODULE_LOAD_DECLINE;
	}
	if (ast_channel_register(&ext_tech)) {
		ast_log(LOG_ERROR, "Unable to register channel type %s\n", EXT_NAME);
		ao2_ref(ext_tech.capabilities, -1);
		ext_tech.capabilities = NULL;
		ext_tps = ast_taskprocessor_unreference(ext_tps);
		return AST_MODULE_LOAD_DECLINE;
	}
	if (ast_register_application(app, ext_app_exec, app_synopsis, app_description)) {
		unload_module();
		return AST_MODULE_LOAD_DECLINE;
	}
	return AST_MODULE_LOAD_SUCCESS;
}

AST_MODULE_INFO(ASTERISK_GPL_KEY, AST_MODFLAG_LOAD_ORDER, "AudioSocket, extended protocol (DTMF start/stop, control signals)",
	.support_level = AST_MODULE_SUPPORT_EXTENDED,
	.load = load_module,
	.unload = unload_module,
	.load_pri = AST_MODPRI_CHANNEL_DRIVER,
);
