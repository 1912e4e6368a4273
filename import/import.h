/*
 * import/ — `healthctl import`: read another health checker's configuration
 * and print an equivalent healthd.yaml.
 *
 * Sources: anycast-healthchecker's INI files (ahc.c) and the options of
 * ExaBGP's healthcheck (exabgp.c). A check command that is a recognisable
 * curl or dig call becomes an http or dns check, anything else an exec
 * check (cmd.c). Whatever has no equivalent is printed as a comment,
 * "# not mapped: KEY = VALUE: why". Errors name FILE:LINE.
 *
 * import/ uses config/ (value parsers) and nothing above it.
 */
#ifndef HEALTHD_IMPORT_H
#define HEALTHD_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config/config.h"

/* ---- ini.c: the INI dialect of Python's configparser ---- */

struct imp_ini_key {
	char *name;                 /* lower case, as configparser keeps it */
	char *value;                /* continuation lines joined by '\n' */
	char where[320];            /* "FILE:LINE" */
};

struct imp_ini_section {
	char *name;
	char where[320];
	struct imp_ini_key *keys;
	size_t n_keys;
};

struct imp_ini {
	struct imp_ini_section *sections;   /* [DEFAULT] is not among them */
	size_t n_sections;
	struct imp_ini_section defaults;
};

/* Add PATH's sections to ini: a section seen before gains or replaces
 * keys, as configparser does across files. 0, or -1 with "FILE:LINE: why"
 * in err. */
int imp_ini_read(struct imp_ini *ini, const char *path, char *err, size_t errlen);
void imp_ini_free(struct imp_ini *ini);
/* The key in the section, else in [DEFAULT]; NULL when neither has it. */
const struct imp_ini_key *imp_ini_get(const struct imp_ini *ini,
				      const struct imp_ini_section *s, const char *name);
/* The value with configparser's interpolation done: "%%" is '%',
 * "%(key)s" that key's value. NULL, with "FILE:LINE: why" in err, when
 * configparser would refuse it. The caller frees. */
char *imp_ini_value(const struct imp_ini *ini, const struct imp_ini_section *s,
		    const struct imp_ini_key *k, char *err, size_t errlen);

/* ---- emit.c: one service of the output ---- */

#define IMP_PREFIXES_MAX 64

struct imp_svc {
	char name[CFG_SERVICE_NAME_MAX + 1];
	char *prefixes[IMP_PREFIXES_MAX];
	size_t n_prefixes;
	FILE *notes;        /* comment lines written above the service */
	FILE *keys;         /* service keys after prefixes, indented 4 */
	FILE *check;        /* check keys after type, indented 8 */
	const char *check_type;
	char *notes_buf, *keys_buf, *check_buf;
	size_t notes_len, keys_len, check_len;
};

int imp_svc_init(struct imp_svc *s);
void imp_svc_free(struct imp_svc *s);
/* "- name: ...", prefixes, the keys, the one check. */
void imp_svc_write(FILE *out, struct imp_svc *s);
/* s as a YAML double-quoted scalar. */
void imp_yaml_str(FILE *f, const char *s);
/* s for a comment line: what YAML would take as a line break, a control
 * character or not UTF-8 shown as ' ' or '?'. */
void imp_comment_text(FILE *f, const char *s);
/* A service name from another tool's: [a-z0-9_], at most
 * CFG_SERVICE_NAME_MAX; "service" when nothing is left. */
void imp_service_name(const char *from, char *buf, size_t len);
/* "# not mapped: KEY = VALUE: why" at indent, the value on one line. */
void imp_not_mapped(FILE *f, int indent, const char *key, const char *value,
		    const char *why);
/* Seconds as another tool writes them ("10", "0.5") into ms; false when
 * not a positive number within max. */
bool imp_seconds(const char *s, uint64_t max_ms, uint64_t *ms);
void imp_duration(FILE *f, const char *key, int indent, uint64_t ms);
/* interval: and timeout: of a check; a timeout longer than the interval
 * (which healthd refuses) is clamped to it, with a comment naming what
 * the other tool called them. */
void imp_interval_timeout(FILE *f, uint64_t interval_ms, uint64_t timeout_ms,
			  const char *timeout_key, const char *interval_key);

/* ---- cmd.c: a check command as a check ---- */

/* Write into s->check the keys of the check that cmd amounts to and set
 * s->check_type: http for a curl call, dns for a dig call, else exec, run
 * as the original ran it: through /bin/sh (shell), or split into words as
 * Python's shlex.split does. timeout_ms may be lowered (curl --max-time,
 * dig +time). -1: not shell, and shlex would refuse it (an unclosed
 * quote) or it has more than 64 words. what names the key in comments. */
int imp_check_from_cmd(struct imp_svc *s, const char *what, const char *cmd, bool shell,
		       uint64_t *timeout_ms);

/* cmd split as shlex.split splits it, each word quoted for /bin/sh where
 * it needs to be. -1: shlex would refuse it, or more than 64 words. */
int imp_sh_words(FILE *f, const char *cmd);

/* ---- ahc.c and exabgp.c ---- */

/* Print the healthd.yaml for anycast-healthchecker's files and
 * directories (each *.conf in a directory, in name order). 0, or -1 with
 * "FILE:LINE: why" in err. */
int imp_anycast_healthchecker(FILE *out, char **paths, int n, char *err, size_t errlen);
/* The same for the options of ExaBGP's healthcheck (--config FILE read
 * as it does: lines of OPTION=VALUE before the other arguments). */
int imp_exabgp_healthcheck(FILE *out, char **args, int n, char *err, size_t errlen);

#endif
