/* SPDX-License-Identifier: MIT */
/*
 * ipcctl: talk to an ipcbus bus from the command line (list names, call
 * methods, emit signals, inspect a connection). Modelled on busctl.
 *
 * Exit status: 0 success, 1 failure (including an error reply), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ipcbus/ipcbus.h>

#include "tools/ipcctl.h"
#include "util/clock.h"

static void help(void)
{
        printf("Usage: ipcctl [OPTIONS] COMMAND ...\n"
               "\n"
               "Talk to an ipcbus message bus.\n"
               "\n"
               "Options:\n"
               "  --address ADDR     connect to ADDR (unix:path=/absolute/path)\n"
               "  --session          connect to the session bus (the default: $IPCBUS_ADDRESS,\n"
               "                     else unix:path=$XDG_RUNTIME_DIR/ipcbus/bus)\n"
               "  --system           connect to the system bus ($IPCBUS_SYSTEM_ADDRESS,\n"
               "                     else unix:path=/run/ipcbus/system_bus_socket)\n"
               "  --timeout SECS     how long to wait for each answer (default 25; wait: no limit)\n"
               "  --json             print JSON, for scripts and jq (on one line; stats: indented)\n"
               "  --destination NAME (emit) send the signal to NAME only\n"
               "  --no-reply         (call) ask for no reply and print nothing\n"
               "  --no-auto-start    (call) do not start a service for the call\n"
               "  --no-check         (call, emit, set-property) do not check the arguments\n"
               "                     against the interface's description\n"
               "  --full             (introspect) on a terminal too, print long types and\n"
               "                     values whole instead of shortened to 60 columns\n"
               "  --format FORMAT    (metrics) openmetrics (the default) or prometheus\n"
               "  -h, --help         show this help\n"
               "  --version          show the version\n"
               "\n"
               "Commands:\n"
               "  list\n"
               "      Every name on the bus with its owner, PID and UID, and the names a\n"
               "      service would be started for (owner \"(activatable)\").\n"
               "  status NAME\n"
               "      Owner, credentials, command line and queued owners of a bus name.\n"
               "  tree NAME\n"
               "      The object paths NAME serves.\n"
               "  introspect NAME PATH [IFACE]\n"
               "      The interfaces of an object: methods, properties with their values,\n"
               "      signals.\n"
               "        ipcctl introspect org.ipcbus.Bus /org/ipcbus/Bus\n"
               "  call DEST PATH IFACE MEMBER [JSON]\n"
               "      Call a method and print the reply's body. IFACE may be '-' for none;\n"
               "      JSON is the argument object.\n"
               "        ipcctl call org.ipcbus.Bus /org/ipcbus/Bus org.ipcbus.Bus GetNameOwner '{\"name\": "
               "\"org.ipcbus.Bus\"}'\n"
               "  emit PATH IFACE MEMBER [JSON] [--destination NAME]\n"
               "      Emit a signal (broadcast, or to NAME).\n"
               "  get-property NAME PATH IFACE PROPERTY...\n"
               "      Print the values of properties, as JSON, one a line.\n"
               "  set-property NAME PATH IFACE PROPERTY JSON\n"
               "      Set a property to a value given as JSON ('3', '\"text\"', '[1, 2]').\n"
               "  wait NAME [--timeout SECS]\n"
               "      Return once NAME has an owner.\n"
               "  stats [NAME]\n"
               "      The broker's statistics: the bus's totals and a table of the\n"
               "      connections you may see; with NAME, that connection's figures.\n"
               "  metrics [--format FORMAT]\n"
               "      The broker's statistics as OpenMetrics (or Prometheus) text, for\n"
               "      node_exporter's textfile collector or any scraper.\n"
               "\n"
               "Exit status: 0 on success, 1 on failure or an error reply (printed on\n"
               "stderr as 'NAME: message'), 2 on a usage error.\n");
}

int ctl_usage_error(const char *fmt, ...)
{
        va_list ap;

        fputs("ipcctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\n(see ipcctl --help)\n", stderr);
        return EXIT_USAGE;
}

int ctl_fail(const char *fmt, ...)
{
        va_list ap;

        fputs("ipcctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return EXIT_FAILURE;
}

int ctl_remote_error(const ipcbus_error *e)
{
        _cleanup_(freep) char *message = NULL;

        if (e->message)
                message = format_sanitize(e->message, strlen(e->message));
        fprintf(stderr, "%s: %s\n", e->name ? e->name : IPCBUS_ERROR_FAILED, message ? message : "(no message)");
        return EXIT_FAILURE;
}

int ctl_call_failed(const char *what, int r, const ipcbus_error *e)
{
        const char *why = ipcbus_last_error();

        if (r == -EREMOTEIO && ipcbus_error_is_set(e))
                return ctl_remote_error(e);
        if (r == -ETIMEDOUT)
                return ctl_fail("%s: no answer in time", what);
        return ctl_fail("%s: %s", what, why && *why ? why : ipcbus_strerror(r));
}

int ctl_connect(struct ctl *c)
{
        return format_open_bus("ipcctl", c->address, c->system, &c->bus) < 0 ? EXIT_FAILURE : 0;
}

int ctl_call_json(struct ctl *c, const char *destination, const char *path, const char *interface, const char *member,
                  struct json_object *body, struct json_object **ret, ipcbus_error *e)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *reply = NULL;
        struct json_object *obj = NULL;
        int r;

        r = ipcbus_call(c->bus, destination, path, interface, member, body ? format_json_string(body, false) : NULL,
                        c->timeout_usec, &reply, e);
        if (r < 0)
                return r;
        if (ipcbus_message_get_json(reply, &obj) < 0 || !json_object_is_type(obj, json_type_object)) {
                json_object_put(obj);
                return -EBADMSG;
        }
        if (!obj)
                return -ENOMEM;
        *ret = obj;
        return 0;
}

/*
 * Call a driver method whose only argument is `name` (or none when NULL).
 * Returns as ctl_call_json.
 */
static int driver_call(struct ctl *c, const char *member, const char *name, struct json_object **ret, ipcbus_error *e)
{
        _cleanup_(json_object_putp) struct json_object *body = NULL;

        if (name) {
                body = json_object_new_object();
                if (!body || json_object_object_add(body, "name", json_object_new_string(name)) < 0)
                        return -ENOMEM;
        }
        return ctl_call_json(c, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, member, body, ret, e);
}

int ctl_check_bus_name(const char *name)
{
        return ipcbus_is_bus_name(name) ? 0 : ctl_usage_error("invalid bus name '%s'", name);
}

int ctl_check_path(const char *path)
{
        return ipcbus_is_object_path(path) ? 0 : ctl_usage_error("invalid object path '%s'", path);
}

int ctl_check_interface(const char *interface)
{
        return ipcbus_is_interface_name(interface) ? 0 : ctl_usage_error("invalid interface name '%s'", interface);
}

struct json_object *ctl_json_get(struct json_object *obj, const char *key, enum json_type type)
{
        struct json_object *v;

        if (!obj || !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, type))
                return NULL;
        return v;
}

/* The integer member `key` of obj, or -1 when absent or not an integer. */
static int64_t json_get_int(struct json_object *obj, const char *key)
{
        struct json_object *v;

        if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
                return -1;
        return json_object_get_int64(v);
}

/* The string member `key` of obj, or NULL. */
static const char *json_get_string(struct json_object *obj, const char *key)
{
        struct json_object *v;

        if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* The integer member `key` of obj as a new JSON value, or NULL (JSON null). */
static struct json_object *json_int_or_null(struct json_object *obj, const char *key)
{
        int64_t v = json_get_int(obj, key);

        return v >= 0 ? json_object_new_int64(v) : NULL;
}

/* ---- list ----------------------------------------------------------------- */

struct name_row {
        char *name;
        char *owner; /* "(activatable)" for a name nobody owns that a service file declares */
        int64_t pid, uid, gid;
        bool activatable; /* such a name */
};

/* Compare two dot-separated elements: numerically when both are all digits. */
static int element_compare(const char *a, size_t alen, const char *b, size_t blen)
{
        bool anum = alen > 0 && strspn(a, "0123456789") >= alen;
        bool bnum = blen > 0 && strspn(b, "0123456789") >= blen;
        int r;

        if (anum && bnum) {
                /* strip leading zeros, then the longer number is the larger */
                while (alen > 1 && *a == '0')
                        a++, alen--;
                while (blen > 1 && *b == '0')
                        b++, blen--;
                if (alen != blen)
                        return alen < blen ? -1 : 1;
                return memcmp(a, b, alen);
        }
        r = memcmp(a, b, alen < blen ? alen : blen);
        if (r != 0)
                return r;
        return alen < blen ? -1 : alen > blen ? 1 : 0;
}

int ctl_unique_name_compare(const char *a, const char *b)
{
        a++, b++; /* the ':' */
        for (;;) {
                size_t alen = strcspn(a, "."), blen = strcspn(b, ".");
                int r = element_compare(a, alen, b, blen);

                if (r != 0)
                        return r;
                a += alen, b += blen;
                if (*a == '\0' || *b == '\0')
                        return *a == *b ? 0 : *a == '\0' ? -1 : 1;
                a++, b++;
        }
}

/* Well-known names first, alphabetically, then unique names numerically. */
static int name_row_compare(const void *x, const void *y)
{
        const struct name_row *a = x, *b = y;
        bool au = a->name[0] == ':', bu = b->name[0] == ':';

        if (au != bu)
                return au ? 1 : -1;
        return au ? ctl_unique_name_compare(a->name, b->name) : strcmp(a->name, b->name);
}

static void name_rows_free(struct name_row *rows, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(rows[i].name);
                free(rows[i].owner);
        }
        free(rows);
}

static void list_print_table(const struct name_row *rows, size_t n)
{
        int wname = (int) strlen("NAME"), wowner = (int) strlen("OWNER");

        for (size_t i = 0; i < n; i++) {
                if ((int) strlen(rows[i].name) > wname)
                        wname = (int) strlen(rows[i].name);
                if ((int) strlen(rows[i].owner) > wowner)
                        wowner = (int) strlen(rows[i].owner);
        }
        printf("%-*s %-*s %7s %7s\n", wname, "NAME", wowner, "OWNER", "PID", "UID");
        for (size_t i = 0; i < n; i++) {
                char pid[24] = "-", uid[24] = "-";

                if (rows[i].pid >= 0)
                        snprintf(pid, sizeof(pid), "%" PRId64, rows[i].pid);
                if (rows[i].uid >= 0)
                        snprintf(uid, sizeof(uid), "%" PRId64, rows[i].uid);
                printf("%-*s %-*s %7s %7s\n", wname, rows[i].name, wowner, rows[i].owner, pid, uid);
        }
}

static int list_print_json(const struct name_row *rows, size_t n)
{
        _cleanup_(json_object_putp) struct json_object *arr = json_object_new_array();

        if (!arr)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *o = json_object_new_object();

                if (!o)
                        return -ENOMEM;
                json_object_object_add(o, "name", json_object_new_string(rows[i].name));
                json_object_object_add(o, "owner", rows[i].activatable ? NULL : json_object_new_string(rows[i].owner));
                json_object_object_add(o, "activatable", json_object_new_boolean(rows[i].activatable));
                json_object_object_add(o, "pid", rows[i].pid >= 0 ? json_object_new_int64(rows[i].pid) : NULL);
                json_object_object_add(o, "uid", rows[i].uid >= 0 ? json_object_new_int64(rows[i].uid) : NULL);
                json_object_object_add(o, "gid", rows[i].gid >= 0 ? json_object_new_int64(rows[i].gid) : NULL);
                json_object_array_add(arr, o);
        }
        puts(format_json_string(arr, false));
        return 0;
}

static bool name_rows_have(const struct name_row *rows, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(rows[i].name, name) == 0)
                        return true;
        return false;
}

/*
 * Rows for the names a service file declares that nobody owns now, as
 * busctl lists them: owner "(activatable)", no process. Returns 0 or the
 * exit status after printing why.
 */
static int list_add_activatable(struct ctl *c, struct name_row **rows, size_t *n)
{
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct json_object *names;
        size_t n_names;
        int r;

        r = driver_call(c, "ListActivatableNames", NULL, &reply, &e);
        if (r < 0)
                return ctl_call_failed("ListActivatableNames", r, &e);
        if (!json_object_object_get_ex(reply, "names", &names) || !json_object_is_type(names, json_type_array)) {
                fprintf(stderr, "ipcctl: ListActivatableNames: the reply has no names array\n");
                return EXIT_FAILURE;
        }
        n_names = json_object_array_length(names);
        for (size_t i = 0; i < n_names; i++) {
                struct json_object *v = json_object_array_get_idx(names, i);
                const char *name = json_object_get_string(v);
                struct name_row *grown;

                if (!json_object_is_type(v, json_type_string) || !ipcbus_is_well_known_name(name) ||
                    name_rows_have(*rows, *n, name))
                        continue;
                grown = realloc(*rows, (*n + 1) * sizeof(**rows));
                if (!grown)
                        goto oom;
                *rows = grown;
                grown[*n] = (struct name_row){.name = strdup(name),
                                              .owner = strdup("(activatable)"),
                                              .pid = -1,
                                              .uid = -1,
                                              .gid = -1,
                                              .activatable = true};
                (*n)++;
                if (!grown[*n - 1].name || !grown[*n - 1].owner)
                        goto oom;
        }
        return 0;
oom:
        fprintf(stderr, "ipcctl: %s\n", strerror(ENOMEM));
        return EXIT_FAILURE;
}

/*
 * Add a row for each bus name of the ListNames array `names` with its
 * owner's credentials to rows (room for every name); *n counts them. A name
 * gone since ListNames is skipped. Returns 0, or the exit status after saying
 * why (the caller frees the rows).
 */
static int list_add_names(struct ctl *c, struct json_object *names, struct name_row *rows, size_t *n)
{
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        size_t n_names = json_object_array_length(names);

        for (size_t i = 0; i < n_names; i++) {
                _cleanup_(json_object_putp) struct json_object *cred = NULL;
                struct json_object *v = json_object_array_get_idx(names, i);
                const char *name = json_object_get_string(v);
                const char *owner;
                int r;

                if (!json_object_is_type(v, json_type_string) || !ipcbus_is_bus_name(name))
                        continue;
                r = driver_call(c, "GetConnectionCredentials", name, &cred, &e);
                if (r == -EREMOTEIO && ipcbus_error_has_name(&e, IPCBUS_ERROR_NAME_HAS_NO_OWNER)) {
                        /* gone since ListNames */
                        ipcbus_error_free(&e);
                        continue;
                }
                if (r < 0)
                        return ctl_call_failed("GetConnectionCredentials", r, &e);
                owner = json_get_string(cred, "unique_name");
                rows[*n].name = strdup(name);
                rows[*n].owner = strdup(owner ? owner : "-");
                rows[*n].pid = json_get_int(cred, "pid");
                rows[*n].uid = json_get_int(cred, "uid");
                rows[*n].gid = json_get_int(cred, "gid");
                (*n)++;
                if (!rows[*n - 1].name || !rows[*n - 1].owner) {
                        fprintf(stderr, "ipcctl: %s\n", strerror(ENOMEM));
                        return EXIT_FAILURE;
                }
        }
        return 0;
}

static int cmd_list(struct ctl *c, int argc, char **argv)
{
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct json_object *names;
        struct name_row *rows;
        size_t n_names, n = 0;
        int r;

        if (argc != 1)
                return ctl_usage_error("list takes no arguments");
        r = ctl_connect(c);
        if (r != 0)
                return r;
        r = driver_call(c, "ListNames", NULL, &reply, &e);
        if (r < 0)
                return ctl_call_failed("ListNames", r, &e);
        if (!json_object_object_get_ex(reply, "names", &names) || !json_object_is_type(names, json_type_array)) {
                fprintf(stderr, "ipcctl: ListNames: the reply has no names array\n");
                return EXIT_FAILURE;
        }
        n_names = json_object_array_length(names);
        rows = calloc(n_names ? n_names : 1, sizeof(*rows));
        if (!rows) {
                fprintf(stderr, "ipcctl: %s\n", strerror(ENOMEM));
                return EXIT_FAILURE;
        }
        r = list_add_names(c, names, rows, &n);
        if (r == 0)
                r = list_add_activatable(c, &rows, &n);
        if (r != 0) {
                name_rows_free(rows, n);
                return r;
        }
        qsort(rows, n, sizeof(*rows), name_row_compare);
        if (c->json)
                r = list_print_json(rows, n);
        else
                list_print_table(rows, n);
        name_rows_free(rows, n);
        if (r < 0) {
                fprintf(stderr, "ipcctl: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        return 0;
}

/* ---- call, emit, wait ----------------------------------------------------- */

/* Check the JSON argument (may be NULL). Returns 0 or the usage exit status. */
static int check_body_arg(const char *body)
{
        const char *reason = NULL;

        if (body && format_check_body(body, &reason) < 0)
                return ctl_usage_error("invalid JSON argument: %s", reason);
        return 0;
}

/* Check PATH IFACE MEMBER; IFACE "-" means none when allow_none. Returns 0 or the usage exit status. */
static int check_path_iface_member(const char *path, const char *iface, bool allow_none, const char *member)
{
        int r = ctl_check_path(path);

        if (r != 0)
                return r;
        if (!allow_none && strcmp(iface, "-") == 0)
                return ctl_usage_error("a signal needs an interface");
        if (!(allow_none && strcmp(iface, "-") == 0) && !ipcbus_is_interface_name(iface))
                return ctl_usage_error("invalid interface name '%s'", iface);
        if (!ipcbus_is_member_name(member))
                return ctl_usage_error("invalid member name '%s'", member);
        return 0;
}

/*
 * Check the body of a call (type IPCBUS_MESSAGE_CALL) or signal against the
 * description of iface, when one is installed (ipcbus_interface_load) and
 * --no-check was not given. Returns 0 (it fits, or there is nothing to check
 * against) or the exit status after saying what is wrong.
 */
static int check_against_description(struct ctl *c, const char *iface, ipcbus_message_type type, const char *member,
                                     const char *body)
{
        _cleanup_(ipcbus_interface_unrefp) ipcbus_interface *desc = NULL;
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        const char *kind = type == IPCBUS_MESSAGE_SIGNAL ? "signal" : "method";
        int r;

        if (c->no_check || !iface)
                return 0;
        r = ipcbus_interface_load(iface, &desc);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return ctl_fail("the description of %s: %s (--no-check sends anyway)", iface, ipcbus_last_error());
        r = ipcbus_interface_check(desc, type, member, body, &e);
        if (r == -ENOENT)
                return ctl_fail("%s has no %s %s (--no-check sends anyway)", iface, kind, member);
        if (r < 0)
                return ctl_fail("%s %s: %s (--no-check sends anyway)", kind, member,
                                e.message ? e.message : ipcbus_last_error());
        return 0;
}

/*
 * Build and send the call: with --no-reply without waiting (*ret_reply
 * untouched), else wait for the answer. Returns as ipcbus_call_message.
 */
static int call_send(struct ctl *c, char **argv, const char *iface, const char *body, ipcbus_message **ret_reply,
                     ipcbus_error *e)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *m = NULL;
        int r;

        r = ipcbus_message_new_call(c->bus, &m, argv[1], argv[2], iface, argv[4]);
        if (r >= 0 && body)
                r = ipcbus_message_set_body(m, body);
        if (r >= 0)
                r = ipcbus_message_set_no_auto_start(m, c->no_auto_start);
        if (r >= 0)
                r = ipcbus_message_set_no_reply(m, c->no_reply);
        if (r < 0)
                return r;
        if (!c->no_reply)
                return ipcbus_call_message(c->bus, m, c->timeout_usec, ret_reply, e);
        r = ipcbus_send(c->bus, m);
        return r < 0 ? r : ipcbus_flush(c->bus);
}

static int cmd_call(struct ctl *c, int argc, char **argv)
{
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *reply = NULL;
        const char *iface, *member, *body, *text;
        size_t len = 0;
        int r;

        if (argc < 5 || argc > 6)
                return ctl_usage_error("call takes DEST PATH IFACE MEMBER [JSON]");
        iface = argv[3], member = argv[4];
        body = argc == 6 ? argv[5] : NULL;
        r = ctl_check_bus_name(argv[1]);
        if (r == 0)
                r = check_path_iface_member(argv[2], iface, true, member);
        if (r == 0)
                r = check_body_arg(body);
        if (r != 0)
                return r;
        if (strcmp(iface, "-") == 0)
                iface = NULL;
        r = check_against_description(c, iface, IPCBUS_MESSAGE_CALL, member, body);
        if (r != 0)
                return r;

        r = ctl_connect(c);
        if (r != 0)
                return r;
        r = call_send(c, argv, iface, body, &reply, &e);
        if (r < 0)
                return ctl_call_failed(member, r, &e);
        text = reply ? ipcbus_message_get_body(reply, &len) : NULL;
        if (text && len > 0)
                format_print_body(stdout, reply, !c->json);
        return 0;
}

/*
 * A unicast signal to a name without owner is dropped by the broker without a
 * word (PROTOCOL.md section 10): ask first, and say so. Returns 0 when the
 * name has an owner, else the exit status after saying why.
 */
static int emit_check_destination(struct ctl *c)
{
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        int r;

        r = driver_call(c, "GetNameOwner", c->destination, &reply, &e);
        if (r == -EREMOTEIO && ipcbus_error_has_name(&e, IPCBUS_ERROR_NAME_HAS_NO_OWNER))
                return ctl_fail("%s has no owner: nobody would receive the signal", c->destination);
        if (r < 0)
                return ctl_call_failed("GetNameOwner", r, &e);
        return 0;
}

static int cmd_emit(struct ctl *c, int argc, char **argv)
{
        const char *path, *iface, *member, *body;
        int r;

        if (argc < 4 || argc > 5)
                return ctl_usage_error("emit takes PATH IFACE MEMBER [JSON]");
        path = argv[1], iface = argv[2], member = argv[3];
        body = argc == 5 ? argv[4] : NULL;
        r = c->destination ? ctl_check_bus_name(c->destination) : 0;
        if (r == 0)
                r = check_path_iface_member(path, iface, false, member);
        if (r == 0)
                r = check_body_arg(body);
        if (r == 0)
                r = check_against_description(c, iface, IPCBUS_MESSAGE_SIGNAL, member, body);
        if (r == 0)
                r = ctl_connect(c);
        if (r == 0 && c->destination)
                r = emit_check_destination(c);
        if (r != 0)
                return r;

        r = ipcbus_emit_signal(c->bus, c->destination, path, iface, member, body);
        if (r >= 0)
                r = ipcbus_flush(c->bus);
        if (r < 0)
                return ctl_fail("cannot emit %s: %s", member, ipcbus_strerror(r));
        return 0;
}

struct wait_state {
        const char *name;
        bool appeared;
};

static int wait_on_owner_changed(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct wait_state *w = userdata;
        const char *name = ipcbus_message_get_arg(m, "name"), *owner = ipcbus_message_get_arg(m, "new_owner");

        if (name && owner && strcmp(name, w->name) == 0 && owner[0] != '\0')
                w->appeared = true;
        return 0;
}

/* Process the connection until w->appeared or the deadline (UINT64_MAX: none). Returns 0, -ETIMEDOUT, -errno. */
static int wait_until(struct ctl *c, struct wait_state *w, uint64_t deadline)
{
        while (!w->appeared) {
                uint64_t now;
                int r = ipcbus_process(c->bus);

                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                now = clock_now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = ipcbus_wait(c->bus, deadline == UINT64_MAX ? UINT64_MAX : deadline - now);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int cmd_wait(struct ctl *c, int argc, char **argv)
{
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        _cleanup_(ipcbus_slot_unrefp) ipcbus_slot *slot = NULL;
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct wait_state w = {.name = argc == 2 ? argv[1] : NULL};
        uint64_t deadline = UINT64_MAX;
        char rule[IPCBUS_NAME_MAX + 256];
        int r;

        if (argc != 2)
                return ctl_usage_error("wait takes NAME");
        r = ctl_check_bus_name(w.name);
        if (r == 0)
                r = ctl_connect(c);
        if (r != 0)
                return r;
        if (c->timeout_set)
                deadline = clock_now_usec(CLOCK_MONOTONIC) + c->timeout_usec;
        /* Subscribe first, then ask: an owner that comes between the two is seen either way. */
        snprintf(rule, sizeof(rule), "type=signal,sender=%s,path=%s,interface=%s,member=NameOwnerChanged,arg.name='%s'",
                 IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, w.name);
        r = ipcbus_add_match(c->bus, &slot, rule, wait_on_owner_changed, &w, &e);
        if (r < 0)
                return ctl_call_failed("AddMatch", r, &e);
        r = driver_call(c, "GetNameOwner", w.name, &reply, &e);
        if (r == 0)
                return 0;
        if (r != -EREMOTEIO || !ipcbus_error_has_name(&e, IPCBUS_ERROR_NAME_HAS_NO_OWNER))
                return ctl_call_failed("GetNameOwner", r, &e);
        r = wait_until(c, &w, deadline);
        if (r == -ETIMEDOUT)
                return ctl_fail("%s has no owner yet: timed out", w.name);
        if (r < 0)
                return ctl_fail("waiting for %s: %s", w.name, ipcbus_strerror(r));
        return 0;
}

/* ---- status --------------------------------------------------------------- */

/*
 * Read /proc/PID/cmdline into a JSON array of strings (made printable).
 * Returns NULL when it cannot be read (another user's process, gone, kernel thread).
 */
static struct json_object *cmdline_read(int64_t pid)
{
        _cleanup_(freep) char *buf = NULL;
        struct json_object *arr;
        char path[64];
        size_t len = 0, size = 0;
        int fd;

        if (pid <= 0)
                return NULL;
        snprintf(path, sizeof(path), "/proc/%" PRId64 "/cmdline", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        for (;;) {
                ssize_t n;

                if (len == size) {
                        char *p = size < 1024 * 1024 ? realloc(buf, size ? size * 2 : 4096) : NULL;

                        if (!p)
                                break;
                        buf = p;
                        size = size ? size * 2 : 4096;
                }
                n = read(fd, buf + len, size - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t) n;
        }
        close(fd);
        if (len == 0)
                return NULL;
        arr = json_object_new_array();
        for (size_t i = 0; arr && i < len;) {
                size_t n = strnlen(buf + i, len - i);
                char *arg = format_sanitize(buf + i, n);

                if (arg)
                        json_object_array_add(arr, json_object_new_string(arg));
                free(arg);
                i += n + 1;
        }
        return arr;
}

/* Print the status object as Key=value lines (arrays joined by spaces, null as "-"). */
static void status_print_text(struct json_object *st)
{
        json_object_object_foreach(st, key, val)
        {
                static const struct {
                        const char *key, *label;
                } labels[] = {
                        {"name", "Name"},
                        {"owner", "Owner"},
                        {"uid", "UID"},
                        {"gid", "GID"},
                        {"pid", "PID"},
                        {"cmdline", "CommandLine"},
                        {"queued_owners", "QueuedOwners"},
                };
                const char *label = key;

                for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
                        if (strcmp(labels[i].key, key) == 0)
                                label = labels[i].label;
                printf("%s=", label);
                if (!val) {
                        puts("-");
                } else if (json_object_is_type(val, json_type_array)) {
                        for (size_t i = 0; i < json_object_array_length(val); i++)
                                printf("%s%s", i ? " " : "", json_object_get_string(json_object_array_get_idx(val, i)));
                        putchar('\n');
                } else {
                        puts(json_object_get_string(val));
                }
        }
}

static int cmd_status(struct ctl *c, int argc, char **argv)
{
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        _cleanup_(json_object_putp) struct json_object *cred = NULL, *queue = NULL, *st = NULL;
        struct json_object *owners, *cmdline;
        const char *name, *owner;
        int64_t pid;
        int r;

        if (argc != 2)
                return ctl_usage_error("status takes NAME");
        name = argv[1];
        if (!ipcbus_is_bus_name(name))
                return ctl_usage_error("invalid bus name '%s'", name);
        r = ctl_connect(c);
        if (r != 0)
                return r;
        r = driver_call(c, "GetConnectionCredentials", name, &cred, &e);
        if (r < 0)
                return ctl_call_failed("GetConnectionCredentials", r, &e);
        owner = json_get_string(cred, "unique_name");
        pid = json_get_int(cred, "pid");

        st = json_object_new_object();
        if (!st)
                return ctl_call_failed("status", -ENOMEM, &e);
        json_object_object_add(st, "name", json_object_new_string(name));
        json_object_object_add(st, "owner", owner ? json_object_new_string(owner) : NULL);
        json_object_object_add(st, "uid", json_int_or_null(cred, "uid"));
        json_object_object_add(st, "gid", json_int_or_null(cred, "gid"));
        json_object_object_add(st, "pid", json_int_or_null(cred, "pid"));
        cmdline = cmdline_read(pid);
        if (cmdline)
                json_object_object_add(st, "cmdline", cmdline);

        if (ipcbus_is_well_known_name(name)) {
                r = driver_call(c, "ListQueuedOwners", name, &queue, &e);
                if (r == 0 && json_object_object_get_ex(queue, "owners", &owners) &&
                    json_object_is_type(owners, json_type_array))
                        json_object_object_add(st, "queued_owners", json_object_get(owners));
                else if (r == -EREMOTEIO && !ipcbus_error_has_name(&e, IPCBUS_ERROR_NAME_HAS_NO_OWNER))
                        return ctl_remote_error(&e);
                /* NameHasNoOwner: the name went away meanwhile; print what we have */
        }

        if (c->json)
                puts(format_json_string(st, false));
        else
                status_print_text(st);
        return 0;
}

/* ---- main ----------------------------------------------------------------- */

/* Parse --timeout SECS (non-negative, fractions allowed; 0 = the default). */
static int parse_timeout(const char *s, uint64_t *ret)
{
        char *end;
        double secs;

        errno = 0;
        secs = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !isfinite(secs) || secs < 0 || secs > 1e9)
                return -EINVAL;
        *ret = (uint64_t) (secs * 1e6);
        if (secs > 0 && *ret == 0)
                *ret = 1;
        return 0;
}

/* What ctl_parse_options returns when ipcctl goes on to run the command. */
#define PARSE_RUN (-1)

/*
 * Parse the options before the command into c. Returns PARSE_RUN, or the exit
 * status when ipcctl is done (--help, --version, a usage error).
 */
/* The options of every command (see help()). */
enum {
        OPT_ADDRESS = 0x100,
        OPT_SESSION,
        OPT_SYSTEM,
        OPT_TIMEOUT,
        OPT_JSON,
        OPT_DESTINATION,
        OPT_NO_REPLY,
        OPT_NO_AUTO_START,
        OPT_NO_CHECK,
        OPT_FULL,
        OPT_FORMAT,
        OPT_VERSION
};
static const struct option ctl_options[] = {
        {"address", required_argument, NULL, OPT_ADDRESS},
        {"session", no_argument, NULL, OPT_SESSION},
        {"system", no_argument, NULL, OPT_SYSTEM},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"json", no_argument, NULL, OPT_JSON},
        {"destination", required_argument, NULL, OPT_DESTINATION},
        {"no-reply", no_argument, NULL, OPT_NO_REPLY},
        {"no-auto-start", no_argument, NULL, OPT_NO_AUTO_START},
        {"no-check", no_argument, NULL, OPT_NO_CHECK},
        {"full", no_argument, NULL, OPT_FULL},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {},
};

static int ctl_parse_options(int argc, char **argv, struct ctl *c)
{
        int opt;

        /* getopt names the program by argv[0]: from a build tree, libtool's .libs/ path */
        argv[0] = (char *) "ipcctl";
        while ((opt = getopt_long(argc, argv, "h", ctl_options, NULL)) >= 0) {
                switch (opt) {
                case OPT_ADDRESS:
                        if (format_check_address("ipcctl", optarg) < 0)
                                return EXIT_USAGE;
                        c->address = optarg;
                        c->system = false;
                        break;
                case OPT_SESSION:
                        c->address = NULL;
                        c->system = false;
                        break;
                case OPT_SYSTEM:
                        c->address = NULL;
                        c->system = true;
                        break;
                case OPT_TIMEOUT:
                        if (parse_timeout(optarg, &c->timeout_usec) < 0)
                                return ctl_usage_error("invalid timeout '%s' (seconds expected)", optarg);
                        c->timeout_set = true;
                        break;
                case OPT_JSON:
                        c->json = true;
                        break;
                case OPT_DESTINATION:
                        c->destination = optarg;
                        break;
                case OPT_NO_REPLY:
                        c->no_reply = true;
                        break;
                case OPT_NO_AUTO_START:
                        c->no_auto_start = true;
                        break;
                case OPT_NO_CHECK:
                        c->no_check = true;
                        break;
                case OPT_FULL:
                        c->full = true;
                        break;
                case OPT_FORMAT:
                        c->format = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                case OPT_VERSION:
                        printf("ipcctl %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        fputs("(see ipcctl --help)\n", stderr);
                        return EXIT_USAGE;
                }
        }
        return PARSE_RUN;
}

/* The options that belong to some commands only. Returns 0 or the usage exit status. */
static int check_command_options(const struct ctl *c, const char *command)
{
        bool call = strcmp(command, "call") == 0, emit = strcmp(command, "emit") == 0;

        if (c->destination && !emit)
                return ctl_usage_error("--destination is an option of emit only");
        if ((c->no_reply || c->no_auto_start) && !call)
                return ctl_usage_error("--no-reply and --no-auto-start are options of call only");
        if (c->no_check && !call && !emit && strcmp(command, "set-property") != 0)
                return ctl_usage_error("--no-check is an option of call, emit and set-property only");
        if (c->format && strcmp(command, "metrics") != 0)
                return ctl_usage_error("--format is an option of metrics only");
        return 0;
}

int main(int argc, char **argv)
{
        static const struct {
                const char *name;
                int (*run)(struct ctl *c, int argc, char **argv);
        } commands[] = {
                {"list", cmd_list},
                {"call", cmd_call},
                {"emit", cmd_emit},
                {"status", cmd_status},
                {"introspect", cmd_introspect},
                {"tree", cmd_tree},
                {"get-property", cmd_get_property},
                {"set-property", cmd_set_property},
                {"wait", cmd_wait},
                {"stats", cmd_stats},
                {"metrics", cmd_metrics},
        };
        struct ctl c = {};
        const char *command;
        int r;

        r = ctl_parse_options(argc, argv, &c);
        if (r != PARSE_RUN)
                return r;
        if (optind >= argc)
                return ctl_usage_error("missing command");
        command = argv[optind];
        r = check_command_options(&c, command);
        if (r != 0)
                return r;
        r = -1; /* stays so when no command has that name */
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(commands[i].name, command) == 0)
                        r = commands[i].run(&c, argc - optind, argv + optind);
        if (r < 0)
                r = ctl_usage_error("unknown command '%s'", command);
        ipcbus_unref(c.bus);
        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "ipcctl: cannot write the output: %s\n", strerror(errno));
                return EXIT_FAILURE;
        }
        return r;
}
