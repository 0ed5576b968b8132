/*
 * job.c: one call = one job = one napi_async_work. Arguments are parsed into the job on the main
 * thread, run_* executes on a libuv pool thread, and the completion callback (main thread again)
 * settles the promise and frees everything the job still owns.
 */
#include "jail.h"
#include "addon.h"

#include <stdlib.h>
#include <unistd.h>

/* A job's failure as the Error it rejects with; ENOTREG is ours, so it has no errno of its own. */
static napi_value job_error(napi_env env, const failure_t *f) {
  if (f->err == JAIL_ENOTREG) return coded_error(env, "ENOTREG", EINVAL, "not a regular file", f->syscall);
  return errno_error(env, f->err, f->syscall);
}

static void job_execute(napi_env env, void *data) {
  job_t *j = data;
  if (j->f.err == 0) j->run(j); /* an argument error was found before queueing */
}

static void job_free(napi_env env, job_t *j) {
  if (j->out_fd >= 0) close(j->out_fd); /* opened, but never handed to JS */
  if (j->new_dir != NULL) free_dir(j->new_dir);
  for (uint32_t i = 0; i < j->n_entries; i++) free(j->entries[i].name);
  free(j->entries);
  free(j->out_str);
  free(j->head);
  napi_delete_async_work(env, j->work);
  abandon(env, j);
}

static void job_complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  if (status != napi_ok && j->f.err == 0) fail(&j->f, ECANCELED, "async");
  /* A string result that could not be copied out of the worker is an allocation failure. */
  if (j->f.err == 0 && j->result == result_string && j->out_str == NULL) fail(&j->f, ENOMEM, "strdup");

  if (j->f.err != 0) {
    napi_reject_deferred(env, j->deferred, job_error(env, &j->f));
  } else {
    napi_value v = NULL;
    if (j->result != NULL) v = j->result(env, j);
    if (v == NULL) napi_get_undefined(env, &v);
    napi_resolve_deferred(env, j->deferred, v);
  }
  job_free(env, j);
}

job_t *new_job_or_throw(napi_env env, run_fn run, result_fn result) {
  job_t *j = calloc(1, sizeof *j);
  if (j == NULL) {
    napi_throw_error(env, "ERR_JAIL_NOMEM", "out of memory");
    return NULL;
  }
  j->run = run;
  j->result = result;
  j->root_fd = j->fd = j->fd2 = j->out_fd = -1;
  return j;
}

/* Frees a job that holds only its inputs (never queued, or its work already deleted). */
napi_value abandon(napi_env env, job_t *j) {
  free(j->path);
  free(j->path2);
  if (j->dir_ref != NULL) napi_delete_reference(env, j->dir_ref);
  free(j);
  return NULL;
}

/* Queue the job and return its promise. On failure, frees the job and leaves an exception. */
napi_value job_queue(napi_env env, job_t *j, const char *name) {
  napi_value promise, resource;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok) goto fail;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  if (napi_create_async_work(env, NULL, resource, job_execute, job_complete, j, &j->work) != napi_ok)
    goto fail;
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    napi_delete_async_work(env, j->work);
    goto fail;
  }
  return promise;
fail:
  abandon(env, j);
  napi_throw_error(env, "ERR_JAIL_QUEUE", "could not queue native work");
  return NULL;
}
