/*
 * Exec probes: run the check's command (no shell), exit 0 passes. The
 * first line of its output (stdout and stderr, capped) is the detail.
 * spawn.c owns the child: its own process group, killed whole at the
 * timeout, always reaped. One probe of a check runs at a time (check_start
 * refuses a second); a probe that overran says how many it cost.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks/checks.h"

struct exec_check {
	struct check *c;
	struct check_spawn *run;    /* in flight */
	char **env;                 /* NAME=value, NULL-terminated */
	char *strings;              /* what env points into */
};

static void on_done(const struct check_spawn_result *r, void *arg)
{
	struct exec_check *x = arg;
	struct check *c = x->c;
	const char *sep = r->line[0] ? ": " : "";
	char what[64];

	x->run = NULL;
	if (r->timed_out)
		check_report(c, CHECK_TIMEOUT, 0, "no exit within %llums, process group killed%s%.120s",
			     (unsigned long long)c->cfg->timeout_ms, sep, r->line);
	else if (r->exit_status == 0)
		check_report(c, CHECK_OK, 0, "exit 0%s%.140s", sep, r->line);
	else
		check_report(c, CHECK_EXIT, 0, "%s%s%.130s",
			     check_spawn_describe(r, what, sizeof(what)), sep, r->line);
}

static int exec_start(struct check *c)
{
	struct exec_check *x = c->priv;
	const struct cfg_check *cfg = c->cfg;
	struct check_spawn_opts o = {
		.argv = cfg->command,
		.env = x->env,
		.cwd = cfg->working_directory,
		.set_user = cfg->user != NULL,
		.uid = cfg->uid,
		.gid = cfg->gid,
		.timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 1000,
	};
	int rc = check_spawn(check_engine_loop(c->engine), &o, on_done, x, &x->run);

	/* A UV error is a negative errno on Linux. */
	return rc < 0 ? rc : 0;
}

static void exec_cancel(struct check *c)
{
	struct exec_check *x = c->priv;

	if (x && x->run) {
		check_spawn_cancel(x->run);
		x->run = NULL;
	}
}

static void exec_destroy(struct check *c)
{
	struct exec_check *x = c->priv;

	exec_cancel(c);
	if (x) {
		free(x->env);
		free(x->strings);
	}
	free(x);
	c->priv = NULL;
	check_freed(c);
}

/* The check's env as NAME=value strings, built once. */
static int exec_init(struct check *c)
{
	const struct cfg_check *cfg = c->cfg;
	struct exec_check *x;
	size_t len = 0, at = 0;

	if (!cfg->command || !cfg->command[0] || cfg->command[0][0] != '/')
		return -EINVAL;
	if (!(x = calloc(1, sizeof(*x))))
		return -ENOMEM;
	x->c = c;
	for (size_t i = 0; i < cfg->n_env; i++)
		len += strlen(cfg->env[i].name) + strlen(cfg->env[i].value) + 2;
	x->env = calloc(cfg->n_env + 1, sizeof(char *));
	x->strings = malloc(len + 1);
	if (!x->env || !x->strings) {
		free(x->env);
		free(x->strings);
		free(x);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->n_env; i++) {
		x->env[i] = x->strings + at;
		at += (size_t)sprintf(x->strings + at, "%s=%s", cfg->env[i].name,
				      cfg->env[i].value) + 1;
	}
	c->priv = x;
	return 0;
}

const struct check_ops check_exec_ops = {
	.type = "exec",
	.init = exec_init,
	.start = exec_start,
	.cancel = exec_cancel,
	.destroy = exec_destroy,
};
