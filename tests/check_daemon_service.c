/* SPDX-License-Identifier: MIT */
/* Unit tests for daemon/launch/service: service files, the registry, the service directories (CONFIG.md). */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/launch/config.h"
#include "daemon/launch/service.h"
#include "tests/check-run.h"

static struct service *parse_ok(const char *path, const char *json)
{
        struct service *s = NULL;
        char err[512] = "";
        int r = service_parse(json, strlen(json), path, &s, err, sizeof(err));

        ck_assert_msg(r == 0, "%s: %s", json, err);
        ck_assert_ptr_nonnull(s);
        return s;
}

START_TEST(test_parse)
{
        struct service *s;

        s = parse_ok("/d/org.example.Echo.service",
                     "{\"name\": \"org.example.Echo\", \"exec\": [\"/usr/bin/echo-service\", \"--flag\", \"\"]}\n");
        ck_assert_str_eq(s->name, "org.example.Echo");
        ck_assert_str_eq(s->argv[0], "/usr/bin/echo-service");
        ck_assert_str_eq(s->argv[1], "--flag");
        ck_assert_str_eq(s->argv[2], "");
        ck_assert_ptr_null(s->argv[3]);
        ck_assert_ptr_null(s->user);
        ck_assert_ptr_null(s->unit);
        ck_assert_str_eq(s->path, "/d/org.example.Echo.service");
        service_free(s);

        s = parse_ok("org.a.B.service", "{\"unit\": \"b.service\", \"name\": \"org.a.B\"}");
        ck_assert_ptr_null(s->argv);
        ck_assert_str_eq(s->unit, "b.service");
        service_free(s);

        s = parse_ok("/x/org.a.B.service", "{\"name\": \"org.a.B\", \"exec\": [\"/b\"], \"user\": \"nobody\", "
                                           "\"unit\": \"b.service\"}");
        ck_assert_str_eq(s->user, "nobody");
        ck_assert_str_eq(s->unit, "b.service");
        service_free(s);
}
END_TEST

static const struct {
        const char *path;
        const char *json;
        const char *error; /* the whole message after "PATH: " */
} bad[] = {
        {"/d/org.a.B.service", "", "not a JSON document: unexpected end of text"},
        {"/d/org.a.B.service", "{\"name\": \"org.a.B\",}", "not a JSON document"},
        {"/d/org.a.B.service", "{\"name\": \"org.a.B\", \"exec\": [\"/b\"]} x", "not a JSON document"},
        {"/d/org.a.B.service", "[]", "expected a JSON object"},
        {"/d/org.a.B.service", "{\"exec\": [\"/b\"]}", "name: missing"},
        {"/d/org.a.B.service", "{\"name\": \"org.a.B\"}", "needs \"exec\" or \"unit\""},
        {"/d/org.a.B.service", "{\"name\": \"org.a.B\", \"exec\": [\"/b\"], \"Exec\": 1}", "Exec: unknown key"},
        {"/d/org.a.B.service", "{\"name\": 5, \"exec\": [\"/b\"]}", "name: expected a non-empty string, got 5"},
        {"/d/:1.4.service", "{\"name\": \":1.4\", \"exec\": [\"/b\"]}", "name: not a well-known name one may own"},
        {"/d/org.service", "{\"name\": \"org\", \"exec\": [\"/b\"]}", "name: not a well-known name one may own"},
        {"/d/org.ipcbus.Bus.service", "{\"name\": \"org.ipcbus.Bus\", \"exec\": [\"/b\"]}",
         "name: not a well-known name one may own"},
        {"/d/org.a.C.service", "{\"name\": \"org.a.B\", \"exec\": [\"/b\"]}",
         "name: the file must be called org.a.B.service"},
        {"/d/org.a.B.json", "{\"name\": \"org.a.B\", \"exec\": [\"/b\"]}",
         "name: the file must be called org.a.B.service"},
        {"/d/org.a.B.service", "{\"name\": \"org.a.B\", \"exec\": []}",
         "exec: expected an array of at least one string"},
        {"/d/org.a.B.service", "{\"name\": \"org.a.B\", \"exec\": \"/b\"}", "exec: expected an array"},
        {"/d/org.a.B.service", "{\"name\": \"org.a.B\", \"exec\": [\"/b\", 1]}", "exec: element 1: expected a string"},
        {"/d/org.a.B.service", "{\"name\": \"org.a.B\", \"exec\": [\"b\"]}",
         "exec: the program must be an absolute path, got \"b\""},
        {"/d/org.a.B.service", "{\"name\": \"org.a.B\", \"unit\": \"\"}", "unit: expected a non-empty string"},
        {"/d/org.a.B.service", "{\"name\": \"org.a.B\", \"unit\": \"b.service\", \"user\": \"x\"}",
         "user: only applies to \"exec\""},
        {"/d/org.a.B.service", "{\"name\": \"org.a.B\", \"exec\": [\"/b\"], \"user\": 0}",
         "user: expected a non-empty string, got 0"},
};

START_TEST(test_bad)
{
        struct service *s = NULL;
        char err[512] = "", want[512];
        int r = service_parse(bad[_i].json, strlen(bad[_i].json), bad[_i].path, &s, err, sizeof(err));

        ck_assert_msg(r == SERVICE_E_INVALID, "%s: expected SERVICE_E_INVALID, got %d", bad[_i].json, r);
        ck_assert_ptr_null(s);
        snprintf(want, sizeof(want), "%s: %s", bad[_i].path, bad[_i].error);
        ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s: error '%s', expected it to start with '%s'",
                      bad[_i].json, err, want);
}
END_TEST

/* ---- the registry over directories ---------------------------------------------- */

static char tmp[64];

static void setup_dirs(void)
{
        snprintf(tmp, sizeof(tmp), "/tmp/check_service.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void teardown_dirs(void)
{
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *dir, const char *name, const char *text)
{
        char path[PATH_MAX];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", tmp, dir);
        mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/%s/%s", tmp, dir, name);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        ck_assert_int_eq(fclose(f), 0);
}

static void load(struct service_registry *reg, const struct service_registry *previous)
{
        char a[PATH_MAX], b[PATH_MAX], missing[PATH_MAX];
        char *dirs[] = {a, missing, b};

        snprintf(a, sizeof(a), "%s/a", tmp);
        snprintf(b, sizeof(b), "%s/b", tmp);
        snprintf(missing, sizeof(missing), "%s/missing", tmp);
        service_registry_init(reg);
        ck_assert_int_eq(service_registry_load(reg, dirs, 3, previous), 0);
}

START_TEST(test_registry)
{
        struct service_registry reg, reg2;
        const char **names;
        const struct service *s;

        write_file("a", "org.x.One.service", "{\"name\": \"org.x.One\", \"exec\": [\"/a/one\"]}");
        write_file("a", "org.x.Bad.service", "{\"name\": \"org.x.Bad\", \"exec\": [\"relative\"]}");
        write_file("a", "notes.txt", "not a service file");
        write_file("a", ".org.x.Hidden.service", "{\"name\": \"org.x.Hidden\", \"exec\": [\"/h\"]}");
        write_file("b", "org.x.One.service", "{\"name\": \"org.x.One\", \"exec\": [\"/b/one\"]}");
        write_file("b", "org.x.Two.service", "{\"name\": \"org.x.Two\", \"unit\": \"two.service\"}");

        load(&reg, NULL);
        ck_assert_uint_eq(service_registry_size(&reg), 2);
        s = service_registry_find(&reg, "org.x.One");
        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(s->argv[0], "/a/one"); /* the first directory wins */
        ck_assert_ptr_nonnull(service_registry_find(&reg, "org.x.Two"));
        ck_assert_ptr_null(service_registry_find(&reg, "org.x.Bad"));
        ck_assert_ptr_null(service_registry_find(&reg, "org.x.Hidden"));
        names = service_registry_names(&reg);
        ck_assert_str_eq(names[0], "org.x.One");
        ck_assert_str_eq(names[1], "org.x.Two");
        ck_assert_ptr_null(names[2]);
        free(names);

        /* A reload: One breaks (its previous declaration stays), Two goes, Three comes. */
        write_file("a", "org.x.One.service", "{\"name\": \"org.x.One\", \"exec\": [\"/a/one\"], \"bad\": 1}");
        write_file("a", "org.x.Three.service", "{\"name\": \"org.x.Three\", \"exec\": [\"/three\"]}");
        {
                char path[PATH_MAX];

                snprintf(path, sizeof(path), "%s/b/org.x.Two.service", tmp);
                ck_assert_int_eq(unlink(path), 0);
        }
        load(&reg2, &reg);
        ck_assert_uint_eq(service_registry_size(&reg2), 2);
        s = service_registry_find(&reg2, "org.x.One");
        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(s->argv[0], "/a/one");
        ck_assert_ptr_null(service_registry_find(&reg2, "org.x.Two"));
        ck_assert_ptr_nonnull(service_registry_find(&reg2, "org.x.Three"));
        service_registry_deinit(&reg);

        /* Without a previous registry, the broken file is just skipped (b's One is next in line). */
        load(&reg, NULL);
        s = service_registry_find(&reg, "org.x.One");
        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(s->argv[0], "/b/one");
        service_registry_deinit(&reg);
        service_registry_deinit(&reg2);
}
END_TEST

/* ---- directories ------------------------------------------------------------------ */

static char **resolve(const char *json, size_t *n)
{
        struct bus_config c;
        char err[256], **dirs = NULL;

        ck_assert_msg(bus_config_parse(&c, json, strlen(json), "x.json", err, sizeof(err)) == 0, "%s", err);
        ck_assert_int_eq(service_dirs_resolve(&c, "/opt/ipcbus/share", &dirs, n), 0);
        bus_config_deinit(&c);
        return dirs;
}

START_TEST(test_dirs_session)
{
        size_t n;
        char **d;

        setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
        setenv("XDG_DATA_HOME", "/home/u/data", 1);
        setenv("XDG_DATA_DIRS", "/usr/share:relative:/opt/x/share:", 1);
        d = resolve("{\"service_dirs\": [\"/etc/svc\", \"/usr/share/ipcbus/services\"]}", &n);
        ck_assert_uint_eq(n, 6);
        ck_assert_str_eq(d[0], "/etc/svc");
        ck_assert_str_eq(d[1], "/usr/share/ipcbus/services");
        ck_assert_str_eq(d[2], "/run/user/7/ipcbus/services");
        ck_assert_str_eq(d[3], "/home/u/data/ipcbus/services");
        ck_assert_str_eq(d[4], "/opt/x/share/ipcbus/services"); /* /usr/share's was listed already */
        ck_assert_str_eq(d[5], "/opt/ipcbus/share/ipcbus/services");
        ck_assert_ptr_null(d[6]);
        service_dirs_free(d);

        /* The XDG defaults */
        unsetenv("XDG_RUNTIME_DIR");
        unsetenv("XDG_DATA_HOME");
        unsetenv("XDG_DATA_DIRS");
        setenv("HOME", "/home/u", 1);
        d = resolve("{}", &n);
        ck_assert_uint_eq(n, 4);
        ck_assert_str_eq(d[0], "/home/u/.local/share/ipcbus/services");
        ck_assert_str_eq(d[1], "/usr/local/share/ipcbus/services");
        ck_assert_str_eq(d[2], "/usr/share/ipcbus/services");
        ck_assert_str_eq(d[3], "/opt/ipcbus/share/ipcbus/services");
        service_dirs_free(d);

        d = resolve("{\"standard_service_dirs\": false}", &n);
        ck_assert_uint_eq(n, 0);
        ck_assert_ptr_null(d[0]);
        service_dirs_free(d);
}
END_TEST

START_TEST(test_dirs_system)
{
        size_t n;
        char **d;

        setenv("XDG_RUNTIME_DIR", "/run/user/7", 1); /* not for the system bus */
        d = resolve("{\"type\": \"system\", \"service_dirs\": [\"/etc/ipcbus/system-services\"]}", &n);
        ck_assert_uint_eq(n, 4);
        ck_assert_str_eq(d[0], "/etc/ipcbus/system-services");
        ck_assert_str_eq(d[1], "/opt/ipcbus/share/ipcbus/system-services");
        ck_assert_str_eq(d[2], "/usr/local/share/ipcbus/system-services");
        ck_assert_str_eq(d[3], "/usr/share/ipcbus/system-services");
        service_dirs_free(d);
}
END_TEST

static Suite *service_suite(void)
{
        Suite *s = suite_create("daemon_service");
        TCase *tc = tcase_create("files");
        TCase *tc_dirs = tcase_create("directories");

        tcase_add_test(tc, test_parse);
        tcase_add_loop_test(tc, test_bad, 0, sizeof(bad) / sizeof(bad[0]));
        suite_add_tcase(s, tc);

        tcase_add_checked_fixture(tc_dirs, setup_dirs, teardown_dirs);
        tcase_add_test(tc_dirs, test_registry);
        tcase_add_test(tc_dirs, test_dirs_session);
        tcase_add_test(tc_dirs, test_dirs_system);
        suite_add_tcase(s, tc_dirs);
        return s;
}

int main(void)
{
        return check_run(service_suite());
}
