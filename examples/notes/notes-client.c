/* SPDX-License-Identifier: MIT */
/*
 * notes-client: the command line of notes-service, on the session bus
 * ($IPCBUS_ADDRESS).
 *
 *   notes-client add TEXT   keep a note; prints its id
 *   notes-client list       prints every note as ID<tab>TEXT
 *   notes-client get ID     prints the text of note ID
 *   notes-client count      prints the Count property
 *   notes-client clear      forgets every note
 *   notes-client watch      prints "changed ID" for each Changed signal and
 *                           "count N" for each change of Count
 *
 * Exit status: 0; 1 on a failure (an error the service answered is printed
 * with its name); 2 for a usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ipcbus/ipcbus.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

#define NOTES_NAME "org.example.Notes"
#define NOTES_PATH "/org/example/Notes"
#define CHANGED_RULE "sender=" NOTES_NAME ",path=" NOTES_PATH ",interface=" NOTES_NAME ",member=Changed"
#define PROPERTIES_RULE                                                                                                \
        "sender=" NOTES_NAME ",path=" NOTES_PATH ",interface=" IPCBUS_PROPERTIES_INTERFACE ",member=PropertiesChanged"

static int cmd_add(ipcbus_bus *bus, char **args, ipcbus_error *error)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *reply = NULL;
        uint64_t id;
        int r;

        r = ipcbus_call_method(bus, NOTES_NAME, NOTES_PATH, NOTES_NAME, "Add", 0, &reply, error, "text:s", args[0]);
        if (r < 0)
                return r;
        r = ipcbus_message_read(reply, "id:t", &id);
        if (r < 0)
                return r;
        printf("%" PRIu64 "\n", id);
        return 0;
}

static int cmd_list(ipcbus_bus *bus, char **args, ipcbus_error *error)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *reply = NULL;
        const char *text;
        uint64_t id;
        int r;

        r = ipcbus_call_method(bus, NOTES_NAME, NOTES_PATH, NOTES_NAME, "List", 0, &reply, error, NULL);
        if (r < 0)
                return r;
        r = ipcbus_message_enter(reply, "notes");
        if (r < 0)
                return r;
        while ((r = ipcbus_message_read(reply, "{id:t text:s}", &id, &text)) > 0)
                printf("%" PRIu64 "\t%s\n", id, text);
        return r;
}

static int cmd_get(ipcbus_bus *bus, char **args, ipcbus_error *error)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *reply = NULL;
        const char *text;
        uint64_t id;
        char *end;
        int r;

        errno = 0;
        id = strtoull(args[0], &end, 10);
        if (errno != 0 || end == args[0] || *end != '\0' || args[0][0] == '-') {
                ipcbus_error_setf(error, IPCBUS_ERROR_INVALID_ARGS, "'%s' is not an id", args[0]);
                return -EINVAL;
        }

        r = ipcbus_call_method(bus, NOTES_NAME, NOTES_PATH, NOTES_NAME, "Get", 0, &reply, error, "id:t", id);
        if (r < 0)
                return r;
        r = ipcbus_message_read(reply, "text:s", &text);
        if (r < 0)
                return r;
        printf("%s\n", text);
        return 0;
}

static int cmd_count(ipcbus_bus *bus, char **args, ipcbus_error *error)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *reply = NULL;
        uint64_t count;
        int r;

        r = ipcbus_call_method(bus, NOTES_NAME, NOTES_PATH, IPCBUS_PROPERTIES_INTERFACE, "Get", 0, &reply, error,
                               "interface:s name:s", NOTES_NAME, "Count");
        if (r < 0)
                return r;
        r = ipcbus_message_read(reply, "value:t", &count);
        if (r < 0)
                return r;
        printf("%" PRIu64 "\n", count);
        return 0;
}

static int cmd_clear(ipcbus_bus *bus, char **args, ipcbus_error *error)
{
        int r;

        /* Clear is described "no_reply": send it without waiting for an answer. */
        r = ipcbus_send_oneway(bus, NOTES_NAME, NOTES_PATH, NOTES_NAME, "Clear", NULL);
        if (r < 0)
                return r;
        return ipcbus_flush(bus);
}

static int on_changed(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        uint64_t id;

        if (ipcbus_message_read(m, "id:t", &id) > 0)
                printf("changed %" PRIu64 "\n", id);
        return 0;
}

static int on_properties_changed(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        uint64_t count;

        if (ipcbus_message_enter(m, "changed") > 0 && ipcbus_message_read(m, "Count:t", &count) > 0)
                printf("count %" PRIu64 "\n", count);
        return 0;
}

static int cmd_watch(ipcbus_bus *bus, char **args, ipcbus_error *error)
{
        _cleanup_(ipcbus_slot_unrefp) ipcbus_slot *changed = NULL, *properties = NULL;
        int r;

        r = ipcbus_add_match(bus, &changed, CHANGED_RULE, on_changed, NULL, error);
        if (r < 0)
                return r;
        r = ipcbus_add_match(bus, &properties, PROPERTIES_RULE, on_properties_changed, NULL, error);
        if (r < 0)
                return r;
        setvbuf(stdout, NULL, _IOLBF, 0);
        printf("watching %s\n", NOTES_NAME);

        for (;;) {
                r = ipcbus_process(bus);
                if (r == 0)
                        r = ipcbus_wait(bus, UINT64_MAX);
                if (r == -ECONNRESET)
                        return 0; /* the bus is gone */
                if (r < 0)
                        return r;
        }
}

static const struct {
        const char *name;
        int n_args;
        int (*run)(ipcbus_bus *bus, char **args, ipcbus_error *error);
} commands[] = {
        {"add", 1, cmd_add},     {"list", 0, cmd_list},   {"get", 1, cmd_get},
        {"count", 0, cmd_count}, {"clear", 0, cmd_clear}, {"watch", 0, cmd_watch},
};

int main(int argc, char **argv)
{
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        _cleanup_(ipcbus_error_freep) ipcbus_error error = IPCBUS_ERROR_NULL;
        int r;

        for (size_t i = 0; argc > 1 && i < sizeof(commands) / sizeof(commands[0]); i++) {
                if (strcmp(argv[1], commands[i].name) != 0 || argc - 2 != commands[i].n_args)
                        continue;
                r = ipcbus_open_session(&bus);
                if (r >= 0)
                        r = commands[i].run(bus, argv + 2, &error);
                if (r >= 0)
                        return EXIT_SUCCESS;
                if (ipcbus_error_is_set(&error))
                        fprintf(stderr, "notes-client: %s: %s\n", error.name, error.message ? error.message : "");
                else
                        fprintf(stderr, "notes-client: %s\n", ipcbus_strerror(r));
                return EXIT_FAILURE;
        }
        fprintf(stderr, "usage: notes-client add TEXT | list | get ID | count | clear | watch\n");
        return 2;
}
