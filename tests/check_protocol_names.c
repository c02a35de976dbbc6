/* SPDX-License-Identifier: MIT */
/* Unit tests for protocol/names: the naming rules of PROTOCOL.md section 5. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/names.h"
#include "tests/check-run.h"

static char *repeat(char c, size_t n)
{
        char *s = malloc(n + 1);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

START_TEST(test_unique)
{
        ck_assert(names_is_unique(":1.42"));
        ck_assert(names_is_unique(":1.0"));
        ck_assert(names_is_unique(":a-b.c_d"));
        ck_assert(!names_is_unique(":1"));
        ck_assert(!names_is_unique(":1."));
        ck_assert(!names_is_unique(":.1"));
        ck_assert(!names_is_unique("1.42"));
        ck_assert(!names_is_unique(":1..2"));
        ck_assert(!names_is_unique(":1.4$"));
        ck_assert(!names_is_unique(""));
        ck_assert(!names_is_unique(NULL));
}
END_TEST

START_TEST(test_well_known)
{
        ck_assert(names_is_well_known("org.example.Notes"));
        ck_assert(names_is_well_known("a.b"));
        ck_assert(names_is_well_known("org.ex-ample._x9"));
        ck_assert(!names_is_well_known("org"));
        ck_assert(!names_is_well_known("org..x"));
        ck_assert(!names_is_well_known("org.9x"));
        ck_assert(!names_is_well_known(".org.x"));
        ck_assert(!names_is_well_known("org.x."));
        ck_assert(!names_is_well_known(":1.2"));
        ck_assert(!names_is_well_known("org.ex ample"));
        ck_assert(!names_is_well_known("org.exämple"));
        ck_assert(names_is_bus_name(":1.2"));
        ck_assert(names_is_bus_name("a.b"));
        ck_assert(!names_is_bus_name("ab"));
}
END_TEST

START_TEST(test_name_length)
{
        char *s = repeat('a', 255);
        s[1] = '.';
        ck_assert(names_is_well_known(s));
        ck_assert(names_is_interface(s));
        free(s);
        s = repeat('a', 256);
        s[1] = '.';
        ck_assert(!names_is_well_known(s));
        ck_assert(!names_is_interface(s));
        free(s);
        s = repeat('m', 256);
        ck_assert(!names_is_member(s));
        s[255] = '\0';
        ck_assert(names_is_member(s));
        free(s);
}
END_TEST

START_TEST(test_interface_member_error)
{
        ck_assert(names_is_interface("org.example.Notes1"));
        ck_assert(!names_is_interface("org.ex-ample.Notes"));
        ck_assert(!names_is_interface("Notes"));
        ck_assert(!names_is_interface("org.1x"));
        ck_assert(names_is_error_name("org.ipcbus.Error.Failed"));
        ck_assert(!names_is_error_name("Failed"));
        ck_assert(names_is_member("GetNote"));
        ck_assert(names_is_member("_x9"));
        ck_assert(!names_is_member("9x"));
        ck_assert(!names_is_member("a.b"));
        ck_assert(!names_is_member(""));
        ck_assert(!names_is_member("a-b"));
}
END_TEST

START_TEST(test_path)
{
        char *s;

        ck_assert(names_is_path("/"));
        ck_assert(names_is_path("/org/example/Notes"));
        ck_assert(names_is_path("/a_1/B"));
        ck_assert(!names_is_path(""));
        ck_assert(!names_is_path("org"));
        ck_assert(!names_is_path("/org/"));
        ck_assert(!names_is_path("//org"));
        ck_assert(!names_is_path("/org//x"));
        ck_assert(!names_is_path("/org/x-y"));
        ck_assert(!names_is_path("/org.x"));
        s = repeat('a', 1024);
        s[0] = '/';
        ck_assert(names_is_path(s));
        free(s);
        s = repeat('a', 1025);
        s[0] = '/';
        ck_assert(!names_is_path(s));
        free(s);
}
END_TEST

START_TEST(test_path_namespace)
{
        ck_assert(names_path_in_namespace("/a/b", "/a"));
        ck_assert(names_path_in_namespace("/a", "/a"));
        ck_assert(names_path_in_namespace("/anything", "/"));
        ck_assert(names_path_in_namespace("/", "/"));
        ck_assert(!names_path_in_namespace("/ab", "/a"));
        ck_assert(!names_path_in_namespace("/a", "/a/b"));
}
END_TEST

static Suite *names_suite(void)
{
        Suite *s = suite_create("protocol_names");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_unique);
        tcase_add_test(tc, test_well_known);
        tcase_add_test(tc, test_name_length);
        tcase_add_test(tc, test_interface_member_error);
        tcase_add_test(tc, test_path);
        tcase_add_test(tc, test_path_namespace);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(names_suite());
}
