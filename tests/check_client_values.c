/* SPDX-License-Identifier: MIT */
/*
 * Typed bodies through libipcbus and a real ipcbusd: every format letter
 * appended by one connection and read by another, and back in the reply;
 * inline structs, arrays and maps (open/close, enter/exit), optional members,
 * integers beyond 2^53 (strings on the wire, numbers accepted), bytes, and
 * the errors an application sees, with ipcbus_last_error()'s sentence.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "protocol/jbuf.h"
#include "tests/testbus.h"

#define PATH "/org/example/Values"
#define IFACE "org.example.Values"
#define BIG ((1ull << 53) + 1)

/* Two connections: `caller` calls methods that `service` exports. */
struct pair {
        ipcbus_bus *caller;
        ipcbus_bus *service;
        ipcbus_bus *buses[3];
        ipcbus_slot *slot;
};

#define LETTERS "flag:b small:i big:x count:u huge:t ratio:d text:s data:y any:v"

struct letters {
        bool flag;
        int small;
        int64_t big;
        unsigned count;
        uint64_t huge;
        double ratio;
        const char *text;
        const void *data;
        size_t data_len;
        const char *any;
};

static void letters_read(ipcbus_message *m, struct letters *l)
{
        int r = ipcbus_message_read(m, LETTERS, &l->flag, &l->small, &l->big, &l->count, &l->huge, &l->ratio, &l->text,
                                    &l->data, &l->data_len, &l->any);

        ck_assert_msg(r == 1, "read: %d (%s)", r, ipcbus_last_error());
}

static void letters_check(const struct letters *l)
{
        ck_assert(l->flag);
        ck_assert_int_eq(l->small, -42);
        ck_assert_int_eq(l->big, INT64_MIN);
        ck_assert_uint_eq(l->count, UINT32_MAX);
        ck_assert_uint_eq(l->huge, UINT64_MAX);
        ck_assert_double_eq(l->ratio, 0.1);
        ck_assert_str_eq(l->text, "héllo \"quoted\" \\ /");
        ck_assert_uint_eq(l->data_len, 3);
        ck_assert_mem_eq(l->data, "\x00\xff\x10", 3);
        ck_assert_str_eq(l->any, "{\"a\":[1,null,\"x/y\"]}");
}

/* Letters: read every letter of the call, answer with the same values (and a null). */
static int on_letters(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct letters l;

        (void) userdata;
        (void) ret_error;
        letters_read(m, &l);
        letters_check(&l);
        return ipcbus_reply_method(m, LETTERS " nothing:n", l.flag, l.small, l.big, l.count, l.huge, l.ratio, l.text,
                                   l.data, l.data_len, l.any);
}

/* Echo: answer with the call's body as it came. */
static int on_echo(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        (void) userdata;
        (void) ret_error;
        return ipcbus_reply(m, ipcbus_message_get_body(m, NULL));
}

static const ipcbus_method methods[] = {
        {"Letters", on_letters},
        {"Echo", on_echo},
        {NULL, NULL},
};

static void pair_init(struct pair *p)
{
        struct testbus *tb = testbus_current();

        p->caller = testbus_connect(tb);
        p->service = testbus_connect(tb);
        p->buses[0] = p->caller;
        p->buses[1] = p->service;
        p->buses[2] = NULL;
        ck_assert_int_eq(ipcbus_add_object(p->service, &p->slot, PATH, IFACE, methods, NULL), 0);
}

static void pair_deinit(struct pair *p)
{
        ipcbus_slot_unref(p->slot);
        ipcbus_unref(p->caller);
        ipcbus_unref(p->service);
}

static ipcbus_message *new_call(struct pair *p, const char *member)
{
        ipcbus_message *m = NULL;

        ck_assert_int_eq(
                ipcbus_message_new_call(p->caller, &m, ipcbus_get_unique_name(p->service), PATH, IFACE, member), 0);
        return m;
}

/* Call and assert a return came. */
static ipcbus_message *call_ok(struct pair *p, ipcbus_message *call)
{
        ipcbus_message *reply = testbus_call_pumped(p->buses, p->caller, call);

        ck_assert_msg(ipcbus_message_get_type(reply) == IPCBUS_MESSAGE_RETURN, "error %s: %s",
                      ipcbus_message_get_error_name(reply), ipcbus_message_get_arg(reply, "message"));
        return reply;
}

/* Echo a body given as JSON text; the reply to read. */
static ipcbus_message *echo(struct pair *p, const char *json)
{
        __attribute__((cleanup(ipcbus_message_unrefp))) ipcbus_message *call = new_call(p, "Echo");

        ck_assert_int_eq(ipcbus_message_set_body(call, json), 0);
        return call_ok(p, call);
}

START_TEST(test_letters)
{
        __attribute__((cleanup(ipcbus_message_unrefp))) ipcbus_message *call = NULL, *reply = NULL;
        struct pair p;
        struct letters l;
        const char *nothing = "untouched";

        pair_init(&p);
        call = new_call(&p, "Letters");
        ck_assert_int_eq(ipcbus_message_append(call, LETTERS, true, -42, INT64_MIN, UINT32_MAX, UINT64_MAX, 0.1,
                                               "héllo \"quoted\" \\ /", "\x00\xff\x10", (size_t) 3,
                                               "{\"a\": [1, null, \"x/y\"]}"),
                         0);
        reply = call_ok(&p, call);
        letters_read(reply, &l);
        letters_check(&l);
        /* n wrote null; ?s leaves the output alone for it */
        ck_assert_int_eq(ipcbus_message_read(reply, "nothing:?s", &nothing), 1);
        ck_assert_str_eq(nothing, "untouched");
        ck_assert_ptr_nonnull(strstr(ipcbus_message_get_body(reply, NULL), "\"nothing\":null"));
        pair_deinit(&p);
}
END_TEST

START_TEST(test_containers)
{
        __attribute__((cleanup(ipcbus_message_unrefp))) ipcbus_message *call = NULL, *reply = NULL;
        struct pair p;
        double x = 0, y = 0;
        const char *text = NULL, *theme = NULL, *lang = NULL;
        uint64_t id = 0, sum = 0;
        unsigned n = 0, cell = 0;

        pair_init(&p);
        call = new_call(&p, "Echo");
        ck_assert_int_eq(ipcbus_message_append(call, "point:{x:d, y:d}", 1.5, -2.0), 0);
        ck_assert_int_eq(ipcbus_message_open(call, '[', "notes"), 0);
        for (uint64_t i = 1; i <= 3; i++)
                ck_assert_int_eq(ipcbus_message_append(call, "{id:t text:s}", i * 10, i == 2 ? "two" : "other"), 0);
        ck_assert_int_eq(ipcbus_message_close(call), 0);
        ck_assert_int_eq(ipcbus_message_open(call, '{', "settings"), 0);
        ck_assert_int_eq(ipcbus_message_append(call, "%:s %:s", "theme", "dark", "lang", "fr"), 0);
        ck_assert_int_eq(ipcbus_message_close(call), 0);
        ck_assert_int_eq(ipcbus_message_open(call, '[', "grid"), 0);
        for (unsigned row = 0; row < 2; row++) {
                ck_assert_int_eq(ipcbus_message_open(call, '[', NULL), 0);
                ck_assert_int_eq(ipcbus_message_append(call, "u u", row * 2, row * 2 + 1), 0);
                ck_assert_int_eq(ipcbus_message_close(call), 0);
        }
        ck_assert_int_eq(ipcbus_message_close(call), 0);
        reply = call_ok(&p, call);
        ck_assert_str_eq(ipcbus_message_get_body(reply, NULL),
                         "{\"point\":{\"x\":1.5,\"y\":-2},\"notes\":[{\"id\":10,\"text\":\"other\"},"
                         "{\"id\":20,\"text\":\"two\"},{\"id\":30,\"text\":\"other\"}],"
                         "\"settings\":{\"theme\":\"dark\",\"lang\":\"fr\"},\"grid\":[[0,1],[2,3]]}");

        /* read in another order than written */
        ck_assert_int_eq(ipcbus_message_enter(reply, "settings"), 1);
        ck_assert_int_eq(ipcbus_message_read(reply, "%:s lang:s", "theme", &theme, &lang), 1);
        ck_assert_int_eq(ipcbus_message_exit(reply), 0);
        ck_assert_str_eq(theme, "dark");
        ck_assert_str_eq(lang, "fr");
        ck_assert_int_eq(ipcbus_message_enter(reply, "notes"), 1);
        for (n = 0; ipcbus_message_read(reply, "{id:t text:s}", &id, &text) == 1; n++)
                sum += id;
        ck_assert_uint_eq(n, 3);
        ck_assert_uint_eq(sum, 60);
        ck_assert_int_eq(ipcbus_message_exit(reply), 0);
        ck_assert_int_eq(ipcbus_message_enter(reply, "grid"), 1);
        for (n = 0; ipcbus_message_enter(reply, NULL) == 1; n++) {
                while (ipcbus_message_read(reply, "u", &cell) == 1)
                        sum += cell;
                ck_assert_int_eq(ipcbus_message_exit(reply), 0);
        }
        ck_assert_uint_eq(n, 2);
        ck_assert_uint_eq(sum, 66);
        ck_assert_int_eq(ipcbus_message_rewind(reply), 0);
        ck_assert_int_eq(ipcbus_message_read(reply, "point:{x:d y:d}", &x, &y), 1);
        ck_assert_double_eq(x, 1.5);
        ck_assert_double_eq(y, -2.0);
        pair_deinit(&p);
}
END_TEST

START_TEST(test_optional)
{
        __attribute__((cleanup(ipcbus_message_unrefp))) ipcbus_message *call = NULL, *reply = NULL;
        struct pair p;
        unsigned a = 7, b = 7, c = 7;
        const char *s = "keep", *t = "keep";
        double x = 9, y = 9;

        pair_init(&p);
        call = new_call(&p, "Echo");
        ck_assert_int_eq(ipcbus_message_append(call, "a:?u s:?s t:?s", 1u, (const char *) NULL, "set"), 0);
        reply = call_ok(&p, call);
        ck_assert_str_eq(ipcbus_message_get_body(reply, NULL), "{\"a\":1,\"s\":null,\"t\":\"set\"}");
        /* absent b and null s leave their outputs; an absent optional struct skips its outputs */
        ck_assert_int_eq(
                ipcbus_message_read(reply, "b:?u s:?s pt:?{x:d y:d} a:?u t:?s c:?u", &b, &s, &x, &y, &a, &t, &c), 1);
        ck_assert_uint_eq(a, 1);
        ck_assert_uint_eq(b, 7);
        ck_assert_uint_eq(c, 7);
        ck_assert_str_eq(s, "keep");
        ck_assert_str_eq(t, "set");
        ck_assert_double_eq(x, 9);
        pair_deinit(&p);
}
END_TEST

START_TEST(test_big_integers)
{
        __attribute__((cleanup(ipcbus_message_unrefp))) ipcbus_message *call = NULL, *reply = NULL, *raw = NULL,
                                                                       *over = NULL;
        struct pair p;
        uint64_t u1 = 0, u2 = 0, u3 = 0;
        int64_t x1 = 0, x2 = 0, x3 = 0;
        double d1 = 0, d2 = 0;

        pair_init(&p);
        call = new_call(&p, "Echo");
        ck_assert_int_eq(ipcbus_message_append(call, "u:t n:x small:t edge:t", BIG, -(int64_t) BIG,
                                               (uint64_t) (BIG - 2), (uint64_t) (BIG - 1)),
                         0);
        reply = call_ok(&p, call);
        /* beyond 2^53 - 1 in magnitude: strings; up to it: numbers */
        ck_assert_str_eq(ipcbus_message_get_body(reply, NULL),
                         "{\"u\":\"9007199254740993\",\"n\":\"-9007199254740993\",\"small\":9007199254740991,"
                         "\"edge\":\"9007199254740992\"}");
        ck_assert_int_eq(ipcbus_message_read(reply, "u:t n:x", &u1, &x1), 1);
        ck_assert_uint_eq(u1, BIG);
        ck_assert_int_eq(x1, -(int64_t) BIG);

        /* a peer may send them as numbers */
        raw = echo(&p,
                   "{\"u\":9007199254740993,\"n\":-9007199254740993,\"max\":18446744073709551615,"
                   "\"min\":-9223372036854775808,\"smax\":\"18446744073709551615\",\"smin\":\"-9223372036854775808\"}");
        ck_assert_int_eq(ipcbus_message_read(raw, "u:t n:x max:t min:x", &u1, &x1, &u2, &x2), 1);
        ck_assert_uint_eq(u1, BIG);
        ck_assert_int_eq(x1, -(int64_t) BIG);
        ck_assert_uint_eq(u2, UINT64_MAX);
        ck_assert_int_eq(x2, INT64_MIN);
        ck_assert_int_eq(ipcbus_message_read(raw, "smax:t smin:x", &u3, &x3), 1);
        ck_assert_uint_eq(u3, UINT64_MAX);
        ck_assert_int_eq(x3, INT64_MIN);
        /* and none of these fits the other's range */
        ck_assert_int_eq(ipcbus_message_read(raw, "max:x", &x1), -EBADMSG);
        ck_assert_int_eq(ipcbus_message_read(raw, "n:t", &u1), -EBADMSG);
        ck_assert_str_eq(ipcbus_last_error(), "argument 'n': out of range for uint (64-bit)");

        /* numbers beyond 64 bits are of no integer type, not the nearest 64-bit value (json-c's reading) */
        over = echo(&p, "{\"o\":18446744073709551616,\"m\":-9223372036854775809}");
        ck_assert_int_eq(ipcbus_message_read(over, "o:t", &u1), -EBADMSG);
        ck_assert_str_eq(ipcbus_last_error(), "argument 'o': expected uint, got double");
        ck_assert_int_eq(ipcbus_message_read(over, "m:x", &x1), -EBADMSG);
        ck_assert_int_eq(ipcbus_message_read(over, "o:d m:d", &d1, &d2), 1);
        ck_assert_double_eq(d1, 18446744073709551616.0);
        ck_assert_double_eq(d2, -9223372036854775809.0);
        pair_deinit(&p);
}
END_TEST

START_TEST(test_bytes)
{
        __attribute__((cleanup(ipcbus_message_unrefp))) ipcbus_message *call = NULL, *reply = NULL;
        struct pair p;
        uint8_t all[256];
        const void *got = NULL, *none = NULL;
        size_t len = 0, none_len = 99;

        for (size_t i = 0; i < sizeof(all); i++)
                all[i] = (uint8_t) i;
        pair_init(&p);
        call = new_call(&p, "Echo");
        ck_assert_int_eq(ipcbus_message_append(call, "all:y empty:y one:y two:y", all, sizeof(all), "", (size_t) 0, "a",
                                               (size_t) 1, "ab", (size_t) 2),
                         0);
        reply = call_ok(&p, call);
        ck_assert_ptr_nonnull(strstr(ipcbus_message_get_body(reply, NULL), "\"one\":\"YQ==\",\"two\":\"YWI=\""));
        ck_assert_int_eq(ipcbus_message_read(reply, "all:y", &got, &len), 1);
        ck_assert_uint_eq(len, 256);
        ck_assert_mem_eq(got, all, 256);
        ck_assert_int_eq(ipcbus_message_read(reply, "empty:y", &none, &none_len), 1);
        ck_assert_uint_eq(none_len, 0);
        /* '/' written escaped, as some JSON writers do, decodes the same */
        ipcbus_message_unref(reply);
        reply = echo(&p, "{\"e\":\"\\/\\/\\/\\/\",\"f\":\"////\"}");
        ck_assert_int_eq(ipcbus_message_read(reply, "e:y", &got, &len), 1);
        ck_assert_uint_eq(len, 3);
        ck_assert_mem_eq(got, "\xff\xff\xff", 3);
        ck_assert_int_eq(ipcbus_message_read(reply, "f:y", &got, &len), 1);
        ck_assert_uint_eq(len, 3);
        ck_assert_mem_eq(got, "\xff\xff\xff", 3);
        pair_deinit(&p);
}
END_TEST

/* Read `format` (one uint, int or string output) from an echo of json: the result and the sentence. */
static int read_echo(struct pair *p, const char *json, const char *format)
{
        __attribute__((cleanup(ipcbus_message_unrefp))) ipcbus_message *m = echo(p, json);
        union {
                uint64_t t;
                int i;
                const char *s;
        } out;

        return ipcbus_message_read(m, format, &out);
}

/* An integer literal beyond 64 bits is the number it says, for a double. */
START_TEST(test_huge_literals)
{
        __attribute__((cleanup(ipcbus_message_unrefp))) ipcbus_message *m = NULL;
        struct pair p;
        double d = 0, e = 0, f = 0;
        uint64_t t = 0;
        const char *s = NULL;

        pair_init(&p);
        m = echo(&p, "{\"d\":100000000000000000000,\"e\":-1e400000000000000000000,\"s\":\"7 18446744073709551616\","
                     "\"f\":-100000000000000000000.5,\"t\":18446744073709551615}");
        ck_assert_int_eq(ipcbus_message_read(m, "d:d e:d f:d s:s t:t", &d, &e, &f, &s, &t), 1);
        ck_assert_double_eq(d, 1e20);
        ck_assert_double_eq(f, -100000000000000000000.5);
        ck_assert_str_eq(s, "7 18446744073709551616");
        ck_assert_uint_eq(t, UINT64_MAX);
        pair_deinit(&p);
}
END_TEST

START_TEST(test_read_errors)
{
        __attribute__((cleanup(ipcbus_message_unrefp))) ipcbus_message *m = NULL;
        struct pair p;
        uint64_t id = 0;
        const char *text = NULL;
        int n = 0;

        pair_init(&p);
        ck_assert_int_eq(read_echo(&p, "{\"n\":5000000000}", "n:i"), -EBADMSG);
        ck_assert_str_eq(ipcbus_last_error(), "argument 'n': out of range for int (32-bit)");
        ck_assert_int_eq(read_echo(&p, "{\"n\":-1}", "n:u"), -EBADMSG);
        ck_assert_str_eq(ipcbus_last_error(), "argument 'n': out of range for uint (32-bit)");
        ck_assert_int_eq(read_echo(&p, "{\"n\":3.0}", "n:t"), -EBADMSG);
        ck_assert_str_eq(ipcbus_last_error(), "argument 'n': expected uint, got double");
        ck_assert_int_eq(read_echo(&p, "{\"n\":\"12a\"}", "n:t"), -EBADMSG);
        ck_assert_str_eq(ipcbus_last_error(), "argument 'n': expected uint, got string");
        /* beyond 64 bits: never read as the nearest bound */
        ck_assert_int_eq(read_echo(&p, "{\"n\":18446744073709551616}", "n:t"), -EBADMSG);
        ck_assert_str_eq(ipcbus_last_error(), "argument 'n': expected uint, got double");
        ck_assert_int_eq(read_echo(&p, "{\"n\":-9223372036854775809}", "n:x"), -EBADMSG);
        ck_assert_int_eq(read_echo(&p, "{\"n\":[-99999999999999999999999]}", "n:v"), 1);
        ck_assert_int_eq(read_echo(&p, "{}", "id:t"), -EBADMSG);
        ck_assert_str_eq(ipcbus_last_error(), "argument 'id': missing (expected uint)");
        ck_assert_int_eq(read_echo(&p, "{\"b\":\"!!\"}", "b:y"), -EBADMSG);
        ck_assert_str_eq(ipcbus_last_error(), "argument 'b': not base64");
        ck_assert_int_eq(read_echo(&p, "{\"s\":null}", "s:s"), -EBADMSG);
        ck_assert_str_eq(ipcbus_last_error(), "argument 's': expected string, got null");

        m = echo(&p, "{\"notes\":[{\"id\":1,\"text\":\"a\"},{\"id\":2,\"text\":\"b\"},{\"id\":\"x\",\"text\":\"c\"}],"
                     "\"n\":1,\"p\":{\"q\":[true]}}");
        ck_assert_int_eq(ipcbus_message_enter(m, "notes"), 1);
        ck_assert_int_eq(ipcbus_message_read(m, "{id:t text:s}", &id, &text), 1);
        ck_assert_int_eq(ipcbus_message_read(m, "{id:t text:s}", &id, &text), 1);
        ck_assert_int_eq(ipcbus_message_read(m, "{id:t text:s}", &id, &text), -EBADMSG);
        ck_assert_str_eq(ipcbus_last_error(), "argument 'notes[2].id': expected uint, got string");
        ck_assert_uint_eq(id, 2); /* a failed read leaves the cursor (and the outputs of later items) */
        ck_assert_int_eq(ipcbus_message_read(m, "{id:?s text:s}", &text, &text), 1);
        ck_assert_str_eq(text, "c");
        ck_assert_int_eq(ipcbus_message_read(m, "{id:?s text:s}", &text, &text), 0);
        ck_assert_int_eq(ipcbus_message_exit(m), 0);
        ck_assert_int_eq(ipcbus_message_exit(m), -EINVAL);
        ck_assert_int_eq(ipcbus_message_enter(m, "missing"), -ENXIO);
        ck_assert_str_eq(ipcbus_last_error(), "argument 'missing': missing");
        ck_assert_int_eq(ipcbus_message_enter(m, "n"), -EBADMSG);
        ck_assert_int_eq(ipcbus_message_enter(m, "p"), 1);
        ck_assert_int_eq(ipcbus_message_read(m, "q:s", &text), -EBADMSG);
        ck_assert_str_eq(ipcbus_last_error(), "argument 'p.q': expected string, got array");
        ck_assert_int_eq(ipcbus_message_read(m, "q:q", &text), -EINVAL);
        ck_assert_str_eq(ipcbus_last_error(),
                         "format 'q:q': unknown type 'q' at offset 2 (types: b i x u t d s y h v n {...})");
        ck_assert_int_eq(ipcbus_message_exit(m), 0);
        ck_assert_int_eq(ipcbus_message_read(m, "n:n", &n), -EINVAL);
        pair_deinit(&p);
}
END_TEST

START_TEST(test_build_errors)
{
        __attribute__((cleanup(ipcbus_message_unrefp))) ipcbus_message *call = NULL, *sig = NULL;
        struct pair p;
        ipcbus_message *none = NULL;
        const char *text = NULL;

        pair_init(&p);
        /* names */
        ck_assert_int_eq(ipcbus_message_new_call(p.caller, &none, NULL, "foo", IFACE, "M"), -EINVAL);
        ck_assert_str_eq(ipcbus_last_error(),
                         "path 'foo': not a valid object path (PROTOCOL.md section 5: '/' or '/'-separated "
                         "elements of [A-Za-z0-9_], no trailing '/', at most 1024 bytes)");
        ck_assert_ptr_null(none);
        ck_assert_int_eq(ipcbus_message_new_signal(p.caller, &none, PATH, NULL, "M"), -EINVAL);
        ck_assert_str_eq(ipcbus_last_error(), "interface: missing");
        ck_assert_int_eq(ipcbus_call(p.caller, "org.example.X", PATH, IFACE, "M", "[1]", 0, NULL, NULL), -EINVAL);
        ck_assert_str_eq(ipcbus_last_error(), "body: not a JSON object");
        ck_assert_int_eq(ipcbus_emit_signal(p.caller, NULL, PATH, IFACE, "1bad", NULL), -EINVAL);
        ck_assert_str_eq(ipcbus_last_error(),
                         "member '1bad': not a valid member name (PROTOCOL.md section 5: one element of "
                         "[A-Za-z0-9_], not starting with a digit, at most 255 bytes)");
        ck_assert_int_eq(ipcbus_request_name(p.caller, "nodots", 0, NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(ipcbus_last_error(), "name 'nodots'"));
        ck_assert(ipcbus_is_object_path("/a/b") && !ipcbus_is_object_path("/a/"));
        ck_assert(ipcbus_is_unique_name(":1.4") && !ipcbus_is_well_known_name(":1.4") && ipcbus_is_bus_name(":1.4"));
        ck_assert(ipcbus_is_interface_name(IFACE) && !ipcbus_is_member_name(IFACE) && ipcbus_is_error_name(IFACE));

        /* formats and values: a failed append leaves the body as it was */
        call = new_call(&p, "Echo");
        ck_assert_int_eq(ipcbus_message_append(call, "a:u b:q", 1u, 2u), -EINVAL);
        ck_assert_str_eq(ipcbus_last_error(),
                         "format 'a:u b:q': unknown type 'q' at offset 6 (types: b i x u t d s y h v n {...})");
        ck_assert_int_eq(ipcbus_message_append(call, "u", 1u), -EINVAL);
        ck_assert_str_eq(ipcbus_last_error(), "format 'u': ':' expected after the name at offset 1");
        ck_assert_int_eq(ipcbus_message_append(call, "7:u", 1u), -EINVAL);
        ck_assert_str_eq(ipcbus_last_error(), "format '7:u': a name (name:T) expected at offset 0");
        ck_assert_int_eq(ipcbus_message_append(call, "s:s", "\xff"), -EINVAL);
        ck_assert_str_eq(ipcbus_last_error(), "argument 's': not valid UTF-8");
        /* a name given with '%' is the caller's text too: the body is sent without a second look */
        ck_assert_int_eq(ipcbus_message_append(call, "%:s", "k\xc3", "v"), -EINVAL);
        ck_assert_str_eq(ipcbus_last_error(), "value 'k\xc3': the name is not valid UTF-8");
        ck_assert_int_eq(ipcbus_message_append(call, "d:{x:d y:d}", 1.0, 0.0 / 0.0), -EINVAL);
        ck_assert_str_eq(ipcbus_last_error(), "argument 'd.y': NaN and infinities cannot be sent");
        ck_assert_int_eq(ipcbus_message_append(call, "v:v", "{oops"), -EINVAL);
        ck_assert_int_eq(ipcbus_message_open(call, '[', "list"), 0);
        ck_assert_int_eq(ipcbus_message_append(call, "x:u", 1u), -EINVAL);
        ck_assert_int_eq(ipcbus_message_append(call, "u", 1u), 0);
        ck_assert_int_eq(ipcbus_send(p.caller, call), -EINVAL);
        ck_assert_str_eq(ipcbus_last_error(), "message: 1 container still open");
        ck_assert_int_eq(ipcbus_message_close(call), 0);
        ck_assert_int_eq(ipcbus_message_close(call), -EINVAL);
        ck_assert_int_eq(ipcbus_message_append(call, "ok:s", "yes"), 0);
        ck_assert_int_eq(ipcbus_message_read(call, "ok:s", &text), -EPERM);

        /* sent at most once, then read like any message */
        ck_assert_int_eq(ipcbus_message_set_no_reply(call, true), 0);
        ck_assert_int_eq(ipcbus_send(p.caller, call), 0);
        ck_assert_int_eq(ipcbus_send(p.caller, call), -EALREADY);
        ck_assert_int_eq(ipcbus_message_append(call, "more:s", "no"), -EPERM);
        ck_assert_str_eq(ipcbus_message_get_body(call, NULL), "{\"list\":[1],\"ok\":\"yes\"}");
        ck_assert_int_eq(ipcbus_message_read(call, "ok:s", &text), 1);
        ck_assert_str_eq(text, "yes");
        ck_assert_int_eq(ipcbus_message_new_signal(p.caller, &sig, PATH, IFACE, "Changed"), 0);
        ck_assert_int_eq(ipcbus_message_set_no_reply(sig, true), -EINVAL);
        ck_assert_int_eq(ipcbus_message_set_destination(sig, "not a name"), -EINVAL);
        pair_deinit(&p);
}
END_TEST

/*
 * 'v' gives a value's JSON text as json-c prints the same value from
 * ipcbus_message_get_json (no white space, strings escaped again, of
 * duplicate keys the first's place and the last's value, integers beyond 64
 * bits as doubles), whatever the text as sent.
 */
START_TEST(test_any_text)
{
        static const char *const bodies[] = {
                ("{ \"v\" : { \"b\" : [1, -0, 1.50, -0e0, 18446744073709551616, \"\\u00e9\\/\\n\\u001f\\\"\"] , "
                 "\"a\":1, \"b\" : 2 } }"),
                "{\"v\":[ ]}",
                "{\"v\":{ }}",
                "{\"v\":\"x\\ud83d\\ude00\\t\"}",
                "{\"v\":null}",
                "{\"v\":[true,false,null,{\"k\\u0065y\":-12.5e-3,\"key\":[[]]}]}",
                "{\"v\":-99999999999999999999999}",
                "{\"v\":9223372036854775808}",
        };
        struct pair p;

        pair_init(&p);
        for (size_t i = 0; i < sizeof(bodies) / sizeof(*bodies); i++) {
                __attribute__((cleanup(ipcbus_message_unrefp))) ipcbus_message *m = echo(&p, bodies[i]);
                struct json_object *tree = NULL, *v = NULL;
                const char *text = NULL;

                ck_assert_int_eq(ipcbus_message_read(m, "v:v", &text), 1);
                ck_assert_int_eq(ipcbus_message_get_json(m, &tree), 0);
                ck_assert(json_object_object_get_ex(tree, "v", &v));
                ck_assert_str_eq(text, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(tree);
        }
        pair_deinit(&p);
}
END_TEST

/*
 * A large object is looked up by key (the last of duplicates counts, as
 * everywhere), and a string read and ipcbus_message_get_arg share one
 * decoding of the body: the same pointer, the body's bytes untouched.
 */
START_TEST(test_large_object)
{
        __attribute__((cleanup(ipcbus_message_unrefp))) ipcbus_message *m = NULL;
        struct jbuf body;
        struct pair p;
        const char *text = NULL, *esc = NULL;
        int v = 0;

        jbuf_init(&body);
        jbuf_puts(&body, "{\"text\":\"first\"");
        for (int i = 0; i < 100; i++)
                jbuf_printf(&body, ",\"k%d\":%d", i % 60, i);
        jbuf_puts(&body, ",\"t\\u0065xt\":\"a \\\"long\\\" one\",\"plain\":\"xyz\"}");
        ck_assert(!body.failed);
        pair_init(&p);
        m = echo(&p, body.data);
        for (int i = 0; i < 60; i++) {
                char name[16];

                snprintf(name, sizeof(name), "k%d", i);
                ck_assert_int_eq(ipcbus_message_read(m, "%:i", name, &v), 1);
                ck_assert_int_eq(v, i < 40 ? i + 60 : i);
        }
        ck_assert_int_eq(ipcbus_message_read(m, "k60:i", &v), -EBADMSG);
        ck_assert_int_eq(ipcbus_message_read(m, "text:s plain:s", &esc, &text), 1);
        ck_assert_str_eq(esc, "a \"long\" one");
        ck_assert_str_eq(text, "xyz");
        ck_assert_ptr_eq(ipcbus_message_get_arg(m, "text"), esc);
        ck_assert_ptr_eq(ipcbus_message_get_arg(m, "plain"), text);
        ck_assert_str_eq(ipcbus_message_get_body(m, NULL), body.data);
        jbuf_deinit(&body);
        pair_deinit(&p);
}
END_TEST

/* The sentence names the argument and says the rule it broke. */
static void assert_names(int r, const char *argument, const char *rule)
{
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_msg(strncmp(ipcbus_last_error(), argument, strlen(argument)) == 0, "'%s' does not start with '%s'",
                      ipcbus_last_error(), argument);
        ck_assert_msg(strstr(ipcbus_last_error(), rule), "'%s' does not say '%s'", ipcbus_last_error(), rule);
}

/* Every local refusal of a bad argument leaves a sentence naming it and the rule (issue 15, point 4). */
START_TEST(test_argument_sentences)
{
        __attribute__((cleanup(ipcbus_message_unrefp))) ipcbus_message *call = NULL;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        ipcbus_interface *iface = NULL;
        ipcbus_bus *none = NULL;
        struct pair p;

        pair_init(&p);
        /* names: one sentence per kind, with the rule of PROTOCOL.md section 5 */
        assert_names(ipcbus_call(p.caller, "org..x", PATH, IFACE, "M", NULL, 0, NULL, NULL), "destination 'org..x'",
                     "not a valid bus name (PROTOCOL.md section 5: a unique name (':1.42') or a well-known name");
        assert_names(ipcbus_call(p.caller, "org.example.X", "/a//b", IFACE, "M", NULL, 0, NULL, NULL), "path '/a//b'",
                     "'/'-separated elements of [A-Za-z0-9_]");
        assert_names(ipcbus_send_oneway(p.caller, "org.example.X", PATH, "org", "M", NULL), "interface 'org'",
                     "not a valid interface name (PROTOCOL.md section 5: two or more elements");
        assert_names(ipcbus_release_name(p.caller, ":1.4", NULL), "name ':1.4'",
                     "not a valid well-known name (PROTOCOL.md section 5: two or more elements of [A-Za-z0-9_-]");
        assert_names(ipcbus_error_set(&e, "NoDots", NULL), "name 'NoDots'", "not a valid error name");
        ck_assert(!ipcbus_error_is_set(&e));
        assert_names(ipcbus_interface_load("org", &iface), "name 'org'", "not a valid interface name");
        assert_names(ipcbus_add_object_manager(p.service, NULL, "a"), "path 'a'", "not a valid object path");
        call = new_call(&p, "Echo");
        assert_names(ipcbus_message_set_destination(call, "a b"), "destination 'a b'", "not a valid bus name");

        /* formats: the letters allowed */
        assert_names(ipcbus_message_append(call, "a:s b:x c:q", "x", (int64_t) 1, 2), "format 'a:s b:x c:q'",
                     "unknown type 'q' at offset 10 (types: b i x u t d s y h v n {...})");

        /* NULL arguments are named */
        assert_names(ipcbus_error_set(NULL, IFACE, NULL), "e: NULL", "");
        assert_names(ipcbus_add_filter(p.caller, NULL, NULL, NULL), "callback: NULL", "");
        assert_names(ipcbus_get_timeout(p.caller, NULL), "ret_usec: NULL", "");
        assert_names(ipcbus_message_get_error(call, &e), "m:", "not a received error");
        assert_names(ipcbus_reply_errorf(call, IFACE, NULL), "fmt: NULL", "");

        /* addresses */
        assert_names(ipcbus_open_address("/nope", &none), "address '/nope'",
                     "not a bus address (expected unix:path=/absolute/path");
        ck_assert_ptr_null(none);
        pair_deinit(&p);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("client_values");
        TCase *tc = testbus_tcase("values");

        tcase_add_test(tc, test_letters);
        tcase_add_test(tc, test_containers);
        tcase_add_test(tc, test_optional);
        tcase_add_test(tc, test_big_integers);
        tcase_add_test(tc, test_bytes);
        tcase_add_test(tc, test_huge_literals);
        tcase_add_test(tc, test_read_errors);
        tcase_add_test(tc, test_build_errors);
        tcase_add_test(tc, test_any_text);
        tcase_add_test(tc, test_large_object);
        tcase_add_test(tc, test_argument_sentences);
        suite_add_tcase(s, tc);
        return testbus_run_suite(s);
}
