/*
 * Operator intent across restarts: every drain asked for over the control
 * socket, with its wall-clock deadline, who asked and why, is kept in
 * STATE_DIR/intent.json and read back at start, before the first verdict.
 *
 * The file is written whole at every drain and undrain, atomically (a
 * temporary file, fsync, rename, fsync of the directory), in the loop's
 * thread pool so a slow disk never stalls probes. A failed write is logged
 * with the path and the error and retried with a growing delay.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "healthd/internal.h"

#define INTENT_FILE "intent.json"
#define INTENT_VERSION 1
#define RETRY_MAX_MS 60000

int64_t hd_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the file's format (pure) ---- */

json_t *svc_intent_json(const struct svc_intent *in)
{
	json_t *o = json_pack("{s:b,s:I,s:I,s:I,s:s}", "drained", in->drained,
			      "since_ms", (json_int_t)in->since_ms,
			      "until_ms", (json_int_t)in->until_ms,
			      "uid", (json_int_t)in->uid, "user", in->user);

	if (o && in->reason[0])
		json_object_set_new(o, "reason", json_string(in->reason));
	return o;
}

static int get_int(json_t *o, const char *key, json_int_t min, json_int_t *v,
		   char *err, size_t errlen)
{
	json_t *x = json_object_get(o, key);

	if (!json_is_integer(x) || json_integer_value(x) < min) {
		snprintf(err, errlen, "'%s' is missing or not an integer >= %lld", key,
			 (long long)min);
		return -EINVAL;
	}
	*v = json_integer_value(x);
	return 0;
}

/* Optional text; the same rules as over the control socket, since the
 * file could have been edited by hand. */
static int get_text(json_t *o, const char *key, char *out, size_t size,
		    char *err, size_t errlen)
{
	json_t *x = json_object_get(o, key);

	out[0] = '\0';
	if (!x || (json_is_string(x) && !json_string_length(x)))
		return 0;
	if (!json_is_string(x)) {
		snprintf(err, errlen, "'%s' is not a string", key);
		return -EINVAL;
	}
	if (ctl_text_check(key, json_string_value(x), size - 1, err, errlen) < 0)
		return -EINVAL;
	snprintf(out, size, "%s", json_string_value(x));
	return 0;
}

int svc_intent_from_json(json_t *o, struct svc_intent *in, char *err, size_t errlen)
{
	json_int_t since, until, uid;

	memset(in, 0, sizeof(*in));
	if (!json_is_object(o)) {
		snprintf(err, errlen, "not an object");
		return -EINVAL;
	}
	if (!json_is_boolean(json_object_get(o, "drained"))) {
		snprintf(err, errlen, "'drained' is missing or not true/false");
		return -EINVAL;
	}
	if (get_int(o, "since_ms", 0, &since, err, errlen) < 0 ||
	    get_int(o, "until_ms", 0, &until, err, errlen) < 0 ||
	    get_int(o, "uid", -1, &uid, err, errlen) < 0 ||
	    get_text(o, "user", in->user, sizeof(in->user), err, errlen) < 0 ||
	    get_text(o, "reason", in->reason, sizeof(in->reason), err, errlen) < 0)
		return -EINVAL;
	in->drained = json_is_true(json_object_get(o, "drained"));
	in->since_ms = since;
	in->until_ms = until;
	in->uid = (long)uid;
	return 0;
}

json_t *hd_intent_parse(const char *text, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je), *svcs, *v;
	struct svc_intent in;
	const char *name;
	char why[256];

	if (!doc) {
		snprintf(err, errlen, "line %d column %d: %s", je.line, je.column, je.text);
		return NULL;
	}
	svcs = json_object_get(doc, "services");
	if (!json_is_object(doc) || json_integer_value(json_object_get(doc, "version")) != INTENT_VERSION) {
		snprintf(err, errlen, "not a version %d state file", INTENT_VERSION);
		goto fail;
	}
	if (!json_is_object(svcs)) {
		snprintf(err, errlen, "'services' is missing or not an object");
		goto fail;
	}
	json_object_foreach(svcs, name, v) {
		if (!cfg_name_valid(name)) {
			snprintf(err, errlen, "service name '%.64s' is not valid", name);
			goto fail;
		}
		if (svc_intent_from_json(v, &in, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "service %s: %s", name, why);
			goto fail;
		}
	}
	return doc;
fail:
	json_decref(doc);
	return NULL;
}

/* ---- in the daemon ---- */

struct intent_job {
	uv_work_t req;
	struct hd *hd;
	char *dir, *path, *text;
	int rc;
	char err[512];
};

static char *state_path(const struct hd *hd)
{
	char *p = NULL;

	return asprintf(&p, "%s/%s", hd->cfg->state_dir, INTENT_FILE) < 0 ? NULL : p;
}

static char *render(const struct hd *hd)
{
	json_t *doc = json_object(), *svcs = json_object();
	char *text;

	json_object_set_new(doc, "version", json_integer(INTENT_VERSION));
	json_object_set_new(doc, "written_ms", json_integer((json_int_t)hd_wall_ms()));
	for (size_t i = 0; i < hd->n_svcs; i++) {
		const struct svc *s = &hd->svcs[i]->svc;

		if (s->intent.drained)
			json_object_set_new(svcs, s->cfg->name, svc_intent_json(&s->intent));
	}
	json_object_set_new(doc, "services", svcs);
	text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(doc);
	return text;
}

static void job_free(struct intent_job *j)
{
	free(j->dir);
	free(j->path);
	free(j->text);
	free(j);
}

/* In the thread pool. */
static void job_write(uv_work_t *req)
{
	struct intent_job *j = req->data;

	if (mkdir(j->dir, 0750) < 0 && errno != EEXIST) {
		j->rc = -errno;
		snprintf(j->err, sizeof(j->err), "%s: cannot create the state directory %s: %s",
			 j->path, j->dir, strerror(errno));
		return;
	}
	j->rc = bird_write_atomic(j->path, j->text, j->err, sizeof(j->err));
}

static void job_done(uv_work_t *req, int status)
{
	struct intent_job *j = req->data;
	struct hd *hd = j->hd;
	struct hd_intent_io *io = &hd->intent;

	io->busy = false;
	if (status < 0 && !j->rc) {
		j->rc = status;
		snprintf(j->err, sizeof(j->err), "%s: %s", j->path, uv_strerror(status));
	}
	if (j->rc < 0) {
		uint64_t delay = 1000ull << (io->failures < 6 ? io->failures : 6);

		delay = delay > RETRY_MAX_MS ? RETRY_MAX_MS : delay;
		io->failures++;
		io->dirty = true;
		io->retry_ms = hd_now_ms(hd) + delay;
		log_err("state file %s not written, operator intent is not saved (attempt %u, "
			"next in %llus): %s", j->path, io->failures,
			(unsigned long long)(delay / 1000), j->err);
	} else if (io->failures) {
		log_notice("state file %s written after %u failed attempts", j->path, io->failures);
		io->failures = 0;
	}
	job_free(j);
	if (io->dirty && !hd->stopping && hd_now_ms(hd) >= io->retry_ms)
		hd_intent_save(hd);
}

void hd_intent_save(struct hd *hd)
{
	struct hd_intent_io *io = &hd->intent;
	struct intent_job *j;
	char *text;

	io->dirty = true;
	if (io->busy)
		return;   /* written again when the write in flight ends */
	if (!(j = calloc(1, sizeof(*j))))
		goto oom;
	text = render(hd);
	if (!text || asprintf(&j->text, "%s\n", text) < 0)
		j->text = NULL;
	free(text);
	if (!j->text || !(j->path = state_path(hd)) || !(j->dir = strdup(hd->cfg->state_dir))) {
		job_free(j);
		goto oom;
	}
	j->hd = hd;
	j->req.data = j;
	io->dirty = false;
	io->busy = true;
	if (uv_queue_work(hd->loop, &j->req, job_write, job_done) < 0) {
		io->busy = false;
		io->dirty = true;
		io->retry_ms = hd_now_ms(hd) + 1000;
		log_err("state file %s: cannot queue the write", j->path);
		job_free(j);
	}
	return;
oom:
	log_err("state file: out of memory; operator intent is not saved");
	io->retry_ms = hd_now_ms(hd) + 1000;
}

void hd_intent_tick(struct hd *hd)
{
	if (hd->intent.dirty && !hd->intent.busy && hd_now_ms(hd) >= hd->intent.retry_ms)
		hd_intent_save(hd);
}

static char *read_file(const char *path, size_t *len, int *rc)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n;

	*len = 0;
	if (!f) {
		*rc = -errno;
		return NULL;
	}
	do {
		char *nb = realloc(buf, cap += 65536);

		if (!nb || cap > 16 << 20) {
			free(nb ? nb : buf);
			fclose(f);
			*rc = nb ? -EFBIG : -ENOMEM;
			return NULL;
		}
		buf = nb;
		n = fread(buf + *len, 1, cap - *len, f);
		*len += n;
	} while (n && *len == cap);
	*rc = ferror(f) ? -EIO : 0;
	fclose(f);
	if (*rc < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

void hd_intent_describe(const struct svc_intent *in, char *buf, size_t len)
{
	char by[96], until[64] = ", until undrain";

	if (in->user[0])
		snprintf(by, sizeof(by), "%s (uid %ld)", in->user, in->uid);
	else if (in->uid >= 0)
		snprintf(by, sizeof(by), "uid %ld", in->uid);
	else
		snprintf(by, sizeof(by), "an unknown user");
	if (in->until_ms) {
		time_t t = (time_t)(in->until_ms / 1000);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(until, sizeof(until), ", until %Y-%m-%dT%H:%M:%SZ", &tm);
	}
	snprintf(buf, len, "by %s%s%s%s", by, in->drained ? until : "",
		 in->reason[0] ? ", reason: " : "", in->reason);
}

static void restore_one(struct hd *hd, const char *path, const char *name, json_t *v,
			int64_t wall, bool *changed)
{
	const struct cfg_service *cs = cfg_service_find(hd->cfg, name);
	struct svc_intent in;
	char err[256], what[400];

	if (svc_intent_from_json(v, &in, err, sizeof(err)) < 0 || !in.drained)
		return;   /* checked by hd_intent_parse; undrained entries are not written */
	hd_intent_describe(&in, what, sizeof(what));
	for (size_t i = 0; cs && i < hd->n_svcs; i++) {
		struct svc *s = &hd->svcs[i]->svc;

		if (s->cfg != cs)
			continue;
		if (svc_intent_set(s, &in, hd_now_ms(hd), wall)) {
			hd_log(LOG_LVL_NOTICE, name, NULL, "service %s: drain restored from %s: %s",
			       name, path, what);
		} else {
			hd_log(LOG_LVL_NOTICE, name, NULL, "service %s: the drain %s ended while "
			       "healthd was not running: undrained", name, what);
			*changed = true;
		}
		return;
	}
	log_warn("state file %s: service %s is not in the config; its drain (%s) is dropped",
		 path, name, what);
	*changed = true;
}

void hd_intent_restore(struct hd *hd)
{
	char *path = state_path(hd), *text, err[512];
	size_t len;
	int rc;
	json_t *doc, *v;
	const char *name;
	bool changed = false;

	if (!path)
		return;
	text = read_file(path, &len, &rc);
	if (!text) {
		if (rc == -ENOENT)
			log_info("state file %s not found: no operator intent to restore", path);
		else
			log_err("state file %s cannot be read (%s): starting with no operator intent",
				path, strerror(-rc));
		free(path);
		return;
	}
	doc = hd_intent_parse(text, len, err, sizeof(err));
	free(text);
	if (!doc) {
		log_err("state file %s is corrupt (%s): starting with no operator intent; "
			"the next drain or undrain replaces it", path, err);
		free(path);
		return;
	}
	int64_t wall = hd_wall_ms();

	json_object_foreach(json_object_get(doc, "services"), name, v)
		restore_one(hd, path, name, v, wall, &changed);
	json_decref(doc);
	free(path);
	/* written from the loop's first tick: hd_new may still fail and free hd */
	if (changed)
		hd->intent.dirty = true;
}
