/*
 * The extended AudioSocket module's wire parser (asterisk/audiosocket_ext_proto.c):
 * the golden messages of docs/PROTOCOL.md, then every file of the fuzz
 * corpus (asterisk/fuzz/corpus) through the fuzz target's checks. Plain C,
 * no Asterisk needed. Exits non-zero on the first failure.
 */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audiosocket_ext_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int failures;

#define EXPECT(cond)                                                                   \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                    \
		}                                                                      \
	} while (0)

static void golden(void)
{
	struct as_ext_msg msg;
	uint8_t out[9];
	static const uint8_t dtmf_start[] = { 0x02, 0x00, 0x06, 0x01, 0x37, 0x00, 0x00, 0x00, 0x00 };
	static const uint8_t dtmf_stop[] = { 0x02, 0x00, 0x06, 0x00, 0x37, 0x64, 0x00, 0x00, 0x00 };
	static const uint8_t dtmf_long[] = { 0x02, 0x00, 0x06, 0x00, 0x35, 0x04, 0x03, 0x02, 0x01 };
	static const uint8_t answer[] = { 0x03, 0x00, 0x01, 0x04 };
	static const uint8_t audio16k[] = { 0x12, 0x00, 0x04, 0x01, 0x00, 0x02, 0x00 };
	static const uint8_t error[] = { 0xff, 0x00, 0x01, 0x07 };
	static const uint8_t bad_state[] = { 0x02, 0x00, 0x06, 0x02, 0x35, 0, 0, 0, 0 };
	static const uint8_t unknown[] = { 0x04, 0x00, 0x00 };

	EXPECT(as_ext_parse(dtmf_start, sizeof(dtmf_start), &msg) == 9);
	EXPECT(msg.type == AS_EXT_MSG_DTMF && msg.dtmf_start == 1 && msg.dtmf_digit == '7'
		&& msg.dtmf_duration_ms == 0);
	EXPECT(as_ext_parse(dtmf_stop, sizeof(dtmf_stop), &msg) == 9);
	EXPECT(msg.type == AS_EXT_MSG_DTMF && msg.dtmf_start == 0 && msg.dtmf_duration_ms == 100);
	EXPECT(as_ext_parse(dtmf_long, sizeof(dtmf_long), &msg) == 9);
	EXPECT(msg.dtmf_duration_ms == 0x01020304u);
	EXPECT(as_ext_encode_dtmf(out, 0, '7', 100) == 9 && memcmp(out, dtmf_stop, 9) == 0);
	EXPECT(as_ext_encode_dtmf(out, 1, 'e', 0) == 0);
	EXPECT(as_ext_parse(answer, sizeof(answer), &msg) == 4);
	EXPECT(msg.type == AS_EXT_MSG_CONTROL && msg.control == 4);
	EXPECT(strcmp(as_ext_control_name(msg.control), "answer") == 0);
	EXPECT(as_ext_encode_control(out, 16) == 4 && out[0] == 0x03 && out[3] == 16);
	EXPECT(as_ext_parse(audio16k, sizeof(audio16k), &msg) == 7);
	EXPECT(msg.type == AS_EXT_MSG_AUDIO && msg.audio_rate_hz == 16000 && msg.length == 4);
	EXPECT(as_ext_parse(audio16k, sizeof(audio16k) - 1, &msg) == 0);
	EXPECT(as_ext_parse(error, sizeof(error), &msg) == 4);
	EXPECT(msg.type == AS_EXT_MSG_ERROR && msg.error_flags == 7);
	EXPECT(as_ext_parse(bad_state, sizeof(bad_state), &msg) == 9);
	EXPECT(msg.type == AS_EXT_MSG_MALFORMED && msg.problem != NULL);
	EXPECT(as_ext_parse(unknown, sizeof(unknown), &msg) == 3);
	EXPECT(msg.type == AS_EXT_MSG_UNKNOWN && msg.kind == 4);
	EXPECT(as_ext_audio_kind_for_rate(44100) == 0x15);
	EXPECT(as_ext_audio_kind_for_rate(11025) == -1);
	EXPECT(as_ext_rate_for_audio_kind(0x18) == 192000);
}

static int replay(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *entry;
	int files = 0;

	if (!d) {
		fprintf(stderr, "cannot open the corpus at %s\n", dir);
		failures++;
		return 0;
	}
	while ((entry = readdir(d))) {
		char path[4096];
		FILE *f;
		uint8_t *data;
		long size;

		if (entry->d_name[0] == '.') {
			continue;
		}
		if (snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name) >= (int) sizeof(path)) {
			fprintf(stderr, "corpus path too long: %s/%s\n", dir, entry->d_name);
			failures++;
			continue;
		}
		f = fopen(path, "rb");
		if (!f) {
			fprintf(stderr, "cannot read %s\n", path);
			failures++;
			continue;
		}
		fseek(f, 0, SEEK_END);
		size = ftell(f);
		fseek(f, 0, SEEK_SET);
		data = malloc(size > 0 ? (size_t) size : 1);
		if (data && fread(data, 1, (size_t) size, f) == (size_t) size) {
			/* Aborts (a failed test) on a broken promise. */
			LLVMFuzzerTestOneInput(data, (size_t) size);
			files++;
		} else {
			fprintf(stderr, "cannot read %s\n", path);
			failures++;
		}
		free(data);
		fclose(f);
	}
	closedir(d);
	return files;
}

int main(void)
{
	const char *srcdir = getenv("TEST_SRCDIR");
	const char *workspace = getenv("TEST_WORKSPACE");
	char dir[4096];
	int files;

	golden();
	snprintf(dir, sizeof(dir), "%s/%s/asterisk/fuzz/corpus", srcdir ? srcdir : ".",
		workspace ? workspace : "audiosocket_bridge");
	files = replay(dir);
	EXPECT(files >= 20);
	printf("%d corpus files replayed, %d failures\n", files, failures);
	return failures ? 1 : 0;
}
