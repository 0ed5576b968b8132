/*
 * results.c: a finished job's outputs as JS values (main thread, in the completion callback).
 * Numbers are doubles: sizes and inode numbers above 2^53 lose precision, as in Node's fs.
 */
#include "jail.h"

#include <string.h>

static void set_number(napi_env env, napi_value obj, const char *key, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, obj, key, n);
}

static napi_value stat_to_js(napi_env env, const struct stat *st) {
  napi_value o;
  napi_create_object(env, &o);
  set_number(env, o, "mode", st->st_mode);
  set_number(env, o, "uid", st->st_uid);
  set_number(env, o, "gid", st->st_gid);
  set_number(env, o, "size", (double)st->st_size);
  set_number(env, o, "atime", (double)st->st_atim.tv_sec);
  set_number(env, o, "mtime", (double)st->st_mtim.tv_sec);
  set_number(env, o, "nlink", (double)st->st_nlink);
  set_number(env, o, "ino", (double)st->st_ino);
  set_number(env, o, "dev", (double)st->st_dev);
  set_number(env, o, "blocks", (double)st->st_blocks);
  return o;
}

napi_value result_open(napi_env env, job_t *j) {
  napi_value o, fd;
  napi_create_object(env, &o);
  napi_create_int32(env, j->out_fd, &fd);
  napi_set_named_property(env, o, "fd", fd);
  napi_set_named_property(env, o, "stat", stat_to_js(env, &j->st));
  if (j->head != NULL) {
    napi_value head;
    if (napi_create_buffer_copy(env, (size_t)j->head_len, j->head, NULL, &head) == napi_ok)
      napi_set_named_property(env, o, "head", head);
  }
  j->out_fd = -1; /* ownership moved to JS */
  return o;
}

napi_value result_stat(napi_env env, job_t *j) { return stat_to_js(env, &j->st); }

napi_value result_string(napi_env env, job_t *j) {
  napi_value s;
  create_name(env, j->out_str, strlen(j->out_str), &s);
  return s;
}

napi_value result_statvfs(napi_env env, job_t *j) {
  const struct statvfs *v = &j->vfs;
  napi_value o;
  napi_create_object(env, &o);
  set_number(env, o, "bsize", (double)v->f_bsize);
  set_number(env, o, "frsize", (double)v->f_frsize);
  set_number(env, o, "blocks", (double)v->f_blocks);
  set_number(env, o, "bfree", (double)v->f_bfree);
  set_number(env, o, "bavail", (double)v->f_bavail);
  set_number(env, o, "files", (double)v->f_files);
  set_number(env, o, "ffree", (double)v->f_ffree);
  set_number(env, o, "favail", (double)v->f_favail);
  set_number(env, o, "fsid", (double)v->f_fsid);
  set_number(env, o, "flag", (double)v->f_flag);
  set_number(env, o, "namemax", (double)v->f_namemax);
  return o;
}

napi_value result_entries(napi_env env, job_t *j) {
  napi_value arr;
  napi_create_array_with_length(env, j->n_entries, &arr);
  for (uint32_t i = 0; i < j->n_entries; i++) {
    const dir_entry_t *e = &j->entries[i];
    napi_value o, name, st;
    napi_create_object(env, &o);
    create_name(env, e->name, strlen(e->name), &name);
    if (e->has_stat)
      st = stat_to_js(env, &e->st);
    else
      napi_get_null(env, &st);
    napi_set_named_property(env, o, "name", name);
    napi_set_named_property(env, o, "stat", st);
    napi_set_element(env, arr, i, o);
  }
  return arr;
}

napi_value result_copied(napi_env env, job_t *j) {
  napi_value n;
  napi_create_double(env, (double)j->copied, &n);
  return n;
}

/* Dir objects are externals with a type tag, so a stray external from elsewhere is refused. */
const napi_type_tag DIR_TAG = {0x6a61696c2d646972ULL, 0x9d3c1f0b52a7e481ULL};

/* JS forgot closedir(); no job can be running: each holds a reference. */
static void dir_finalize(napi_env env, void *data, void *hint) { free_dir(data); }

napi_value result_dir(napi_env env, job_t *j) {
  napi_value ext;
  if (napi_create_external(env, j->new_dir, dir_finalize, NULL, &ext) != napi_ok) return NULL;
  j->new_dir = NULL; /* owned by the external now */
  napi_type_tag_object(env, ext, &DIR_TAG);
  return ext;
}
