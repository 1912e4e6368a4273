/*
 * fuzz_control — the control socket's request handling without a daemon:
 * bytes are framed into lines as the server does (a line ends at '\n', a
 * trailing '\r' is dropped, a line may not reach CTL_LINE_MAX) and every
 * line goes through ctl_request_parse. The same bytes, taken as a config
 * file, go through ctl_socket_scan (what healthctl reads to find healthd).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "healthd/healthd.h"

#define LINE_MAX_BYTES 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(char *line, size_t len)
{
	struct ctl_request req;
	char err[512];
	int rc;

	err[0] = '\0';
	rc = ctl_request_parse(line, &req, err, sizeof(err));
	if (rc < 0) {
		if (!err[0])
			abort();
		return;
	}
	if (rc != 0 || req.cmd > CTL_CHECK)
		abort();
	/* arguments point into the line, never past it */
	if (req.arg && (req.arg < line || req.arg >= line + len || !req.arg[0]))
		abort();
	if ((req.cmd == CTL_DRAIN || req.cmd == CTL_UNDRAIN || req.cmd == CTL_CHECK) && !req.arg)
		abort();
	if (req.cmd != CTL_DRAIN && req.for_ms)
		abort();
	if (req.all && strcmp(req.arg, "--all"))
		abort();
	/* a reason: only for drain/undrain, inside the line, capped, checked */
	if (req.reason) {
		if (req.cmd != CTL_DRAIN && req.cmd != CTL_UNDRAIN)
			abort();
		if (req.reason < line || req.reason >= line + len || !req.reason[0] ||
		    strlen(req.reason) > SVC_REASON_MAX ||
		    ctl_text_check("reason", req.reason, SVC_REASON_MAX, err, sizeof(err)))
			abort();
		for (const unsigned char *p = (const unsigned char *)req.reason; *p; p++)
			if (*p < 0x20 || *p == 0x7f)
				abort();
	}
}

/* Any text: found (a non-empty path that fits), not found, or too long. */
static void scan(const uint8_t *data, size_t size)
{
	char path[108];
	int rc;

	memset(path, 0x55, sizeof(path));
	rc = ctl_socket_scan((const char *)data, size, path, sizeof(path));
	if (rc == 1 && (!memchr(path, '\0', sizeof(path)) || !path[0]))
		abort();
	if (rc != 0 && rc != 1 && rc != -ENAMETOOLONG && rc != -ENOMEM)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[LINE_MAX_BYTES];
	size_t len = 0;

	scan(data, size);

	for (size_t i = 0; i < size; i++) {
		if (data[i] != '\n') {
			if (len == sizeof(buf) - 1)
				return 0;       /* "request line too long": the client is dropped */
			buf[len++] = (char)data[i];
			continue;
		}
		if (len && buf[len - 1] == '\r')
			len--;
		buf[len] = '\0';
		one_line(buf, len);
		len = 0;
	}
	return 0;
}
