/*
 * writer.c — the include file, written by a thread of its own.
 *
 * libuv's thread pool also runs the resolver's getaddrinfo; a hung
 * resolver or a disk that takes seconds to fsync must delay neither the
 * other nor a withdrawal. One job at a time: sync.c renders again when
 * this one is done if anything changed meanwhile. Closing never waits for
 * a write that hangs: the thread is detached and frees what is left, and a
 * job handed over before the close is still written.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bird-glue/table.h"

struct bird_writer {
	uv_async_t done_async;
	uv_thread_t thread;
	uv_mutex_t mu;
	uv_cond_t cv;
	writer_done_cb done;
	void *arg;
	bool busy;              /* loop side: a job handed over, not reported */
	/* under mu */
	bool quit, has_job, finished;
	bool thread_done, handle_closed;        /* the last of the two frees */
	char *path, *text;
	int rc;
	char err[256];
};

static void destroy(struct bird_writer *w)
{
	free(w->path);
	free(w->text);
	uv_cond_destroy(&w->cv);
	uv_mutex_destroy(&w->mu);
	free(w);
}

static void on_closed(uv_handle_t *h)
{
	struct bird_writer *w = h->data;
	bool last;

	uv_mutex_lock(&w->mu);
	w->handle_closed = true;
	last = w->thread_done;
	uv_mutex_unlock(&w->mu);
	if (last)
		destroy(w);
}

static void writer_main(void *arg)
{
	struct bird_writer *w = arg;
	bool last;

	uv_mutex_lock(&w->mu);
	for (;;) {
		while (!w->has_job && !w->quit)
			uv_cond_wait(&w->cv, &w->mu);
		if (!w->has_job)
			break;
		char *path = w->path, *text = w->text;
		char err[256] = "";

		uv_mutex_unlock(&w->mu);
		int rc = bird_write_atomic(path, text, err, sizeof(err));
		uv_mutex_lock(&w->mu);
		w->rc = rc;
		memcpy(w->err, err, sizeof(err));
		w->has_job = false;
		w->finished = true;
		if (!w->quit)
			uv_async_send(&w->done_async);
	}
	w->thread_done = true;
	last = w->handle_closed;
	uv_mutex_unlock(&w->mu);
	if (last)
		destroy(w);
}

static void on_done(uv_async_t *a)
{
	struct bird_writer *w = a->data;
	char *text, err[256];
	int rc;

	uv_mutex_lock(&w->mu);
	if (!w->finished) {
		uv_mutex_unlock(&w->mu);
		return;
	}
	w->finished = false;
	text = w->text;
	w->text = NULL;
	free(w->path);
	w->path = NULL;
	rc = w->rc;
	memcpy(err, w->err, sizeof(err));
	uv_mutex_unlock(&w->mu);
	w->busy = false;
	w->done(w->arg, text, rc, err);
}

int writer_new(uv_loop_t *loop, writer_done_cb done, void *arg, struct bird_writer **out)
{
	struct bird_writer *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	w->done = done;
	w->arg = arg;
	if ((rc = uv_mutex_init(&w->mu)) < 0)
		goto fail_free;
	if ((rc = uv_cond_init(&w->cv)) < 0)
		goto fail_mu;
	if ((rc = uv_async_init(loop, &w->done_async, on_done)) < 0)
		goto fail_cv;
	w->done_async.data = w;
	if ((rc = uv_thread_create(&w->thread, writer_main, w)) < 0) {
		/* no thread to wait for: the handle's close frees */
		w->thread_done = true;
		uv_close((uv_handle_t *)&w->done_async, on_closed);
		return rc;
	}
	*out = w;
	return 0;
fail_cv:
	uv_cond_destroy(&w->cv);
fail_mu:
	uv_mutex_destroy(&w->mu);
fail_free:
	free(w);
	return rc;
}

bool writer_busy(const struct bird_writer *w)
{
	return w->busy;
}

int writer_submit(struct bird_writer *w, const char *path, char *text)
{
	char *p;

	if (w->busy)
		return -EBUSY;
	if (!(p = strdup(path))) {
		free(text);
		return -ENOMEM;
	}
	uv_mutex_lock(&w->mu);
	w->path = p;
	w->text = text;
	w->has_job = true;
	uv_cond_signal(&w->cv);
	uv_mutex_unlock(&w->mu);
	w->busy = true;
	return 0;
}

void writer_close(struct bird_writer *w)
{
	if (!w)
		return;
	uv_mutex_lock(&w->mu);
	w->quit = true;
	uv_cond_signal(&w->cv);
	uv_mutex_unlock(&w->mu);
	pthread_detach(w->thread);
	uv_close((uv_handle_t *)&w->done_async, on_closed);
}
