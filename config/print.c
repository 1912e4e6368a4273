/*
 * config/print.c — the normalised config (`healthd -t -v`): every key,
 * defaults filled in, fixed order, so it diffs against golden files and
 * loads back to the same config — but for secrets: a URL's password and
 * the values of redact_headers print as *** (config/redact.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

void cfg_format_duration(char *buf, size_t len, uint64_t ms)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
	};

	for (size_t i = 0; ms && i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms % units[i].ms == 0) {
			snprintf(buf, len, "%" PRIu64 "%s", ms / units[i].ms,
				 units[i].unit);
			return;
		}
	}
	if (ms == 0)
		snprintf(buf, len, "0s");
	else
		snprintf(buf, len, "%" PRIu64 "ms", ms);
}

void cfg_format_community(char *buf, size_t len, const struct cfg_community *c)
{
	if (c->large)
		snprintf(buf, len, "%" PRIu32 ":%" PRIu32 ":%" PRIu32,
			 c->v[0], c->v[1], c->v[2]);
	else
		snprintf(buf, len, "%" PRIu32 ":%" PRIu32, c->v[0], c->v[1]);
}

const char *cfg_on_fail_str(enum cfg_on_fail f)
{
	static const char *const names[] = {
		[CFG_ON_FAIL_WITHDRAW] = "withdraw",
		[CFG_ON_FAIL_DEGRADE] = "degrade",
		[CFG_ON_FAIL_IGNORE] = "ignore",
	};

	return (unsigned)f < sizeof(names) / sizeof(names[0]) ? names[f] : "?";
}

const char *cfg_on_stop_str(enum cfg_on_stop s)
{
	static const char *const names[] = {
		[CFG_ON_STOP_KEEP] = "keep",
		[CFG_ON_STOP_DRAIN] = "drain",
		[CFG_ON_STOP_WITHDRAW] = "withdraw",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* Every string double-quoted, so no value is read back as another type. */
static void put_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p == '\t')
			fputs("\\t", out);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\x%02x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void put_key_str(FILE *out, int indent, const char *key, const char *s)
{
	fprintf(out, "%*s%s: ", indent, "", key);
	put_str(out, s);
	fputc('\n', out);
}

static void put_duration(FILE *out, int indent, const char *key, uint64_t ms)
{
	char buf[32];

	cfg_format_duration(buf, sizeof(buf), ms);
	fprintf(out, "%*s%s: %s\n", indent, "", key, buf);
}

/* Whole numbers as such, others in the shortest form that reads back as
 * the same double. */
static void put_number(FILE *out, int indent, const char *key, double v)
{
	char buf[32];

	if (v < 1e15 && v == (double)(int64_t)v) {
		snprintf(buf, sizeof(buf), "%.0f", v);
	} else {
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(buf, sizeof(buf), "%.*g", prec, v);
			if (strtod(buf, NULL) == v)
				break;
		}
	}
	fprintf(out, "%*s%s: %s\n", indent, "", key, buf);
}

static void put_dampening(FILE *out, const struct cfg_dampening *d)
{
	fputs("    dampening:\n", out);
	put_duration(out, 6, "half_life", d->half_life_ms);
	put_number(out, 6, "suppress", d->suppress);
	put_number(out, 6, "reuse", d->reuse);
	put_duration(out, 6, "max_suppress", d->max_suppress_ms);
	put_number(out, 6, "penalty", d->penalty);
}

static void put_str_list(FILE *out, int indent, const char *key,
			 char *const *items, size_t n)
{
	fprintf(out, "%*s%s: [", indent, "", key);
	for (size_t i = 0; i < n; i++) {
		fputs(i ? ", " : "", out);
		put_str(out, items[i]);
	}
	fputs("]\n", out);
}

static void put_communities(FILE *out, const char *key,
			    const struct cfg_communities *set)
{
	char buf[48];

	fprintf(out, "      %s: [", key);
	for (size_t i = 0; i < set->n; i++) {
		cfg_format_community(buf, sizeof(buf), &set->items[i]);
		fprintf(out, "%s\"%s\"", i ? ", " : "", buf);
	}
	fputs("]\n", out);
}

/* The wireguard keys; peers as a flow list of "KEY" and {"name": "KEY"}. */
static void put_wg_key(FILE *out, const struct cfg_check *k, const char *key)
{
	const int in = 8;

	if (strcmp(key, "interface") == 0 && k->interface) {
		put_key_str(out, in, key, k->interface);
	} else if (strcmp(key, "peers") == 0 && k->n_peers) {
		fprintf(out, "%*s%s: [", in, "", key);
		for (size_t i = 0; i < k->n_peers; i++) {
			fputs(i ? ", " : "", out);
			if (k->peers[i].name) {
				fputc('{', out);
				put_str(out, k->peers[i].name);
				fputs(": ", out);
			}
			put_str(out, k->peers[i].key);
			if (k->peers[i].name)
				fputc('}', out);
		}
		fputs("]\n", out);
	} else if (strcmp(key, "min_peers") == 0 && k->min_peers) {
		fprintf(out, "%*s%s: %u\n", in, "", key, k->min_peers);
	} else if (strcmp(key, "max_handshake_age") == 0) {
		put_duration(out, in, key, k->max_handshake_age_ms);
	} else if (strcmp(key, "max_rx_idle") == 0) {
		put_duration(out, in, key, k->max_rx_idle_ms);
	} else if (strcmp(key, "uapi_dir") == 0 && k->uapi_dir) {
		put_key_str(out, in, key, k->uapi_dir);
	}
}

/* One type-specific key of a check; the keys come from cfg_check_keys(). */
static void put_check_key(FILE *out, const struct cfg_check *k, const char *key)
{
	const int in = 8;

	if (strcmp(key, "url") == 0 && k->url) {
		size_t len = strlen(k->url) + 4;
		char *url = malloc(len);

		put_key_str(out, in, key, url ? cfg_redact_url(k->url, url, len) : CFG_REDACTED);
		free(url);
	} else if (strcmp(key, "expect_status") == 0) {
		fprintf(out, "%*s%s: [", in, "", key);
		for (size_t i = 0; i < k->n_expect_status; i++)
			fprintf(out, "%s%d", i ? ", " : "", k->expect_status[i]);
		fputs("]\n", out);
	} else if (strcmp(key, "expect_body") == 0 && k->expect_body) {
		put_key_str(out, in, key, k->expect_body);
	} else if (strcmp(key, "connect_to") == 0 && k->connect_to) {
		put_key_str(out, in, key, k->connect_to);
	} else if (strcmp(key, "tls_verify") == 0) {
		fprintf(out, "%*s%s: %s\n", in, "", key, k->tls_verify ? "true" : "false");
	} else if (strcmp(key, "headers") == 0) {
		fprintf(out, "%*s%s:%s\n", in, "", key, k->n_headers ? "" : " {}");
		for (size_t i = 0; i < k->n_headers; i++) {
			fprintf(out, "%*s", in + 2, "");
			put_str(out, k->headers[i].name);
			fputs(": ", out);
			put_str(out, cfg_header_redacted(k, k->headers[i].name)
					     ? CFG_REDACTED : k->headers[i].value);
			fputc('\n', out);
		}
	} else if (strcmp(key, "redact_headers") == 0) {
		put_str_list(out, in, key, k->redact_headers, k->n_redact_headers);
	} else if (strcmp(key, "host") == 0 && k->host) {
		put_key_str(out, in, key, k->host);
	} else if (strcmp(key, "port") == 0) {
		fprintf(out, "%*s%s: %u\n", in, "", key, k->port);
	} else if (strcmp(key, "qname") == 0 && k->qname) {
		put_key_str(out, in, key, k->qname);
	} else if (strcmp(key, "qtype") == 0) {
		fprintf(out, "%*s%s: %s\n", in, "", key, cfg_dns_qtype_str(k->qtype));
	} else if (strcmp(key, "server") == 0 && k->server) {
		put_key_str(out, in, key, k->server);
	} else if (strcmp(key, "expect_rcode") == 0) {
		fprintf(out, "%*s%s: %s\n", in, "", key, cfg_dns_rcode_str(k->expect_rcode));
	} else if (strcmp(key, "expect_answer") == 0 && k->expect_answer) {
		put_key_str(out, in, key, k->expect_answer);
	} else if (strcmp(key, "command") == 0) {
		put_str_list(out, in, key, k->command, k->n_command);
	} else if (strcmp(key, "env") == 0) {
		fprintf(out, "%*s%s:%s\n", in, "", key, k->n_env ? "" : " {}");
		for (size_t i = 0; i < k->n_env; i++) {
			fprintf(out, "%*s%s: ", in + 2, "", k->env[i].name);
			put_str(out, k->env[i].value);
			fputc('\n', out);
		}
	} else if (strcmp(key, "working_directory") == 0 && k->working_directory) {
		put_key_str(out, in, key, k->working_directory);
	} else if (strcmp(key, "user") == 0 && k->user) {
		put_key_str(out, in, key, k->user);
	} else {
		put_wg_key(out, k, key);
	}
}

static void put_check(FILE *out, const struct cfg_check *k)
{
	const char *const *keys = cfg_check_keys(k->type);

	fputs("      - ", out);
	put_key_str(out, 0, "name", k->name);
	put_key_str(out, 8, "type", k->type);
	put_duration(out, 8, "interval", k->interval_ms);
	put_duration(out, 8, "timeout", k->timeout_ms);
	fprintf(out, "        rise: %u\n        fall: %u\n        on_fail: %s\n",
		k->rise, k->fall, cfg_on_fail_str(k->on_fail));
	for (; keys && *keys; keys++)
		put_check_key(out, k, *keys);
}

static void put_service(FILE *out, const struct cfg_service *s)
{
	static const char *const sets[CFG_COMM_SETS] = {
		[CFG_COMM_UP] = "up",
		[CFG_COMM_DEGRADED] = "degraded",
		[CFG_COMM_DRAINING] = "draining",
	};

	fputs("  - ", out);
	put_key_str(out, 0, "name", s->name);
	fputs("    prefixes: [", out);
	for (size_t i = 0; i < s->n_prefixes; i++)
		fprintf(out, "%s\"%s\"", i ? ", " : "", s->prefixes[i].text);
	fputs("]\n    communities:\n", out);
	for (int i = 0; i < CFG_COMM_SETS; i++)
		put_communities(out, sets[i], &s->communities[i]);
	put_duration(out, 4, "drain", s->drain_ms);
	put_duration(out, 4, "hold_down", s->hold_down_ms);
	put_dampening(out, &s->dampening);
	fprintf(out, "    guard:\n      min_announcers: %u\n", s->guard.min_announcers);
	put_duration(out, 6, "step", s->guard.step_ms);
	put_duration(out, 6, "interval", s->guard.interval_ms);
	if (s->maintenance_file)
		put_key_str(out, 4, "maintenance_file", s->maintenance_file);
	fprintf(out, "    on_stop: %s\n", cfg_on_stop_str(s->on_stop));
	if (s->n_on_change)
		put_str_list(out, 4, "on_change", s->on_change, s->n_on_change);
	put_duration(out, 4, "on_change_timeout", s->on_change_timeout_ms);
	fputs("    checks:\n", out);
	for (size_t i = 0; i < s->n_checks; i++)
		put_check(out, &s->checks[i]);
}

void cfg_print(FILE *out, const struct config *cfg)
{
	put_key_str(out, 0, "node", cfg->node);
	put_key_str(out, 0, "state_dir", cfg->state_dir);
	fputs("bird:\n", out);
	put_key_str(out, 2, "socket", cfg->bird.socket);
	put_key_str(out, 2, "include", cfg->bird.include);
	put_duration(out, 2, "timeout", cfg->bird.timeout_ms);
	put_duration(out, 2, "reconcile", cfg->bird.reconcile_ms);
	fprintf(out, "  purge: %s\n", cfg->bird.purge ? "true" : "false");
	fputs("control:\n", out);
	put_key_str(out, 2, "socket", cfg->control.socket);
	put_key_str(out, 2, "readonly_socket", cfg->control.readonly_socket);
	fputs("http:\n", out);
	put_str_list(out, 2, "listen", cfg->http.listen, cfg->http.n_listen);
	fprintf(out, "  per_source_limit: %u\n", cfg->http.per_source_limit);
	fputs("defaults:\n", out);
	put_duration(out, 2, "interval", cfg->defaults.interval_ms);
	put_duration(out, 2, "timeout", cfg->defaults.timeout_ms);
	fprintf(out, "  rise: %u\n  fall: %u\nservices:\n", cfg->defaults.rise,
		cfg->defaults.fall);
	for (size_t i = 0; i < cfg->n_services; i++)
		put_service(out, &cfg->services[i]);
}
