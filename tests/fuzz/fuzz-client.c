/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: what libipcbus does with what peers send it: typed
 * reads of a received body (libclient/reader.c, value.c), the check of a
 * body against a description (libclient/iface-check.c), and the parsing
 * of description files (libclient/iface.c). It links the library's
 * objects, so that its internal functions are reachable; a message is
 * wrapped without a connection (message_new with a NULL bus).
 *
 * Input layout:
 *   byte 0      bit 0: the mode
 *   mode 0 (a description): the rest, cut at NUL bytes: a description's
 *               text, then up to MAX_BODIES bodies (JSON text or not)
 *   mode 1 (a body): bits 1-2: the frame's descriptors (0-3);
 *               the rest: the body of a received signal
 *
 * A description that parses has a canonical text that parses again to the
 * same text; every body is checked against every method's arguments and
 * results and every signal's arguments (ipcbus_interface_check, and
 * iface_check_args strictly and leniently: what passes strictly passes
 * leniently), every property's type checks its "value".
 *
 * A body the codec takes (msg_build) the reader must take; every member and
 * element is then read as every letter of the format table (each read
 * succeeds exactly when iface_check_value accepts the value as the letter's
 * type, and a read of an integer agrees with the codec's jscan about its
 * range), every container entered and left, then a fixed set of formats is
 * read (every letter, optional, nested structs, '%' names). The body is also
 * checked against a fixed description with every type; when it fits, the
 * format that says the same must read it whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ipcbus/ipcbus.h>

#include "libclient/bus-internal.h"
#include "libclient/iface.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/jbuf.h"
#include "protocol/jscan.h"
#include "protocol/message.h"
#include "protocol/names.h"
#include "protocol/proto-error.h"
#include "tests/fuzz/fuzz-util.h"

#define MAX_BODIES 8
#define MAX_FDS 3

/* The letters a read can store: all but 'n'. */
static const char letters[] = "bixutdsyhv";

/* A fixed description with every type, nested: the body mode checks bodies against it. */
static const char fixed_description[] =
        "{\"interface\":\"org.fuzz.Client\",\"methods\":{"
        "\"All\":{\"in\":{\"b\":\"bool\",\"i\":\"int\",\"u\":\"uint\",\"d\":\"double\",\"s\":\"string\","
        "\"y\":\"bytes\",\"h\":\"fd\",\"v\":\"any\",\"o\":{\"optional\":\"uint\"},"
        "\"st\":{\"struct\":{\"a\":\"int\",\"o\":{\"optional\":\"string\"},\"n\":{\"struct\":{\"x\":{\"optional\":"
        "\"bytes\"}}}}},"
        "\"arr\":{\"array\":{\"struct\":{\"id\":\"uint\",\"text\":\"string\"}}},"
        "\"mp\":{\"map\":{\"array\":\"int\"}}}},"
        "\"Opt\":{\"in\":{\"b\":{\"optional\":\"bool\"},\"arr\":{\"optional\":{\"array\":{\"optional\":\"uint\"}}},"
        "\"deep\":{\"optional\":{\"array\":{\"map\":{\"optional\":{\"struct\":{\"v\":\"any\",\"f\":{\"optional\":"
        "\"fd\"}}}}}}}}}},"
        "\"signals\":{\"S\":{\"args\":{}}}}";
/* What All's arguments say, as a format (arr and mp are read by entering them). */
#define FIXED_FORMAT "b:b i:x u:t d:d s:s y:y h:h v:v o:?t st:{a:x o:?s n:{x:?y}}"

static ipcbus_interface *fixed;
static const struct iface_args *fixed_all, *fixed_opt;
static int devnull = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        const struct iface_method *all, *opt;
        int r;

        (void) argc;
        (void) argv;
        r = ipcbus_interface_parse(fixed_description, &fixed);
        fuzz_assert(r == 0, "the fixed description: %s", ipcbus_last_error());
        all = iface_find_method(fixed, "All");
        opt = iface_find_method(fixed, "Opt");
        fuzz_assert(all && opt, "the fixed description lost a method");
        fixed_all = &all->in;
        fixed_opt = &opt->in;
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        fuzz_assert(devnull >= 0, "/dev/null: %s", strerror(errno));
        return 0;
}

/* ---- descriptions ---- */

static void format_args(const struct iface_args *a)
{
        struct jbuf b;

        jbuf_init(&b);
        for (size_t k = 0; k < a->n; k++)
                iface_type_format(a->fields[k].type, &b);
        fuzz_assert(!b.failed, "iface_type_format ran out of memory");
        jbuf_deinit(&b);
}

/* args against one body (parsed; NULL: none), both ways. */
static void check_both(const struct iface_args *args, struct json_object *body, unsigned n_fds)
{
        char err[256] = "";
        int strict, lenient;

        strict = iface_check_args(args, body, true, n_fds, err, sizeof(err));
        fuzz_assert(strict == 0 || (strict == -EBADMSG && err[0]), "strict check: %d '%s'", strict, err);
        err[0] = '\0';
        lenient = iface_check_args(args, body, false, n_fds, err, sizeof(err));
        fuzz_assert(lenient == 0 || (lenient == -EBADMSG && err[0]), "lenient check: %d '%s'", lenient, err);
        fuzz_assert(strict != 0 || lenient == 0, "strict accepts, lenient refuses: %s", err);
        /* no room for the sentence is no fault */
        fuzz_assert(iface_check_args(args, body, false, n_fds, NULL, 0) == lenient, "the check depends on err");
}

static void check_text(const ipcbus_interface *i, ipcbus_message_type type, const char *member, const char *body)
{
        ipcbus_error e = IPCBUS_ERROR_NULL;
        int r = ipcbus_interface_check(i, type, member, body, &e);

        fuzz_assert(r == 0 || r == -EBADMSG || r == -EINVAL, "ipcbus_interface_check: %d", r);
        fuzz_assert((r == -EBADMSG) == ipcbus_error_is_set(&e), "an error set for %d", r);
        fuzz_assert(r != -EBADMSG || ipcbus_error_has_name(&e, IPCBUS_ERROR_INVALID_ARGS), "not InvalidArgs");
        /* a body that is not JSON is the only -EINVAL */
        fuzz_assert(r != -EINVAL || (body && *body), "-EINVAL without a body");
        ipcbus_error_free(&e);
}

static void fuzz_description(const char *text, const char *const *bodies, size_t n_bodies)
{
        ipcbus_interface *i = NULL, *again = NULL;
        struct json_object *parsed[MAX_BODIES + 1] = {NULL};
        const char *json;
        int r;

        r = ipcbus_interface_parse(text, &i);
        fuzz_assert(r == 0 || r == -EINVAL, "ipcbus_interface_parse: %d", r);
        if (r < 0) {
                fuzz_assert(!i, "*ret written on failure");
                fuzz_assert(ipcbus_last_error() && *ipcbus_last_error(), "no sentence");
                return;
        }
        fuzz_assert(names_is_interface(ipcbus_interface_get_name(i)), "name '%s'", ipcbus_interface_get_name(i));

        /* the canonical text is a description of the same interface, and canonical */
        json = ipcbus_interface_get_json(i);
        fuzz_assert(json, "no canonical text");
        r = ipcbus_interface_parse(json, &again);
        fuzz_assert(r == 0, "the canonical text '%s' does not parse: %s", json, ipcbus_last_error());
        fuzz_assert(strcmp(ipcbus_interface_get_json(again), json) == 0, "canonical text not stable: '%s' '%s'", json,
                    ipcbus_interface_get_json(again));
        fuzz_assert(again->n_methods == i->n_methods && again->n_signals == i->n_signals &&
                            again->n_properties == i->n_properties && again->deprecated == i->deprecated,
                    "the canonical text describes something else");
        ipcbus_interface_unref(again);

        for (size_t b = 0; b < n_bodies; b++) {
                struct json_tokener *tok = json_tokener_new_ex(IPCBUS_DEPTH_MAX);

                fuzz_assert(tok, "out of memory");
                parsed[b] = json_tokener_parse_ex(tok, bodies[b], (int) strlen(bodies[b]));
                if (json_tokener_get_error(tok) != json_tokener_success ||
                    !json_object_is_type(parsed[b], json_type_object)) {
                        json_object_put(parsed[b]);
                        parsed[b] = NULL;
                }
                json_tokener_free(tok);
        }

        for (size_t k = 0; k < i->n_methods; k++) {
                const struct iface_method *m = &i->methods[k];

                fuzz_assert(iface_find_method(i, m->name) != NULL, "method %s not found", m->name);
                format_args(&m->in);
                format_args(&m->out);
                check_text(i, IPCBUS_MESSAGE_CALL, m->name, NULL);
                check_text(i, IPCBUS_MESSAGE_RETURN, m->name, "");
                for (size_t b = 0; b < n_bodies; b++) {
                        check_text(i, IPCBUS_MESSAGE_CALL, m->name, bodies[b]);
                        check_text(i, IPCBUS_MESSAGE_RETURN, m->name, bodies[b]);
                }
                for (size_t b = 0; b <= n_bodies; b++) {
                        check_both(&m->in, parsed[b], (unsigned) b);
                        check_both(&m->out, parsed[b], (unsigned) b);
                }
        }
        for (size_t k = 0; k < i->n_signals; k++) {
                const struct iface_signal *s = &i->signals[k];

                fuzz_assert(iface_find_signal(i, s->name) != NULL, "signal %s not found", s->name);
                format_args(&s->args);
                for (size_t b = 0; b < n_bodies; b++)
                        check_text(i, IPCBUS_MESSAGE_SIGNAL, s->name, bodies[b]);
                for (size_t b = 0; b <= n_bodies; b++)
                        check_both(&s->args, parsed[b], 1);
        }
        for (size_t k = 0; k < i->n_properties; k++) {
                const struct iface_property *p = &i->properties[k];
                struct iface_args one = {.fields = &(struct iface_field){.name = p->name, .type = p->type}, .n = 1};

                fuzz_assert(iface_find_property(i, p->name) != NULL, "property %s not found", p->name);
                format_args(&one);
                for (size_t b = 0; b < n_bodies; b++) {
                        char err[128];
                        int r1;

                        if (!parsed[b])
                                continue;
                        r1 = iface_check_value(p->type, json_object_object_get(parsed[b], "value"), "value", false, 2,
                                               err, sizeof(err));
                        fuzz_assert(r1 == 0 || r1 == -EBADMSG, "iface_check_value: %d", r1);
                }
        }
        r = ipcbus_interface_check(i, IPCBUS_MESSAGE_CALL, "NoSuchMember_", "{}", NULL);
        fuzz_assert(r == -ENOENT || iface_find_method(i, "NoSuchMember_"), "an unknown method: %d", r);
        r = ipcbus_interface_check(i, IPCBUS_MESSAGE_ERROR, "M", "{}", NULL);
        fuzz_assert(r == -EINVAL, "an error's body checked: %d", r);

        for (size_t b = 0; b < n_bodies; b++)
                json_object_put(parsed[b]);
        fuzz_assert(ipcbus_interface_ref(i) == i, "ref");
        ipcbus_interface_unref(i);
        ipcbus_interface_unref(i);
}

/* ---- typed reads ---- */

/* The description type a letter reads, for the differential check (NULL: none comparable). */
static const struct iface_type *letter_type(char letter)
{
        static const struct iface_type types[] = {
                {.kind = IFACE_BOOL},   {.kind = IFACE_INT},   {.kind = IFACE_UINT},
                {.kind = IFACE_DOUBLE}, {.kind = IFACE_STRING}, {.kind = IFACE_BYTES},
                {.kind = IFACE_FD},     {.kind = IFACE_ANY},
        };

        switch (letter) {
        case 'b':
                return &types[0];
        case 'x':
                return &types[1];
        case 't':
                return &types[2];
        case 'd':
                return &types[3];
        case 's':
                return &types[4];
        case 'y':
                return &types[5];
        case 'h':
                return &types[6];
        case 'v':
                return &types[7];
        default:
                return NULL;
        }
}

/* What one read may store, whatever its letter. */
struct out {
        bool b;
        int i;
        int64_t x;
        unsigned u;
        uint64_t t;
        double d;
        const char *s;
        const void *y;
        size_t y_len;
        int h;
        const char *v;
};

/* Read one value as `letter` with the format `fmt` ("%:L", "%:?L", "L", "?L"; name for '%'). */
static int read_letter(ipcbus_message *m, const char *fmt, const char *name, char letter, struct out *o)
{
        void *p;

        switch (letter) {
        case 'b':
                p = &o->b;
                break;
        case 'i':
                p = &o->i;
                break;
        case 'x':
                p = &o->x;
                break;
        case 'u':
                p = &o->u;
                break;
        case 't':
                p = &o->t;
                break;
        case 'd':
                p = &o->d;
                break;
        case 's':
                p = &o->s;
                break;
        case 'h':
                p = &o->h;
                break;
        case 'v':
                p = &o->v;
                break;
        case 'y':
                return name ? ipcbus_message_read(m, fmt, name, &o->y, &o->y_len)
                            : ipcbus_message_read(m, fmt, &o->y, &o->y_len);
        default:
                abort();
        }
        return name ? ipcbus_message_read(m, fmt, name, p) : ipcbus_message_read(m, fmt, p);
}

/* The letter's read result against the checker's judgement of the same value v. */
static void compare_read(char letter, struct json_object *v, int r, const struct out *o, unsigned n_fds)
{
        const struct iface_type *t = letter_type(letter);
        char err[64];
        int c;

        fuzz_assert(r == 1 || r == -EBADMSG || (letter == 'h' && r == -EBADF), "read '%c': %d (%s)", letter, r,
                    ipcbus_last_error());
        if (!t)
                return;
        c = iface_check_value(t, v, "value", false, n_fds, err, sizeof(err));
        if (letter == 'h')
                /* the reader also takes an index written as a string */
                fuzz_assert(c != 0 || r == 1, "'h': the checker takes %s, the reader refuses: %s",
                            json_object_to_json_string(v), ipcbus_last_error());
        else
                fuzz_assert((c == 0) == (r == 1), "'%c': the checker says %d (%s), the reader %d (%s) for %s", letter,
                            c, c ? err : "", r, r < 0 ? ipcbus_last_error() : "", json_object_to_json_string(v));
        if (r != 1)
                return;
        switch (letter) {
        case 's':
                fuzz_assert(strlen(o->s) == (size_t) json_object_get_string_len(v) &&
                                    strcmp(o->s, json_object_get_string(v)) == 0,
                            "'s' read another string");
                break;
        case 'b':
                fuzz_assert(o->b == json_object_get_boolean(v), "'b' read another value");
                break;
        case 'y': {
                size_t len = (size_t) json_object_get_string_len(v);

                fuzz_assert(o->y_len <= len / 4 * 3 && o->y_len + 2 >= len / 4 * 3, "'y': %zu bytes from %zu", o->y_len,
                            len);
                break;
        }
        case 'v':
                /* the value's text as json-c prints the same value */
                fuzz_assert(o->v && strcmp(o->v, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                                                         JSON_C_TO_STRING_NOSLASHESCAPE)) ==
                                            0,
                            "'v' read %s for %s", o->v ? o->v : "nothing", json_object_to_json_string(v));
                break;
        default:
                break;
        }
}

/* Whether the decimal integer literal raw (digits, optional '-') is within [-2^63, 2^64-1]. */
static bool literal_in_64_bits(const char *raw, size_t len)
{
        bool negative = len > 0 && raw[0] == '-';
        uint64_t n = 0;

        for (size_t k = negative; k < len; k++) {
                if (n > (UINT64_MAX - (uint64_t) (raw[k] - '0')) / 10)
                        return false;
                n = n * 10 + (uint64_t) (raw[k] - '0');
        }
        return !negative || n <= (uint64_t) INT64_MAX + 1;
}

/*
 * The codec's reading of the top-level integers against the reader's: a
 * member written as a JSON integer reads as 'x' exactly when jscan finds it
 * in the int64 range (and to the same value), and as 't' only when it is
 * within 64 bits.
 */
static void compare_integers(ipcbus_message *m, const char *body, size_t len)
{
        struct jscan_member mem, later;
        struct jscan_iter it, rest;
        char key[256];

        if (jscan_object_begin(&it, body, len) != 0)
                return;
        while (jscan_object_next(&it, &mem) > 0) {
                struct out o = {0};
                bool last = true, integer = mem.value_len > 0;
                int64_t v = 0;
                int j, r;

                if (mem.kind != JSCAN_NUMBER || mem.key_len >= sizeof(key))
                        continue;
                jscan_string_decode(mem.key, mem.key_len, key);
                rest = it;
                while (last && jscan_object_next(&rest, &later) > 0)
                        last = !jscan_key_equal(&later, key); /* json-c keeps the last of a key */
                if (!last)
                        continue;
                for (size_t k = 0; k < mem.value_len; k++)
                        integer = integer && ((mem.value[k] >= '0' && mem.value[k] <= '9') || (k == 0 && mem.value[k] == '-'));
                if (!integer)
                        continue;
                j = jscan_number_to_int64(mem.value, mem.value_len, INT64_MIN, INT64_MAX, &v);
                r = read_letter(m, "%:x", key, 'x', &o);
                fuzz_assert(j == 0 ? r == 1 && o.x == v : r < 0, "'%s': %.*s, jscan %d, the reader %d (%" PRId64 ")",
                            key, (int) mem.value_len, mem.value, j, r, o.x);
                r = read_letter(m, "%:t", key, 't', &o);
                if (!literal_in_64_bits(mem.value, mem.value_len))
                        fuzz_assert(r < 0, "'%s': %.*s read as uint %" PRIu64, key, (int) mem.value_len, mem.value,
                                    o.t);
        }
}

static void walk(ipcbus_message *m, struct json_object *container, unsigned n_fds, unsigned depth);

/* Every letter on member `key` (value v) of the current object, then into it. */
static void walk_member(ipcbus_message *m, const char *key, struct json_object *v, unsigned n_fds, unsigned depth)
{
        struct out o;
        int r;

        for (const char *l = letters; *l; l++) {
                char fmt[8] = {'%', ':', *l, '\0'}, opt[8] = {'%', ':', '?', *l, '\0'};

                memset(&o, 0, sizeof(o));
                r = read_letter(m, fmt, key, *l, &o);
                compare_read(*l, v, r, &o, n_fds);
                r = read_letter(m, opt, key, *l, &o);
                if (!v)
                        fuzz_assert(r == 1, "'%s' optional and null: %d", opt, r);
                else
                        compare_read(*l, v, r, &o, n_fds);
        }

        /* as a property's value (the setter's reading) */
        r = message_enter_value(m, key);
        fuzz_assert(r == 0, "message_enter_value: %d", r);
        r = read_letter(m, "?t", NULL, 't', &o);
        fuzz_assert(r == 1 || r == -EBADMSG, "a value as ?t: %d", r);
        r = read_letter(m, "v", NULL, 'v', &o);
        fuzz_assert(r == 1, "a value as v: %d", r);
        fuzz_assert(ipcbus_message_exit(m) == 0, "exit a value");

        r = ipcbus_message_enter(m, key);
        if (json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_array)) {
                fuzz_assert(r == 1, "enter '%s': %d (%s)", key, r, ipcbus_last_error());
                walk(m, v, n_fds, depth + 1);
                fuzz_assert(ipcbus_message_exit(m) == 0, "exit '%s'", key);
        } else
                fuzz_assert(r == (v ? -EBADMSG : -ENXIO), "enter a %s: %d", json_object_to_json_string(v), r);
}

/* Read every member or element of the container just entered. */
static void walk(ipcbus_message *m, struct json_object *container, unsigned n_fds, unsigned depth)
{
        struct out o;
        int r;

        fuzz_assert(depth <= IPCBUS_DEPTH_MAX, "deeper than the protocol allows");
        if (json_object_is_type(container, json_type_object)) {
                json_object_object_foreach(container, key, v) walk_member(m, key, v, n_fds, depth);
                fuzz_assert(ipcbus_message_enter(m, NULL) == -EINVAL, "enter without a name in an object");
                return;
        }
        for (size_t k = 0, n = json_object_array_length(container); k < n; k++) {
                struct json_object *v = json_object_array_get_idx(container, k);
                bool done = false;

                if (json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_array)) {
                        r = ipcbus_message_enter(m, NULL);
                        fuzz_assert(r == 1, "enter element %zu: %d (%s)", k, r, ipcbus_last_error());
                        walk(m, v, n_fds, depth + 1);
                        fuzz_assert(ipcbus_message_exit(m) == 0, "exit element %zu", k);
                        continue;
                }
                fuzz_assert(ipcbus_message_enter(m, "x") == -EINVAL, "enter with a name in an array");
                /* a failed read leaves the cursor: try the letters until one reads (v always does) */
                for (const char *l = letters; *l && !done; l++) {
                        char fmt[2] = {*l, '\0'};

                        memset(&o, 0, sizeof(o));
                        r = read_letter(m, fmt, NULL, *l, &o);
                        compare_read(*l, v, r, &o, n_fds);
                        done = r == 1;
                }
                fuzz_assert(done, "element %zu read as nothing", k);
        }
        r = read_letter(m, "v", NULL, 'v', &o);
        fuzz_assert(r == 0, "read past the end of an array: %d", r);
        r = ipcbus_message_enter(m, NULL);
        fuzz_assert(r == 0, "enter past the end of an array: %d", r);
}

/* The fixed formats: every letter, optional, nested, '%' names; and the arrays and maps. */
static void read_formats(ipcbus_message *m, struct json_object *tree)
{
        struct out o[4];
        struct json_object *v;
        int r;

        fuzz_assert(ipcbus_message_rewind(m) == 0, "rewind");
        memset(o, 0, sizeof(o));
        r = ipcbus_message_read(m, "b:b i:i x:x u:u t:t d:d s:s y:y h:h v:v", &o[0].b, &o[0].i, &o[0].x, &o[0].u,
                                &o[0].t, &o[0].d, &o[0].s, &o[0].y, &o[0].y_len, &o[0].h, &o[0].v);
        fuzz_assert(r == 1 || r == -EBADMSG || r == -EBADF, "all letters: %d", r);
        r = ipcbus_message_read(m, "b:?b i:?i x:?x u:?u t:?t d:?d s:?s y:?y h:?h v:?v", &o[1].b, &o[1].i, &o[1].x,
                                &o[1].u, &o[1].t, &o[1].d, &o[1].s, &o[1].y, &o[1].y_len, &o[1].h, &o[1].v);
        fuzz_assert(r == 1 || r == -EBADMSG || r == -EBADF, "all letters, optional: %d", r);
        r = ipcbus_message_read(m, "a:{b:b i:?i s:?s y:?y a:?{x:x v:v}}", &o[0].b, &o[0].i, &o[0].s, &o[0].y,
                                &o[0].y_len, &o[0].x, &o[0].v);
        fuzz_assert(r == 1 || r == -EBADMSG, "a struct: %d", r);
        r = ipcbus_message_read(m, "a:?{a:?{a:?{a:?t}}} , b:?{}", &o[0].t);
        fuzz_assert(r == 1 || r == -EBADMSG, "nested optional structs: %d", r);
        r = ipcbus_message_read(m, "%:u %:?{%:s %:?d}", "a", &o[0].u, "b", "c", &o[0].s, "d", &o[0].d);
        fuzz_assert(r == 1 || r == -EBADMSG, "'%%' names: %d", r);
        r = ipcbus_message_read(m, "a:n", &o[0].v);
        fuzz_assert(r == -EINVAL || r == -EBADMSG, "'n' read: %d", r);
        r = ipcbus_message_read(m, "a:{b:b", &o[0].b);
        fuzz_assert(r == -EINVAL || r == -EBADMSG, "an unbalanced format: %d", r);

        /* arrays of structs and maps of arrays, by entering them */
        for (const char *const *name = (const char *const[]){"arr", "a", "notes", NULL}; *name; name++) {
                r = ipcbus_message_enter(m, *name);
                if (r != 1)
                        continue;
                v = json_object_object_get(tree, *name);
                if (json_object_is_type(v, json_type_array)) {
                        for (size_t k = 0; k <= json_object_array_length(v); k++) {
                                r = ipcbus_message_read(m, "{id:t text:?s}", &o[2].t, &o[2].s);
                                fuzz_assert(r == 1 || r == -EBADMSG || (r == 0 && k == json_object_array_length(v)),
                                            "an array of structs: %d at %zu", r, k);
                                if (r != 1)
                                        break;
                        }
                } else {
                        json_object_object_foreach(v, key, member)
                        {
                                (void) member;
                                if (ipcbus_message_enter(m, key) != 1)
                                        continue;
                                while ((r = ipcbus_message_read(m, "x", &o[3].x)) == 1)
                                        ;
                                /* -EINVAL: a member that is an object, where "x" lacks a name */
                                fuzz_assert(r == 0 || r == -EBADMSG || r == -EINVAL, "a map of arrays: %d", r);
                                fuzz_assert(ipcbus_message_exit(m) == 0, "exit a map's member");
                        }
                }
                fuzz_assert(ipcbus_message_exit(m) == 0, "exit '%s'", *name);
        }
        fuzz_assert(ipcbus_message_exit(m) == -EINVAL, "exit at the top");
        fuzz_assert(ipcbus_message_rewind(m) == 0, "rewind");
}

/* The body against the fixed description; what fits All must read whole with FIXED_FORMAT. */
static void check_fixed(ipcbus_message *m, struct json_object *tree, unsigned n_fds)
{
        struct out o = {0};
        struct json_object *v;
        int x;
        int r;

        check_both(fixed_opt, tree, n_fds);
        check_both(fixed_all, tree, n_fds);
        if (iface_check_args(fixed_all, tree, false, n_fds, NULL, 0) != 0)
                return;
        fuzz_assert(ipcbus_message_rewind(m) == 0, "rewind");
        r = ipcbus_message_read(m, FIXED_FORMAT, &o.b, &o.x, &o.t, &o.d, &o.s, &o.y, &o.y_len, &o.h, &o.v, &o.t, &o.x,
                                &o.s, &o.y, &o.y_len);
        fuzz_assert(r == 1, "the body fits All, not " FIXED_FORMAT ": %d (%s)", r, ipcbus_last_error());
        fuzz_assert(ipcbus_message_enter(m, "arr") == 1, "enter arr");
        while ((r = ipcbus_message_read(m, "{id:t text:s}", &o.t, &o.s)) == 1)
                ;
        fuzz_assert(r == 0, "arr fits, reads %d (%s)", r, ipcbus_last_error());
        fuzz_assert(ipcbus_message_exit(m) == 0, "exit arr");
        fuzz_assert(ipcbus_message_enter(m, "mp") == 1, "enter mp");
        v = json_object_object_get(tree, "mp");
        json_object_object_foreach(v, key, member)
        {
                (void) member;
                fuzz_assert(ipcbus_message_enter(m, key) == 1, "enter mp.%s", key);
                while ((r = ipcbus_message_read(m, "x", &o.x)) == 1)
                        ;
                fuzz_assert(r == 0, "mp.%s fits, reads %d (%s)", key, r, ipcbus_last_error());
                fuzz_assert(ipcbus_message_exit(m) == 0, "exit mp.%s", key);
        }
        fuzz_assert(ipcbus_message_exit(m) == 0, "exit mp");
        x = iface_check_args(fixed_all, tree, false, n_fds, NULL, 0);
        fuzz_assert(x == 0, "a second check differs");
}

static void fuzz_body(const char *body, size_t len, unsigned n_fds)
{
        struct msg_header h;
        struct msg *msg = NULL;
        ipcbus_message *m;
        struct json_object *tree = NULL, *again = NULL;
        int fds[MAX_FDS];
        int r;

        for (unsigned k = 0; k < n_fds; k++) {
                fds[k] = dup(devnull);
                fuzz_assert(fds[k] >= 0, "dup: %s", strerror(errno));
        }
        msg_header_init(&h);
        h.type = MSG_SIGNAL;
        h.serial = 1;
        h.path = "/org/fuzz";
        h.interface = "org.fuzz.Client";
        h.member = "S";
        r = msg_build_fds(&h, body, len, fds, n_fds, 0, &msg);
        fuzz_assert(r >= 0, "msg_build_fds: %d", r);
        if (r > 0) {
                for (unsigned k = 0; k < n_fds; k++)
                        close(fds[k]);
                return;
        }
        m = message_new(NULL, msg);
        msg_unref(msg);
        fuzz_assert(m, "out of memory");
        fuzz_assert(ipcbus_message_get_n_fds(m) == n_fds, "descriptors lost");

        /* what the codec takes, the reader takes */
        r = ipcbus_message_get_json(m, &tree);
        fuzz_assert(r == 0, "a body the codec takes, the reader refuses: %d (%s)", r, ipcbus_last_error());
        fuzz_assert(ipcbus_message_get_json(m, &again) == 0 && again == tree, "a second get_json differs");
        json_object_put(again);

        walk(m, tree, n_fds, 1);
        fuzz_assert(ipcbus_message_exit(m) == -EINVAL, "the walk left a container open");
        compare_integers(m, body, len);
        read_formats(m, tree);
        check_fixed(m, tree, n_fds);

        json_object_put(tree);
        ipcbus_message_unref(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text;

        if (size < 1 || size > 1024 * 1024)
                return 0;
        text = malloc(size);
        fuzz_assert(text, "out of memory");
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        if ((data[0] & 1) == 0) {
                const char *bodies[MAX_BODIES];
                size_t n_bodies = 0;

                for (size_t off = strlen(text) + 1; off < size - 1 && n_bodies < MAX_BODIES; off += strlen(text + off) + 1)
                        bodies[n_bodies++] = text + off;
                fuzz_description(text, bodies, n_bodies);
        } else {
                fuzz_body(text, size - 1, (data[0] >> 1) & 3u);
        }
        free(text);
        return 0;
}
