/*
 * Service hooks: a service's on_change command runs after each of its
 * state changes, with HEALTHD_SERVICE, HEALTHD_FROM, HEALTHD_TO and
 * HEALTHD_REASON in its environment. The change and BIRD's commands come
 * first: a hook is queued, and spawned from the loop's next turn, through
 * checks/spawn.c (own process group, bounded by on_change_timeout, always
 * reaped). Hooks of one service run one at a time, in order; a queue holds
 * at most HD_HOOK_QUEUE, the oldest dropped when full. Each job copies
 * what it runs, so a reload or a stop never leaves it pointing into a
 * freed config. Failures are logged with the hook's first output line.
 * At stop one hook per service still runs (see hd_hooks_close).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "healthd/internal.h"

#define HD_HOOK_QUEUE 16

struct hd_hook_job {
	char **argv;
	char *env[5];
	uint64_t timeout_ms;
	char from[16], to[16];
};

struct hd_hook_queue {
	struct hd *hd;
	char service[CFG_NAME_MAX];
	struct hd_hook_job *jobs[HD_HOOK_QUEUE];
	size_t head, n;
	struct hd_hook_job *running;
	struct check_spawn *run;
	uv_timer_t kick;           /* spawn from the loop, after the change went out */
	struct hd_hook_queue *next;
};

static void job_free(struct hd_hook_job *j)
{
	if (!j)
		return;
	for (size_t i = 0; j->argv && j->argv[i]; i++)
		free(j->argv[i]);
	free(j->argv);
	for (size_t i = 0; i < 4; i++)
		free(j->env[i]);
	free(j);
}

static struct hd_hook_job *job_new(const struct cfg_service *s, const char *from,
				   const char *to, const char *reason)
{
	struct hd_hook_job *j = calloc(1, sizeof(*j));
	bool ok = j != NULL;

	if (ok)
		ok = (j->argv = calloc(s->n_on_change + 1, sizeof(char *))) != NULL;
	for (size_t i = 0; ok && i < s->n_on_change; i++)
		ok = (j->argv[i] = strdup(s->on_change[i])) != NULL;
	if (ok)
		ok = asprintf(&j->env[0], "HEALTHD_SERVICE=%s", s->name) >= 0 &&
		     asprintf(&j->env[1], "HEALTHD_FROM=%s", from) >= 0 &&
		     asprintf(&j->env[2], "HEALTHD_TO=%s", to) >= 0 &&
		     asprintf(&j->env[3], "HEALTHD_REASON=%s", reason) >= 0;
	if (!ok) {
		job_free(j);
		return NULL;
	}
	j->timeout_ms = s->on_change_timeout_ms;
	snprintf(j->from, sizeof(j->from), "%s", from);
	snprintf(j->to, sizeof(j->to), "%s", to);
	return j;
}

static void queue_closed(uv_handle_t *h)
{
	free(h->data);
}

/* An idle, empty queue goes: the list holds only services with work. */
static void queue_drop(struct hd_hook_queue *q)
{
	struct hd_hook_queue **pp = &q->hd->hooks;

	while (*pp && *pp != q)
		pp = &(*pp)->next;
	if (*pp)
		*pp = q->next;
	uv_close((uv_handle_t *)&q->kick, queue_closed);
}

static void queue_next(struct hd_hook_queue *q);

static void on_hook_done(const struct check_spawn_result *r, void *arg)
{
	struct hd_hook_queue *q = arg;
	struct hd_hook_job *j = q->running;
	char what[64];

	check_spawn_describe(r, what, sizeof(what));
	if (r->exit_status == 0 && !r->timed_out)
		hd_log(LOG_LVL_INFO, q->service, NULL, "service %s: on_change hook (%s -> %s): %s%s%s",
		       q->service, j->from, j->to, what, r->line[0] ? ": " : "", r->line);
	else
		hd_log(LOG_LVL_WARNING, q->service, NULL,
		       "service %s: on_change hook (%s -> %s) failed: %s%s%s", q->service,
		       j->from, j->to, what, r->line[0] ? ": " : "", r->line);
	q->run = NULL;
	q->running = NULL;
	job_free(j);
	queue_next(q);
}

static void queue_next(struct hd_hook_queue *q)
{
	while (q->n && !q->run) {
		struct hd_hook_job *j = q->jobs[q->head];
		struct check_spawn_opts o = { .argv = j->argv, .env = j->env,
					      .timeout_ms = j->timeout_ms };
		int rc;

		q->jobs[q->head] = NULL;
		q->head = (q->head + 1) % HD_HOOK_QUEUE;
		q->n--;
		q->running = j;
		rc = check_spawn(q->hd->loop, &o, on_hook_done, q, &q->run);
		if (rc < 0) {
			hd_log(LOG_LVL_WARNING, q->service, NULL,
			       "service %s: on_change hook (%s -> %s) failed: cannot run %s: %s",
			       q->service, j->from, j->to, j->argv[0], uv_strerror(rc));
			q->run = NULL;
			q->running = NULL;
			job_free(j);
		}
	}
	if (!q->n && !q->run)
		queue_drop(q);
}

static void on_kick(uv_timer_t *t)
{
	queue_next(t->data);
}

static struct hd_hook_queue *queue_get(struct hd *hd, const char *service)
{
	struct hd_hook_queue *q;

	for (q = hd->hooks; q; q = q->next)
		if (strcmp(q->service, service) == 0)
			return q;
	if (!(q = calloc(1, sizeof(*q))))
		return NULL;
	q->hd = hd;
	snprintf(q->service, sizeof(q->service), "%s", service);
	uv_timer_init(hd->loop, &q->kick);
	q->kick.data = q;
	q->next = hd->hooks;
	hd->hooks = q;
	return q;
}

void hd_hook_change(struct hd *hd, const struct cfg_service *s, enum svc_state from,
		    enum svc_state to, const char *reason)
{
	struct hd_hook_queue *q;
	struct hd_hook_job *j;

	if (!s->n_on_change || hd->stopping)
		return;
	if (!(q = queue_get(hd, s->name)) ||
	    !(j = job_new(s, svc_state_str(from), svc_state_str(to), reason))) {
		hd_log(LOG_LVL_WARNING, s->name, NULL, "service %s: on_change hook (%s -> %s) "
		       "not run: out of memory", s->name, svc_state_str(from), svc_state_str(to));
		return;
	}
	if (q->n == HD_HOOK_QUEUE) {
		struct hd_hook_job *old = q->jobs[q->head];

		hd_log(LOG_LVL_WARNING, s->name, NULL, "service %s: on_change hook (%s -> %s) "
		       "dropped: %d hooks queued behind a running one", s->name, old->from,
		       old->to, HD_HOOK_QUEUE);
		job_free(old);
		q->jobs[q->head] = NULL;
		q->head = (q->head + 1) % HD_HOOK_QUEUE;
		q->n--;
	}
	q->jobs[(q->head + q->n) % HD_HOOK_QUEUE] = j;
	q->n++;
	if (!q->run)
		uv_timer_start(&q->kick, on_kick, 0, 0);
}

/* At stop: the hook running, or else the next in line (the change the
 * stop itself made), runs to its end, bounded by its on_change_timeout;
 * the loop, and so healthd, ends after it. The rest are dropped, a line
 * each. */
void hd_hooks_close(struct hd *hd)
{
	for (struct hd_hook_queue *q = hd->hooks, *next; q; q = next) {
		size_t keep = q->run ? 0 : 1;

		next = q->next;
		while (q->n > keep) {
			struct hd_hook_job **last = &q->jobs[(q->head + q->n - 1) % HD_HOOK_QUEUE];

			hd_log(LOG_LVL_WARNING, q->service, NULL,
			       "service %s: on_change hook (%s -> %s) not run: healthd stopping",
			       q->service, (*last)->from, (*last)->to);
			job_free(*last);
			*last = NULL;
			q->n--;
		}
		uv_timer_stop(&q->kick);
		if (!q->run)
			queue_next(q);   /* spawns the one kept, or drops the empty queue */
	}
}
