/*
 * import/ahc.c — anycast-healthchecker's configuration as healthd.yaml:
 * [daemon] becomes the bird: block (or comments), every other section a
 * service with one check from check_cmd.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "import/import.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* [daemon] keys without an equivalent, and why. */
static const struct { const char *key, *why; } daemon_unmapped[] = {
	{ "pidfile", "healthd writes no pid file (systemd tracks it)" },
	{ "ipv4", "healthd announces every family a service has prefixes of" },
	{ "ipv6", "healthd announces every family a service has prefixes of" },
	{ "bird6_conf", "BIRD 2 is one daemon: healthd writes both families into bird.include" },
	{ "bird_variable", "healthd announces through protocol blocks, not a prefix list:"
	  " bird.conf's filter must export the healthd_* protocols (healthd(8))" },
	{ "bird6_variable", "healthd announces through protocol blocks, not a prefix list" },
	{ "bird_reconfigure_cmd", "healthd talks to BIRD's control socket (bird.socket);"
	  " it runs no reconfigure command" },
	{ "bird6_reconfigure_cmd", "healthd talks to BIRD's control socket (bird.socket);"
	  " it runs no reconfigure command" },
	{ "dummy_ip_prefix", "healthd's protocols need no placeholder prefix" },
	{ "dummy_ip6_prefix", "healthd's protocols need no placeholder prefix" },
	{ "bird_keep_changes", "healthd keeps no copies of its include file; its log records each change" },
	{ "bird6_keep_changes", "healthd keeps no copies of its include file; its log records each change" },
	{ "bird_changes_counter", "healthd keeps no copies of its include file" },
	{ "bird6_changes_counter", "healthd keeps no copies of its include file" },
	{ "prometheus_exporter", "healthd serves Prometheus metrics at /metrics on http.listen" },
	{ "prometheus_collector_textfile_dir", "healthd serves /metrics itself, no textfile" },
	{ "prometheus_exporter_interval", "healthd's /metrics is current at every scrape" },
	{ "splay_startup", "no such setting in healthd" },
	{ "interface", "healthd does not check that prefixes are assigned to an interface" },
};
#define N_DAEMON_UNMAPPED (sizeof(daemon_unmapped) / sizeof(daemon_unmapped[0]))

static const char *const log_keys[] = { "loglevel", "log_file", "log_maxbytes", "log_backups",
	"stderr_file", "stderr_log_server", "log_server", "log_server_port", "json_stdout",
	"json_log_file", "json_log_server", "log_format_journalctl", NULL };

/* configparser's getboolean; -1: none of its words. */
static int boolean(const char *v)
{
	static const char *const t[] = { "1", "yes", "true", "on" }, *const f[] = { "0", "no",
		"false", "off" };

	for (int i = 0; i < 4; i++) {
		if (!strcasecmp(v, t[i]))
			return 1;
		if (!strcasecmp(v, f[i]))
			return 0;
	}
	return -1;
}

/* "-s PATH" of a birdc command line: the socket it talks to. */
static const char *birdc_socket(const char *cmd, char *buf, size_t len)
{
	const char *s = strstr(cmd, "birdc");

	s = s ? strstr(s, " -s ") : NULL;
	if (!s)
		return NULL;
	s += 4;
	snprintf(buf, len, "%.*s", (int)strcspn(s, " \t"), s);
	return *buf ? buf : NULL;
}

static int daemon_section(FILE *out, const struct imp_ini *ini,
			  const struct imp_ini_section *d, char *err, size_t errlen)
{
	char *bird_buf = NULL, sock[256];
	size_t bird_len = 0;
	FILE *bird = open_memstream(&bird_buf, &bird_len);
	const char *socket = NULL;

	if (!bird)
		return fail(err, errlen, "out of memory");
	fputs("# [daemon] (", out);
	imp_comment_text(out, d->where);
	fputs(")\n", out);
	for (size_t i = 0; i < d->n_keys; i++) {
		const struct imp_ini_key *k = &d->keys[i];
		char *v = imp_ini_value(ini, d, k, err, errlen);
		size_t j;

		if (!v) {
			fclose(bird);
			free(bird_buf);
			return -1;
		}
		if (!strcmp(k->name, "bird_conf")) {
			fputs("  # bird_conf held the prefix list; healthd writes its protocols"
			      " there instead\n  include: ", bird);
			imp_yaml_str(bird, v);
			fputc('\n', bird);
		} else if (!strcmp(k->name, "purge_ip_prefixes") && boolean(v) == 1) {
			fputs("  purge: true                       # purge_ip_prefixes = true\n", bird);
		} else if (!strcmp(k->name, "purge_ip_prefixes") && boolean(v) == 0) {
			fputs("  purge: false                      # purge_ip_prefixes = false\n", bird);
		} else {
			if (!strcmp(k->name, "bird_reconfigure_cmd") && !socket)
				socket = birdc_socket(v, sock, sizeof(sock));
			for (j = 0; j < N_DAEMON_UNMAPPED; j++)
				if (!strcmp(k->name, daemon_unmapped[j].key))
					break;
			const char *why = j < N_DAEMON_UNMAPPED ? daemon_unmapped[j].why : NULL;

			for (j = 0; !why && log_keys[j]; j++)
				if (!strcmp(k->name, log_keys[j]))
					why = "healthd logs to stderr, which systemd sends to the journal";
			imp_not_mapped(out, 0, k->name, v,
				       why ? why : "not an anycast-healthchecker [daemon] setting");
		}
		free(v);
	}
	if (socket) {
		fputs("  socket: ", bird);
		imp_yaml_str(bird, socket);
		fputs("  # birdc -s of bird_reconfigure_cmd\n", bird);
	}
	fclose(bird);
	if (bird_len)
		fprintf(out, "bird:\n%s", bird_buf);
	free(bird_buf);
	return 0;
}

struct ahc_settings {
	const char *cmd, *prefix, *disabled, *on_disabled, *interval, *timeout, *rise, *fall;
	const char *custom, *custom_timeout;
	const struct imp_ini_key *cmd_key, *prefix_key;
};

static int unsigned_in(const char *v, unsigned *u)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);

	if (end == v || *end || n < 1 || n > 100)
		return -1;
	*u = (unsigned)n;
	return 0;
}

static const char *service_key_unmapped(const char *name)
{
	if (!strcmp(name, "interface") || !strcmp(name, "ip_check_disabled"))
		return "healthd does not check that prefixes are assigned to an interface";
	return NULL;
}

/* The on_change hook that runs custom_bird_reconfigure_cmd with "up" or
 * "down" as anycast-healthchecker did: its words as shlex split them,
 * quoted so that the shell adds nothing. -1: shlex would refuse it. */
static int custom_hook(FILE *f, const char *cmd, const char *timeout)
{
	char *script = NULL;
	size_t len = 0;
	uint64_t ms;
	FILE *sf = open_memstream(&script, &len);

	if (!sf)
		return -1;
	fputs("case \"$HEALTHD_TO\" in up) ", sf);
	int rc = imp_sh_words(sf, cmd);

	fputs(" up;; withdrawn) ", sf);
	rc |= imp_sh_words(sf, cmd);
	fputs(" down;; esac", sf);
	fclose(sf);
	if (rc == 0) {
		fputs("    # custom_bird_reconfigure_cmd, called with up or down as before\n"
		      "    on_change: [\"/bin/sh\", \"-c\", ", f);
		imp_yaml_str(f, script);
		fputs("]\n", f);
		if (timeout && imp_seconds(timeout, CFG_DURATION_MAX_MS, &ms))
			imp_duration(f, "on_change_timeout", 4, ms);
	}
	free(script);
	return rc ? -1 : 0;
}

static int service(FILE *out, const struct imp_ini *ini, const struct imp_ini_section *sec,
		   char names[][CFG_SERVICE_NAME_MAX + 1], size_t idx, char *err, size_t errlen)
{
	struct imp_svc s;
	struct ahc_settings a = { "", NULL, "true", "withdraw", "10", "2", "2", "2", NULL, "2",
		NULL, NULL };
	char *vals[64] = { 0 };
	size_t nv = 0;
	uint64_t interval, timeout;
	unsigned rise, fall;
	int rc = -1;

	if (imp_svc_init(&s) < 0)
		return fail(err, errlen, "out of memory");
	imp_service_name(sec->name, s.name, sizeof(s.name));
	char base[CFG_SERVICE_NAME_MAX + 1];
	unsigned dup = 2;

	snprintf(base, sizeof(base), "%s", s.name);
	for (size_t i = 0; i < idx && dup < 1000; i++)
		if (!strcmp(names[i], s.name)) {
			char tail[8];
			size_t keep;

			snprintf(tail, sizeof(tail), "_%u", dup++);
			keep = strlen(base) + strlen(tail) > CFG_SERVICE_NAME_MAX ?
			       CFG_SERVICE_NAME_MAX - strlen(tail) : strlen(base);
			memcpy(s.name, base, keep);
			strcpy(s.name + keep, tail);
			i = (size_t)-1;
		}
	snprintf(names[idx], CFG_SERVICE_NAME_MAX + 1, "%s", s.name);
	fputs("\n  # [", s.notes);
	imp_comment_text(s.notes, sec->name);
	fputs("] (", s.notes);
	imp_comment_text(s.notes, sec->where);
	fputs(")\n", s.notes);
	/* the section's keys, then those of [DEFAULT] it does not override */
	for (int pass = 0; pass < 2; pass++) {
		const struct imp_ini_section *from = pass ? &ini->defaults : sec;

		for (size_t i = 0; i < from->n_keys; i++) {
			const struct imp_ini_key *k = &from->keys[i];
			const char *why;
			char *v;

			if (pass && imp_ini_get(ini, sec, k->name) != k)
				continue;
			if (nv >= sizeof(vals) / sizeof(vals[0])) {
				fail(err, errlen, "%s: [%s]: more than %zu keys", k->where, sec->name,
				     sizeof(vals) / sizeof(vals[0]));
				goto out;
			}
			if (!(v = vals[nv++] = imp_ini_value(ini, sec, k, err, errlen)))
				goto out;
#define TAKE(key, field) if (!strcmp(k->name, key)) { a.field = v; continue; }
			if (!strcmp(k->name, "check_cmd")) {
				a.cmd = v;
				a.cmd_key = k;
				continue;
			}
			if (!strcmp(k->name, "ip_prefix")) {
				a.prefix = v;
				a.prefix_key = k;
				continue;
			}
			TAKE("check_disabled", disabled) TAKE("on_disabled", on_disabled)
			TAKE("check_interval", interval) TAKE("check_timeout", timeout)
			TAKE("check_rise", rise) TAKE("check_fail", fall)
			TAKE("custom_bird_reconfigure_cmd", custom)
			TAKE("custom_bird_reconfigure_cmd_timeout", custom_timeout)
#undef TAKE
			if (pass)
				continue; /* noted once, under [DEFAULT] */
			why = service_key_unmapped(k->name);
			imp_not_mapped(s.notes, 2, k->name, v,
				       why ? why : "not an anycast-healthchecker setting");
		}
	}
	if (!a.prefix_key) {
		fail(err, errlen, "%s: [%s]: no ip_prefix", sec->where, sec->name);
		goto out;
	}
	struct cfg_prefix p;
	char text[80];

	snprintf(text, sizeof(text), "%s%s", a.prefix, strchr(a.prefix, '/') ? "" :
		 strchr(a.prefix, ':') ? "/128" : "/32");
	if (cfg_parse_prefix(text, &p) < 0) {
		fail(err, errlen, "%s: ip_prefix: '%s' is not an IP prefix", a.prefix_key->where, a.prefix);
		goto out;
	}
	if (!(s.prefixes[s.n_prefixes++] = strdup(p.text)))
		goto nomem;
	if (!a.cmd_key) {
		fail(err, errlen, "%s: [%s]: no check_cmd", sec->where, sec->name);
		goto out;
	}
	const struct imp_ini_key *bad = NULL;
	const char *badname = NULL;

	if (!imp_seconds(a.interval, (24ULL * 3600000), &interval) || interval < 10)
		badname = "check_interval";
	else if (!imp_seconds(a.timeout, 3600000ULL, &timeout))
		badname = "check_timeout";
	else if (unsigned_in(a.rise, &rise) < 0)
		badname = "check_rise";
	else if (unsigned_in(a.fall, &fall) < 0)
		badname = "check_fail";
	else if (boolean(a.disabled) < 0)
		badname = "check_disabled";
	else if (strcmp(a.on_disabled, "withdraw") && strcmp(a.on_disabled, "advertise"))
		badname = "on_disabled";
	if (badname) {
		bad = imp_ini_get(ini, sec, badname);
		fail(err, errlen, "%s: %s: '%s' is not valid here", bad ? bad->where : sec->where,
		     badname, bad ? bad->value : "");
		goto out;
	}
	if (a.custom && custom_hook(s.keys, a.custom, a.custom_timeout) < 0) {
		const struct imp_ini_key *ck = imp_ini_get(ini, sec, "custom_bird_reconfigure_cmd");

		fail(err, errlen, "%s: custom_bird_reconfigure_cmd: an unclosed quote, or more than"
		     " 64 words", ck->where);
		goto out;
	}
	else if (imp_ini_get(ini, sec, "custom_bird_reconfigure_cmd_timeout"))
		imp_not_mapped(s.notes, 2, "custom_bird_reconfigure_cmd_timeout", a.custom_timeout,
			       "there is no custom_bird_reconfigure_cmd");
	if (imp_check_from_cmd(&s, "check_cmd", a.cmd, false, &timeout) < 0) {
		fail(err, errlen, "%s: check_cmd: an unclosed quote, or more than 64 words",
		     a.cmd_key->where);
		goto out;
	}
	imp_duration(s.check, "interval", 8, interval);
	imp_duration(s.check, "timeout", 8, timeout);
	fprintf(s.check, "        rise: %u\n        fall: %u\n", rise, fall);
	if (boolean(a.disabled) == 1 && !strcmp(a.on_disabled, "advertise")) {
		fputs("        on_fail: ignore                 # check_disabled = true,"
		      " on_disabled = advertise\n", s.check);
	} else {
		fputs("        on_fail: withdraw\n", s.check);
		if (boolean(a.disabled) == 1)
			imp_not_mapped(s.notes, 2, "check_disabled", "true",
				       "the service was never announced (on_disabled = withdraw):"
				       " leave it out, or run `healthctl drain` on it");
	}
	imp_svc_write(out, &s);
	rc = 0;
	goto out;
nomem:
	fail(err, errlen, "out of memory");
out:
	for (size_t i = 0; i < nv; i++)
		free(vals[i]);
	imp_svc_free(&s);
	return rc;
}

/* Keys of [DEFAULT] that services inherit: the check_* and other service
 * settings are mapped in each service; the rest are noted here, once. */
static int defaults_section(FILE *out, const struct imp_ini *ini, char *err, size_t errlen)
{
	static const char *const per_service[] = { "check_cmd", "ip_prefix", "check_disabled",
		"on_disabled", "check_interval", "check_timeout", "check_rise", "check_fail",
		"custom_bird_reconfigure_cmd", "custom_bird_reconfigure_cmd_timeout", NULL };
	const struct imp_ini_section *d = &ini->defaults;
	bool header = false;

	for (size_t i = 0; i < d->n_keys; i++) {
		const struct imp_ini_key *k = &d->keys[i];
		const char *why = service_key_unmapped(k->name);
		size_t j;
		char *v;

		for (j = 0; per_service[j] && strcmp(per_service[j], k->name); j++)
			;
		if (per_service[j])
			continue;
		if (!(v = imp_ini_value(ini, NULL, k, err, errlen)))
			return -1;
		if (!header)
			fputs("# [DEFAULT]\n", out);
		header = true;
		imp_not_mapped(out, 0, k->name, v, why ? why : "not an anycast-healthchecker setting");
		free(v);
	}
	return 0;
}

static int conf_name(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 5 && !strcmp(d->d_name + n - 5, ".conf") && d->d_name[0] != '.';
}

static int read_path(struct imp_ini *ini, FILE *out, const char *path, char *err, size_t errlen)
{
	struct dirent **list;
	struct stat st;
	int n, rc = 0;

	if (stat(path, &st) < 0)
		return fail(err, errlen, "%s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode)) {
		fputs("#   ", out);
		imp_comment_text(out, path);
		fputc('\n', out);
		return imp_ini_read(ini, path, err, errlen);
	}
	if ((n = scandir(path, &list, conf_name, alphasort)) < 0)
		return fail(err, errlen, "%s: %s", path, strerror(errno));
	for (int i = 0; i < n; i++) {
		char *p = NULL;

		if (!rc && asprintf(&p, "%s/%s", path, list[i]->d_name) >= 0) {
			fputs("#   ", out);
			imp_comment_text(out, p);
			fputc('\n', out);
			rc = imp_ini_read(ini, p, err, errlen);
		}
		free(p);
		free(list[i]);
	}
	free(list);
	return rc;
}

int imp_anycast_healthchecker(FILE *out, char **paths, int n, char *err, size_t errlen)
{
	struct imp_ini ini = { 0 };
	char *buf = NULL;
	size_t len = 0, n_svc = 0;
	FILE *o = open_memstream(&buf, &len);
	int rc = -1;

	if (!o)
		return fail(err, errlen, "out of memory");
	fputs("# healthd.yaml from the anycast-healthchecker configuration in\n", o);
	for (int i = 0; i < n; i++)
		if (read_path(&ini, o, paths[i], err, errlen) < 0)
			goto out;
	fputs("# Validate with `healthd -t -c FILE` before use.\n", o);
	char (*names)[CFG_SERVICE_NAME_MAX + 1] = calloc(ini.n_sections + 1, sizeof(*names));

	if (!names) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < ini.n_sections; i++)
		if (!strcmp(ini.sections[i].name, "daemon") &&
		    daemon_section(o, &ini, &ini.sections[i], err, errlen) < 0)
			goto out_names;
	if (defaults_section(o, &ini, err, errlen) < 0)
		goto out_names;
	for (size_t i = 0; i < ini.n_sections; i++) {
		if (!strcmp(ini.sections[i].name, "daemon"))
			continue;
		if (!n_svc)
			fputs("services:\n", o);
		if (service(o, &ini, &ini.sections[i], names, n_svc++, err, errlen) < 0)
			goto out_names;
	}
	if (!n_svc) {
		fail(err, errlen, "%s: no service sections", n ? paths[n - 1] : "");
		goto out_names;
	}
	fflush(o);
	fwrite(buf, 1, len, out);
	rc = 0;
out_names:
	free(names);
out:
	fclose(o);
	free(buf);
	imp_ini_free(&ini);
	return rc;
}
