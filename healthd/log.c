/*
 * Logging: plain lines on stderr for a terminal or a test, the journal
 * with priorities and SERVICE=/CHECK= fields when running under systemd.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <syslog.h>
/* CODE_FILE= etc. would name this file for every entry. */
#define SD_JOURNAL_SUPPRESS_LOCATION
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

/* systemd sets JOURNAL_STREAM=DEV:INODE of the stream it connected; a
 * child whose stderr was redirected inherits the variable, so only a
 * match with our own stderr means the journal is listening there. */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	uintmax_t dev, ino;
	struct stat st;
	char tail;

	if (!e || sscanf(e, "%ju:%ju%c", &dev, &ino, &tail) != 2)
		return false;
	if (fstat(2, &st) < 0)
		return false;
	return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

/* journal: wanted by the caller; honoured only when stderr is the journal. */
void hd_log_init(bool debug, bool journal)
{
	log_debug_on = debug;
	log_journal = journal && stderr_is_journal();
}

/* One entry, with SERVICE= and CHECK= only when there is one. */
static void journal_send(enum log_level lvl, const char *service,
			 const char *check, const char *msg)
{
	char f[5][1100];
	struct iovec iov[5];
	int n = 0;

	snprintf(f[n++], sizeof(f[0]), "MESSAGE=%s", msg);
	snprintf(f[n++], sizeof(f[0]), "PRIORITY=%d", (int)lvl);
	snprintf(f[n++], sizeof(f[0]), "SYSLOG_IDENTIFIER=%s",
		 program_invocation_short_name);
	if (service)
		snprintf(f[n++], sizeof(f[0]), "SERVICE=%s", service);
	if (check)
		snprintf(f[n++], sizeof(f[0]), "CHECK=%s", check);
	for (int i = 0; i < n; i++)
		iov[i] = (struct iovec){ .iov_base = f[i], .iov_len = strlen(f[i]) };
	if (sd_journal_sendv(iov, n) < 0) /* journald gone: keep the line */
		fprintf(stderr, "<%d>%s\n", (int)lvl, msg);
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
		journal_send(lvl, service, check, msg);
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
