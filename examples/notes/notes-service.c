/* SPDX-License-Identifier: MIT */
/*
 * notes-service: short notes kept in memory, served as org.example.Notes at
 * /org/example/Notes on the bus that started it (else the session bus).
 *
 * The interface is described in org.example.Notes.json (found in
 * $IPCBUS_INTERFACE_PATH or $(datadir)/ipcbus/interfaces). From it libipcbus
 * checks every call before a handler runs (a wrong or missing argument is
 * answered InvalidArgs), checks every reply and signal we send, and answers
 * Introspect, Get/GetAll of the Count property and the object manager at /.
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

struct notes {
        char **texts; /* the note with id i is texts[i - 1] */
        size_t n;
};

/* Forget every note (also the cleanup of main's notes). */
static void notes_clear(struct notes *notes)
{
        for (size_t i = 0; i < notes->n; i++)
                free(notes->texts[i]);
        free(notes->texts);
        *notes = (struct notes){NULL, 0};
}

static int notes_changed(ipcbus_bus *bus, uint64_t id)
{
        int r;

        r = ipcbus_emit(bus, NOTES_PATH, NOTES_NAME, "Changed", "id:t", id);
        if (r < 0)
                return r;
        return ipcbus_emit_properties_changed(bus, NOTES_PATH, NOTES_NAME, "Count", NULL);
}

static int method_add(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct notes *notes = userdata;
        const char *text;
        char **texts;
        int r;

        r = ipcbus_message_read(m, "text:s", &text);
        if (r < 0)
                return r;
        texts = realloc(notes->texts, (notes->n + 1) * sizeof(*texts));
        if (!texts)
                return -ENOMEM;
        notes->texts = texts;
        texts[notes->n] = strdup(text);
        if (!texts[notes->n])
                return -ENOMEM;
        notes->n++;

        r = notes_changed(ipcbus_message_get_bus(m), notes->n);
        if (r < 0)
                return r;
        return ipcbus_reply_method(m, "id:t", (uint64_t) notes->n);
}

static int method_list(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct notes *notes = userdata;
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *reply = NULL;
        int r;

        r = ipcbus_message_new_return(m, &reply);
        if (r < 0)
                return r;
        r = ipcbus_message_open(reply, '[', "notes");
        if (r < 0)
                return r;
        for (size_t i = 0; i < notes->n; i++) {
                r = ipcbus_message_append(reply, "{id:t text:s}", (uint64_t) i + 1, notes->texts[i]);
                if (r < 0)
                        return r;
        }
        r = ipcbus_message_close(reply);
        if (r < 0)
                return r;
        return ipcbus_send(ipcbus_message_get_bus(m), reply);
}

static int method_get(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct notes *notes = userdata;
        uint64_t id;
        int r;

        r = ipcbus_message_read(m, "id:t", &id);
        if (r < 0)
                return r;
        if (id < 1 || id > notes->n)
                return ipcbus_reply_errorf(m, "org.example.Notes.Error.NotFound", "no note with id %" PRIu64, id);
        return ipcbus_reply_method(m, "text:s", notes->texts[id - 1]);
}

static int method_clear(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        int r;

        notes_clear(userdata);
        r = notes_changed(ipcbus_message_get_bus(m), 0);
        if (r < 0)
                return r;
        return ipcbus_reply_method(m, NULL); /* nothing is sent when the caller said no_reply */
}

static int get_count(ipcbus_message *reply, const char *property, void *userdata, ipcbus_error *ret_error)
{
        struct notes *notes = userdata;

        return ipcbus_message_append(reply, "t", (uint64_t) notes->n);
}

/* clang-format off */
static const ipcbus_vtable notes_vtable[] = {
        IPCBUS_METHOD("Add", method_add),
        IPCBUS_METHOD("List", method_list),
        IPCBUS_METHOD("Get", method_get),
        IPCBUS_METHOD("Clear", method_clear),
        IPCBUS_PROPERTY("Count", get_count, NULL),
        IPCBUS_VTABLE_END,
};
/* clang-format on */

static int fail(const char *what, int r)
{
        const char *why = ipcbus_last_error();

        fprintf(stderr, "notes-service: %s: %s\n", what, why[0] ? why : ipcbus_strerror(r));
        return EXIT_FAILURE;
}

int main(void)
{
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        _cleanup_(ipcbus_interface_unrefp) ipcbus_interface *iface = NULL;
        _cleanup_(ipcbus_slot_unrefp) ipcbus_slot *manager = NULL, *object = NULL;
        _cleanup_(ipcbus_error_freep) ipcbus_error error = IPCBUS_ERROR_NULL;
        _cleanup_(notes_clear) struct notes notes = {NULL, 0};
        int r;

        r = ipcbus_open_starter(&bus);
        if (r < 0)
                return fail("connecting", r);
        r = ipcbus_interface_load(NOTES_NAME, &iface);
        if (r < 0)
                return fail("loading " NOTES_NAME ".json", r);
        r = ipcbus_add_object_manager(bus, &manager, "/");
        if (r < 0)
                return fail("serving the object manager", r);
        r = ipcbus_add_object_vtable(bus, &object, NOTES_PATH, iface, notes_vtable, &notes);
        if (r < 0)
                return fail("serving " NOTES_PATH, r);
        r = ipcbus_request_name(bus, NOTES_NAME, 0, &error);
        if (r < 0)
                return fail(error.message ? error.message : "requesting " NOTES_NAME, r);

        r = ipcbus_run(bus); /* until the bus goes away */
        if (r < 0)
                return fail("serving", r);
        return EXIT_SUCCESS;
}
