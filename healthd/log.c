/*
 * Logging: plain lines on stderr for a terminal or a test, the journal
 * with priorities and SERVICE=/CHECK= fields when running under systemd.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include "healthd/healthd.h"

static bool log_debug_on;
static bool log_journal;

static const char *const level_names[] = {
	[LOG_LVL_ERR] = "error", [LOG_LVL_WARNING] = "warning",
	[LOG_LVL_NOTICE] = "notice", [LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

void hd_log_init(bool debug, bool journal)
{
	log_debug_on = debug;
	log_journal = journal;
}

void hd_log(enum log_level lvl, const char *service, const char *check,
	    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (lvl == LOG_LVL_DEBUG && !log_debug_on)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_journal) {
		sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", (int)lvl,
				"SERVICE=%s", service ? service : "",
				"CHECK=%s", check ? check : "", NULL);
		return;
	}
	struct timeval tv;
	struct tm tm;
	char ts[32];

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld %s: %s\n", ts, (long)(tv.tv_usec / 1000),
		lvl <= LOG_LVL_DEBUG ? level_names[lvl] : "?", msg);
}
