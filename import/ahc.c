/*
 * import/ahc.c — anycast-healthchecker's configuration as healthd.yaml:
 * [daemon] becomes the bird: block (or comments), every other section a
 * service with one check from check_cmd.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
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

/* A service section's settings, its own over [DEFAULT]'s over the
 * documented defaults; the strings are interpolated copies in vals. */
struct ahc_settings {
	const char *cmd, *prefix, *disabled, *on_disabled, *interval, *timeout, *rise, *fall;
	const char *custom, *custom_timeout;
	const struct imp_ini_key *cmd_key, *prefix_key;
	char *vals[64];
	size_t nv;
	/* parsed */
	uint64_t interval_ms, timeout_ms;
	unsigned rise_n, fall_n;
	bool check_disabled;
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
	if (!strcmp(name, "ip_version"))
		return "the family follows from ip_prefix, in anycast-healthchecker as in healthd";
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

/* s->name from the section's, made unique among names[0..idx). */
static void unique_name(struct imp_svc *s, const char *section,
			char names[][CFG_SERVICE_NAME_MAX + 1], size_t idx)
{
	char base[CFG_SERVICE_NAME_MAX + 1];
	unsigned dup = 2;

	imp_service_name(section, s->name, sizeof(s->name));
	snprintf(base, sizeof(base), "%s", s->name);
	for (size_t i = 0; i < idx && dup < 1000; i++)
		if (!strcmp(names[i], s->name)) {
			char tail[8];
			size_t keep;

			snprintf(tail, sizeof(tail), "_%u", dup++);
			keep = strlen(base) + strlen(tail) > CFG_SERVICE_NAME_MAX ?
			       CFG_SERVICE_NAME_MAX - strlen(tail) : strlen(base);
			memcpy(s->name, base, keep);
			strcpy(s->name + keep, tail);
			i = (size_t)-1;
		}
	snprintf(names[idx], CFG_SERVICE_NAME_MAX + 1, "%s", s->name);
}

/* One key into a; false when it is none of the settings mapped. */
static bool take(struct ahc_settings *a, const struct imp_ini_key *k, const char *v)
{
	static const struct { const char *key; size_t off; } keys[] = {
#define K(key, field) { key, offsetof(struct ahc_settings, field) }
		K("check_cmd", cmd), K("ip_prefix", prefix), K("check_disabled", disabled),
		K("on_disabled", on_disabled), K("check_interval", interval),
		K("check_timeout", timeout), K("check_rise", rise), K("check_fail", fall),
		K("custom_bird_reconfigure_cmd", custom),
		K("custom_bird_reconfigure_cmd_timeout", custom_timeout),
#undef K
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(k->name, keys[i].key)) {
			*(const char **)((char *)a + keys[i].off) = v;
			if (!strcmp(k->name, "check_cmd"))
				a->cmd_key = k;
			if (!strcmp(k->name, "ip_prefix"))
				a->prefix_key = k;
			return true;
		}
	return false;
}

/* The section's keys, then those of [DEFAULT] it does not override; the
 * section's own unmapped keys noted in notes. */
static int collect(struct ahc_settings *a, const struct imp_ini *ini,
		   const struct imp_ini_section *sec, FILE *notes, char *err, size_t errlen)
{
	for (int pass = 0; pass < 2; pass++) {
		const struct imp_ini_section *from = pass ? &ini->defaults : sec;

		for (size_t i = 0; i < from->n_keys; i++) {
			const struct imp_ini_key *k = &from->keys[i];
			const char *why;
			char *v;

			if (pass && imp_ini_get(ini, sec, k->name) != k)
				continue;
			if (a->nv >= sizeof(a->vals) / sizeof(a->vals[0]))
				return fail(err, errlen, "%s: [%s]: more than %zu keys", k->where,
					    sec->name, sizeof(a->vals) / sizeof(a->vals[0]));
			if (!(v = a->vals[a->nv++] = imp_ini_value(ini, sec, k, err, errlen)))
				return -1;
			if (take(a, k, v) || pass)
				continue; /* [DEFAULT]'s are noted once, under its heading */
			why = service_key_unmapped(k->name);
			imp_not_mapped(notes, 2, k->name, v,
				       why ? why : "not an anycast-healthchecker setting");
		}
	}
	return 0;
}

/* The values as anycast-healthchecker would take them, within healthd's
 * limits; an error names the line of the key. */
static int validate(struct ahc_settings *a, const struct imp_ini *ini,
		    const struct imp_ini_section *sec, char *err, size_t errlen)
{
	const struct imp_ini_key *bad;
	const char *badname = NULL;
	int disabled = boolean(a->disabled);

	if (!a->prefix_key)
		return fail(err, errlen, "%s: [%s]: no ip_prefix", sec->where, sec->name);
	if (!a->cmd_key)
		return fail(err, errlen, "%s: [%s]: no check_cmd", sec->where, sec->name);
	if (!imp_seconds(a->interval, 24ULL * 3600000, &a->interval_ms) || a->interval_ms < 10)
		badname = "check_interval";
	else if (!imp_seconds(a->timeout, 3600000ULL, &a->timeout_ms))
		badname = "check_timeout";
	else if (unsigned_in(a->rise, &a->rise_n) < 0)
		badname = "check_rise";
	else if (unsigned_in(a->fall, &a->fall_n) < 0)
		badname = "check_fail";
	else if (disabled < 0)
		badname = "check_disabled";
	else if (strcmp(a->on_disabled, "withdraw") && strcmp(a->on_disabled, "advertise"))
		badname = "on_disabled";
	if (badname) {
		bad = imp_ini_get(ini, sec, badname);
		return fail(err, errlen, "%s: %s: '%s' is not valid here", bad ? bad->where : sec->where,
			    badname, bad ? bad->value : "");
	}
	a->check_disabled = disabled == 1;
	return 0;
}

static int service(FILE *out, const struct imp_ini *ini, const struct imp_ini_section *sec,
		   char names[][CFG_SERVICE_NAME_MAX + 1], size_t idx, char *err, size_t errlen)
{
	struct imp_svc s;
	struct ahc_settings a = { .cmd = "", .disabled = "true", .on_disabled = "withdraw",
		.interval = "10", .timeout = "2", .rise = "2", .fall = "2", .custom_timeout = "2" };
	struct cfg_prefix p;
	char text[80];
	int rc = -1;

	if (imp_svc_init(&s) < 0)
		return fail(err, errlen, "out of memory");
	unique_name(&s, sec->name, names, idx);
	fputs("\n  # [", s.notes);
	imp_comment_text(s.notes, sec->name);
	fputs("] (", s.notes);
	imp_comment_text(s.notes, sec->where);
	fputs(")\n", s.notes);
	if (collect(&a, ini, sec, s.notes, err, errlen) < 0 || validate(&a, ini, sec, err, errlen) < 0)
		goto out;
	snprintf(text, sizeof(text), "%s%s", a.prefix, strchr(a.prefix, '/') ? "" :
		 strchr(a.prefix, ':') ? "/128" : "/32");
	if (cfg_parse_prefix(text, &p) < 0) {
		fail(err, errlen, "%s: ip_prefix: '%s' is not an IP prefix", a.prefix_key->where, a.prefix);
		goto out;
	}
	if (!(s.prefixes[s.n_prefixes++] = strdup(p.text))) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	if (a.custom && custom_hook(s.keys, a.custom, a.custom_timeout) < 0) {
		fail(err, errlen, "%s: custom_bird_reconfigure_cmd: an unclosed quote, or more than"
		     " 64 words", imp_ini_get(ini, sec, "custom_bird_reconfigure_cmd")->where);
		goto out;
	}
	if (!a.custom && imp_ini_get(ini, sec, "custom_bird_reconfigure_cmd_timeout"))
		imp_not_mapped(s.notes, 2, "custom_bird_reconfigure_cmd_timeout", a.custom_timeout,
			       "there is no custom_bird_reconfigure_cmd");
	if (imp_check_from_cmd(&s, "check_cmd", a.cmd, false, &a.timeout_ms) < 0) {
		fail(err, errlen, "%s: check_cmd: an unclosed quote, or more than 64 words",
		     a.cmd_key->where);
		goto out;
	}
	imp_interval_timeout(s.check, a.interval_ms, a.timeout_ms, "check_timeout", "check_interval");
	fprintf(s.check, "        rise: %u\n        fall: %u\n", a.rise_n, a.fall_n);
	if (a.check_disabled && !strcmp(a.on_disabled, "advertise")) {
		fputs("        on_fail: ignore                 # check_disabled = true,"
		      " on_disabled = advertise\n", s.check);
	} else {
		fputs("        on_fail: withdraw\n", s.check);
		if (a.check_disabled)
			imp_not_mapped(s.notes, 2, "check_disabled", "true",
				       "the service was never announced (on_disabled = withdraw):"
				       " leave it out, or run `healthctl drain` on it");
	}
	imp_svc_write(out, &s);
	rc = 0;
out:
	for (size_t i = 0; i < a.nv; i++)
		free(a.vals[i]);
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
