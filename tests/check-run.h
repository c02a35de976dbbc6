/* SPDX-License-Identifier: MIT */
/* The one main() body of every Check suite: run, print Check's summary, exit status. */
#pragma once

#include <check.h>
#include <stdlib.h>

static inline int check_run(Suite *s)
{
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
