/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for protocol/address (PROTOCOL.md 1): parsing unix:path=
 * addresses, and where the session and system buses are found from the
 * environment. Each test starts from an environment without the variables
 * involved.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "protocol/address.h"
#include "tests/check-run.h"

#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *) 0)->sun_path)

static void setup(void)
{
        unsetenv("IPCBUS_ADDRESS");
        unsetenv("IPCBUS_SYSTEM_ADDRESS");
        unsetenv("XDG_RUNTIME_DIR");
}

static void expect_path(const char *address, const char *path)
{
        char *p = NULL;
        int r = address_parse(address, &p);

        ck_assert_msg(r == 0, "address_parse(%s): %s", address, strerror(-r));
        ck_assert_str_eq(p, path);
        free(p);
}

static void expect_invalid(const char *address)
{
        char *sentinel = (char *) "untouched";
        char *p = sentinel;
        int r = address_parse(address, &p);

        ck_assert_msg(r == -EINVAL, "address_parse(%s) gave %d, expected -EINVAL", address ? address : "NULL", r);
        ck_assert_ptr_eq(p, sentinel);
}

static char *session(void)
{
        char *a = NULL;

        ck_assert_int_eq(address_session(&a), 0);
        ck_assert_ptr_nonnull(a);
        return a;
}

static char *system_address(void)
{
        char *a = NULL;

        ck_assert_int_eq(address_system(&a), 0);
        ck_assert_ptr_nonnull(a);
        return a;
}

/* ---- address_parse ---------------------------------------------------------- */

START_TEST(test_parse_valid)
{
        expect_path("unix:path=/run/ipcbus/system_bus_socket", "/run/ipcbus/system_bus_socket");
        expect_path("unix:path=/tmp/x", "/tmp/x");
        expect_path("unix:path=/", "/");
        expect_path("unix:path=/dir with space/bus", "/dir with space/bus");
}
END_TEST

START_TEST(test_parse_relative)
{
        expect_invalid("unix:path=relative/bus");
        expect_invalid("unix:path=./bus");
        expect_invalid("unix:path=bus");
        expect_invalid("unix:path=");
        expect_invalid("unix:path=~/bus");
}
END_TEST

START_TEST(test_parse_wrong_scheme)
{
        expect_invalid(NULL);
        expect_invalid("");
        expect_invalid("/run/ipcbus/bus");
        expect_invalid("unix:");
        expect_invalid("unix:abstract=/bus");
        expect_invalid("unix:tmpdir=/tmp");
        expect_invalid("tcp:host=localhost,port=1234");
        expect_invalid("UNIX:path=/bus");
        expect_invalid("unix:PATH=/bus");
        expect_invalid("unix path=/bus");
        expect_invalid(" unix:path=/bus");
}
END_TEST

/* The path must fit sun_path with its NUL. */
START_TEST(test_parse_length)
{
        char path[SUN_PATH_SIZE + 2];
        char address[SUN_PATH_SIZE + 32];

        /* the longest that fits */
        memset(path, 'a', sizeof(path));
        path[0] = '/';
        path[SUN_PATH_SIZE - 1] = '\0';
        snprintf(address, sizeof(address), "unix:path=%s", path);
        expect_path(address, path);

        /* one more byte does not */
        memset(path, 'a', sizeof(path));
        path[0] = '/';
        path[SUN_PATH_SIZE] = '\0';
        snprintf(address, sizeof(address), "unix:path=%s", path);
        expect_invalid(address);

        /* nor does anything much longer */
        {
                char *huge = malloc(10000);

                ck_assert_ptr_nonnull(huge);
                strcpy(huge, "unix:path=/");
                memset(huge + strlen(huge), 'x', 9000);
                huge[9011] = '\0';
                expect_invalid(huge);
                free(huge);
        }
}
END_TEST

/* ---- the session bus ----------------------------------------------------------- */

START_TEST(test_session_from_env)
{
        char *a;

        setenv("IPCBUS_ADDRESS", "unix:path=/tmp/some/bus", 1);
        setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
        a = session();
        ck_assert_str_eq(a, "unix:path=/tmp/some/bus");
        free(a);
}
END_TEST

/* $IPCBUS_ADDRESS is handed on as it is: whoever connects judges it. */
START_TEST(test_session_from_env_verbatim)
{
        char *a;

        setenv("IPCBUS_ADDRESS", "tcp:host=example.org", 1);
        a = session();
        ck_assert_str_eq(a, "tcp:host=example.org");
        free(a);
}
END_TEST

START_TEST(test_session_from_runtime_dir)
{
        char *a, *path = NULL;

        setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
        a = session();
        ck_assert_str_eq(a, "unix:path=/run/user/4242/ipcbus/bus");
        /* and it is an address address_parse accepts */
        ck_assert_int_eq(address_parse(a, &path), 0);
        ck_assert_str_eq(path, "/run/user/4242/ipcbus/bus");
        free(path);
        free(a);
}
END_TEST

/* An empty $IPCBUS_ADDRESS counts as unset. */
START_TEST(test_session_empty_env)
{
        char *a;

        setenv("IPCBUS_ADDRESS", "", 1);
        setenv("XDG_RUNTIME_DIR", "/tmp/rt", 1);
        a = session();
        ck_assert_str_eq(a, "unix:path=/tmp/rt/ipcbus/bus");
        free(a);
}
END_TEST

START_TEST(test_session_fallback)
{
        char expected[128];
        char *a;

        snprintf(expected, sizeof(expected), "unix:path=/run/user/%u/ipcbus/bus", (unsigned) getuid());
        a = session();
        ck_assert_str_eq(a, expected);
        free(a);

        /* a runtime dir that is not an absolute path is no runtime dir */
        setenv("XDG_RUNTIME_DIR", "", 1);
        a = session();
        ck_assert_str_eq(a, expected);
        free(a);
        setenv("XDG_RUNTIME_DIR", "relative/dir", 1);
        a = session();
        ck_assert_str_eq(a, expected);
        free(a);
}
END_TEST

/* ---- the system bus ------------------------------------------------------------ */

START_TEST(test_system_default)
{
        char *a;

        /* the session variables do not matter */
        setenv("IPCBUS_ADDRESS", "unix:path=/tmp/session", 1);
        setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
        a = system_address();
        ck_assert_str_eq(a, "unix:path=/run/ipcbus/system_bus_socket");
        free(a);

        setenv("IPCBUS_SYSTEM_ADDRESS", "", 1);
        a = system_address();
        ck_assert_str_eq(a, "unix:path=/run/ipcbus/system_bus_socket");
        free(a);
}
END_TEST

START_TEST(test_system_from_env)
{
        char *a;

        setenv("IPCBUS_SYSTEM_ADDRESS", "unix:path=/var/run/other", 1);
        a = system_address();
        ck_assert_str_eq(a, "unix:path=/var/run/other");
        free(a);
}
END_TEST

static Suite *address_suite(void)
{
        Suite *s = suite_create("protocol_address");
        TCase *tc;

        tc = tcase_create("parse");
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_add_test(tc, test_parse_valid);
        tcase_add_test(tc, test_parse_relative);
        tcase_add_test(tc, test_parse_wrong_scheme);
        tcase_add_test(tc, test_parse_length);
        suite_add_tcase(s, tc);

        tc = tcase_create("session");
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_add_test(tc, test_session_from_env);
        tcase_add_test(tc, test_session_from_env_verbatim);
        tcase_add_test(tc, test_session_from_runtime_dir);
        tcase_add_test(tc, test_session_empty_env);
        tcase_add_test(tc, test_session_fallback);
        suite_add_tcase(s, tc);

        tc = tcase_create("system");
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_add_test(tc, test_system_default);
        tcase_add_test(tc, test_system_from_env);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(address_suite());
}
