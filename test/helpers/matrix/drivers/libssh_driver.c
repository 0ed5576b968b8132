/*
 * libssh (0.10, the system's libssh-dev) as a matrix driver. Contract: test/helpers/matrix/driver.ts.
 * Built at test time: cc -o libssh_driver libssh_driver.c $(pkg-config --cflags --libs libssh)
 *
 * RSA signature algorithms are forced with SSH_OPTIONS_PUBLICKEY_ACCEPTED_TYPES; paths are bytes, so
 * names that are not UTF-8 go out as they are. Reads and writes are synchronous, 32 KiB each.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>

#define CHUNK 32768

struct args {
    const char *host, *user, *password, *known_hosts, *auth, *key, *ops, *local;
    int port;
};

static ssh_session session;
static sftp_session sftp;

/* ---- output: one JSON line per step ---- */

static void json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

/* A name as bytes, printed: printable ASCII as is, any other byte (and backslash) as \xNN. */
static void escaped_name(char *out, const char *name) {
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p >= 0x20 && *p < 0x7f && *p != '\\') *out++ = (char)*p;
        else out += sprintf(out, "\\x%02x", *p);
    }
    *out = 0;
}

/* Writes a name as a JSON string (escaped as above) into out; returns its length. */
static size_t quoted_name(char *out, size_t size, const char *name) {
    char escaped[4096];
    size_t at = 0;
    escaped_name(escaped, name);
    out[at++] = '"';
    for (const char *p = escaped; *p && at + 3 < size; p++) {
        if (*p == '\\' || *p == '"') out[at++] = '\\';
        out[at++] = *p;
    }
    out[at++] = '"';
    out[at] = 0;
    return at;
}

/* value_json is already JSON (or NULL for null). */
static void emit(const char *cell, int ok, const char *value_json, const char *error) {
    printf("{\"cell\": ");
    json_string(cell);
    printf(", \"ok\": %s, \"value\": %s", ok ? "true" : "false", value_json ? value_json : "null");
    if (error) {
        printf(", \"error\": ");
        json_string(error);
    }
    printf("}\n");
    fflush(stdout);
}

static char error_text[1024];

static const char *sftp_failure(const char *what) {
    snprintf(error_text, sizeof error_text, "%s: sftp error %d: %s", what, sftp_get_error(sftp), ssh_get_error(session));
    return error_text;
}

/* ---- login ---- */

static const char *login(const struct args *a, char *value, size_t size) {
    ssh_key key = NULL;
    int rc;
    if (a->key && ssh_pki_import_privkey_file(a->key, NULL, NULL, NULL, &key) != SSH_OK) return "cannot read the key";
    if (!strcmp(a->auth, "password")) {
        rc = ssh_userauth_password(session, NULL, a->password);
        snprintf(value, size, "{\"method\": \"password\"");
    } else if (!strcmp(a->auth, "keyboard-interactive")) {
        char prompt[256] = "";
        rc = ssh_userauth_kbdint(session, NULL, NULL);
        while (rc == SSH_AUTH_INFO) {
            int n = ssh_userauth_kbdint_getnprompts(session);
            for (int i = 0; i < n; i++) {
                char echo;
                if (!*prompt) snprintf(prompt, sizeof prompt, "%s", ssh_userauth_kbdint_getprompt(session, i, &echo));
                ssh_userauth_kbdint_setanswer(session, i, a->password);
            }
            rc = ssh_userauth_kbdint(session, NULL, NULL);
        }
        snprintf(value, size, "{\"method\": \"keyboard-interactive\"");
    } else if (!strcmp(a->auth, "wrongkey-then-password")) {
        int first = ssh_userauth_publickey(session, NULL, key);
        if (first == SSH_AUTH_SUCCESS) return "the unknown key was accepted";
        if (first == SSH_AUTH_ERROR) return ssh_get_error(session);
        rc = ssh_userauth_password(session, NULL, a->password);
        snprintf(value, size, "{\"method\": \"password\", \"keyRejected\": true");
    } else {
        rc = ssh_userauth_publickey(session, NULL, key);
        snprintf(value, size, "{\"method\": \"publickey\"");
    }
    ssh_key_free(key);
    if (rc != SSH_AUTH_SUCCESS) {
        snprintf(error_text, sizeof error_text, "authentication failed (%d): %s", rc, ssh_get_error(session));
        return error_text;
    }
    return NULL;
}

static const char *connect_and_login(const struct args *a, char *value, size_t size) {
    session = ssh_new();
    long timeout = 10;
    int no = 0;
    ssh_options_set(session, SSH_OPTIONS_HOST, a->host);
    ssh_options_set(session, SSH_OPTIONS_PORT, &a->port);
    ssh_options_set(session, SSH_OPTIONS_USER, a->user);
    ssh_options_set(session, SSH_OPTIONS_KNOWNHOSTS, a->known_hosts);
    ssh_options_set(session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
    ssh_options_set(session, SSH_OPTIONS_TIMEOUT, &timeout);
    ssh_options_set(session, SSH_OPTIONS_PROCESS_CONFIG, &no);
    if (!strncmp(a->auth, "rsa-sha2-", 9)) ssh_options_set(session, SSH_OPTIONS_PUBLICKEY_ACCEPTED_TYPES, a->auth);
    if (ssh_connect(session) != SSH_OK) return ssh_get_error(session);
    if (ssh_session_is_known_server(session) != SSH_KNOWN_HOSTS_OK) return "host key not in known_hosts";
    return login(a, value, size);
}

/* ---- files ---- */

static const char *upload(const char *local, const char *remote) {
    FILE *in = fopen(local, "rb");
    if (!in) return "cannot open the local file";
    sftp_file f = sftp_open(sftp, remote, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!f) {
        fclose(in);
        return sftp_failure("open");
    }
    char buf[CHUNK];
    size_t n;
    const char *err = NULL;
    while (!err && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (sftp_write(f, buf, n) != (ssize_t)n) err = sftp_failure("write");
    fclose(in);
    if (sftp_close(f) != SSH_OK && !err) err = sftp_failure("close");
    return err;
}

static const char *download(const char *remote, const char *local, long *size) {
    sftp_file f = sftp_open(sftp, remote, O_RDONLY, 0);
    if (!f) return sftp_failure("open");
    FILE *out = fopen(local, "wb");
    char buf[CHUNK];
    ssize_t n;
    *size = 0;
    while ((n = sftp_read(f, buf, sizeof buf)) > 0) {
        fwrite(buf, 1, (size_t)n, out);
        *size += n;
    }
    fclose(out);
    const char *err = n < 0 ? sftp_failure("read") : NULL;
    sftp_close(f);
    return err;
}

/* JSON array of the names in dir (escaped), without . and .. */
static const char *list(const char *dir, char *value, size_t size) {
    sftp_dir d = sftp_opendir(sftp, dir);
    if (!d) return sftp_failure("opendir");
    size_t at = (size_t)snprintf(value, size, "[");
    sftp_attributes e;
    int first = 1;
    while ((e = sftp_readdir(sftp, d)) != NULL) {
        if (strcmp(e->name, ".") && strcmp(e->name, "..")) {
            if (!first) at += (size_t)snprintf(value + at, size - at, ", ");
            at += quoted_name(value + at, size - at, e->name);
            first = 0;
        }
        sftp_attributes_free(e);
    }
    int eof = sftp_dir_eof(d);
    sftp_closedir(d);
    snprintf(value + at, size - at, "]");
    return eof ? NULL : sftp_failure("readdir");
}

static const char *local_path(const struct args *a, const char *name) {
    static char paths[4][4096];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", a->local, name);
    return p;
}

#define NON_UTF8_1 "/w/up-\xbf.txt"
#define NON_UTF8_2 "/w/up-\xfe.txt"

/* Performs one op; fills value (JSON) and returns NULL, or returns an error. */
static const char *op(const struct args *a, const char *name, char *value, size_t size) {
    const char *err = NULL;
    long got = 0;
    if (!strcmp(name, "realpath-dotdot")) {
        char *r1 = sftp_canonicalize_path(sftp, "/..");
        char *r2 = r1 ? sftp_canonicalize_path(sftp, "..") : NULL;
        if (!r2) err = sftp_failure("realpath");
        else {
            size_t at = (size_t)snprintf(value, size, "[");
            at += quoted_name(value + at, size - at, r1);
            at += (size_t)snprintf(value + at, size - at, ", ");
            at += quoted_name(value + at, size - at, r2);
            snprintf(value + at, size - at, "]");
        }
        ssh_string_free_char(r1);
        ssh_string_free_char(r2);
    } else if (!strcmp(name, "list")) {
        err = list("/w", value, size);
    } else if (!strcmp(name, "mkdir")) {
        if (sftp_mkdir(sftp, "/w/m", 0755)) err = sftp_failure("mkdir");
    } else if (!strcmp(name, "upload-5m")) {
        err = upload(local_path(a, "up5m.bin"), "/w/m/up5m.bin");
    } else if (!strcmp(name, "download-5m") || !strcmp(name, "download-20m")) {
        const char *which = name[9] == '5' ? "dl5m.bin" : "dl20m.bin";
        char remote[64];
        snprintf(remote, sizeof remote, "/w/%s", which);
        err = download(remote, local_path(a, which), &got);
        snprintf(value, size, "%ld", got);
    } else if (!strcmp(name, "rename")) {
        if (sftp_rename(sftp, "/w/m/up5m.bin", "/w/m/renamed.bin")) err = sftp_failure("rename");
    } else if (!strcmp(name, "stat")) {
        sftp_attributes st = sftp_stat(sftp, "/w/m/renamed.bin");
        if (!st) err = sftp_failure("stat");
        else snprintf(value, size, "%llu", (unsigned long long)st->size);
        sftp_attributes_free(st);
    } else if (!strcmp(name, "chmod")) {
        if (sftp_chmod(sftp, "/w/m/renamed.bin", 0640)) err = sftp_failure("chmod");
    } else if (!strcmp(name, "symlink-readlink")) {
        if (sftp_symlink(sftp, "renamed.bin", "/w/m/link")) return sftp_failure("symlink");
        char *target = sftp_readlink(sftp, "/w/m/link");
        if (!target) return sftp_failure("readlink");
        quoted_name(value, size, target);
        ssh_string_free_char(target);
    } else if (!strcmp(name, "remove")) {
        if (sftp_unlink(sftp, "/w/m/link") || sftp_unlink(sftp, "/w/m/renamed.bin")) err = sftp_failure("remove");
    } else if (!strcmp(name, "rmdir")) {
        if (sftp_rmdir(sftp, "/w/m")) err = sftp_failure("rmdir");
    } else if (!strcmp(name, "non-utf8-put")) {
        err = upload(local_path(a, "nonutf8-1.bin"), NON_UTF8_1);
        if (!err) err = upload(local_path(a, "nonutf8-2.bin"), NON_UTF8_2);
        if (!err) err = list("/w", value, size);
    } else if (!strcmp(name, "non-utf8-get")) {
        err = download(NON_UTF8_1, local_path(a, "nonutf8-back.bin"), &got);
        if (!err && (sftp_unlink(sftp, NON_UTF8_1) || sftp_unlink(sftp, NON_UTF8_2))) err = sftp_failure("remove");
        snprintf(value, size, "%ld", got);
    } else {
        err = "unknown op";
    }
    return err;
}

static void parse(int argc, char **argv, struct args *a) {
    memset(a, 0, sizeof *a);
    a->ops = "";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--host")) a->host = v;
        else if (!strcmp(k, "--port")) a->port = atoi(v);
        else if (!strcmp(k, "--user")) a->user = v;
        else if (!strcmp(k, "--password")) a->password = v;
        else if (!strcmp(k, "--known-hosts")) a->known_hosts = v;
        else if (!strcmp(k, "--auth")) a->auth = v;
        else if (!strcmp(k, "--key")) a->key = v;
        else if (!strcmp(k, "--ops")) a->ops = v;
        else if (!strcmp(k, "--local")) a->local = v;
    }
}

int main(int argc, char **argv) {
    struct args a;
    static char value[65536], names[16384];
    parse(argc, argv, &a);
    const char *err = connect_and_login(&a, value, sizeof value - 64);
    if (!err) {
        sftp = sftp_new(session);
        if (!sftp || sftp_init(sftp) != SSH_OK) err = "sftp subsystem failed";
    }
    if (!err) err = list("/", names, sizeof names);
    if (err) {
        emit(a.auth, 0, NULL, err);
        return 1;
    }
    size_t len = strlen(value);
    snprintf(value + len, sizeof value - len, ", \"root\": %s}", names);
    emit(a.auth, 1, value, NULL);

    char *ops = strdup(a.ops), *save = NULL, line[64];
    for (char *name = strtok_r(ops, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (!fgets(line, sizeof line, stdin)) break;
        value[0] = 0;
        err = op(&a, name, value, sizeof value);
        emit(name, !err, err || !value[0] ? NULL : value, err);
    }
    free(ops);
    sftp_free(sftp);
    ssh_disconnect(session);
    ssh_free(session);
    return 0;
}
