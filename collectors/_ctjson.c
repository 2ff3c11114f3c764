/* The CloudTrail trail-file decoder: `{"Records": [...]}` text -> Arrow string columns of the fields caa reads.

parse(text) walks the JSON once, validates all of it (grammar, escapes, UTF-8 in every string), and for each
record whose eventSource is "codeartifact.amazonaws.com" appends the FIELDS below to one Arrow string column
each (validity bitmap, int32 offsets, data). Everything else in a record is checked and skipped, never
materialized. It runs without the GIL, so the collector's threads decode files on every core.
events(text) gives the same records normalized (the events table's columns); those whose values repeat
within a file (DICTIONARY: account, region, principal, user agent...) come as Arrow dictionary columns.

A field holding a string gives its text (escapes decoded; a lone surrogate becomes U+FFFD); null or a missing
key gives NULL; a number, true or false gives its text as it stands in the file, an object or array its JSON
text as DuckDB writes it (minify), as DuckDB's VARCHAR reading of such a field does. One difference: DuckDB
writes a fractional number again in its shortest form (1e+300 becomes 1e300); here it stays as written
(CloudTrail writes no numbers in these fields). A nested group (userIdentity, requestParameters, additionalEventData) that is not an object gives NULL
for each of its fields. Elements of Records that are not objects are skipped. Text may hold several
top-level objects (concatenated gzip members of whole files), each read for its Records.

Errors raise ValueError(message, byte offset, kind), kind "syntax" or "not_list" (the file's Records, or
the file itself, is not a list of events). The fields and their order are collectors/cloudtrail_load.py's
RECORD_FIELDS, flattened; FIELDS below is checked against it at import.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h> /* getentropy */
#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum {
    F_EVENT_VERSION, F_EVENT_ID, F_EVENT_TIME, F_EVENT_SOURCE, F_EVENT_NAME, F_AWS_REGION, F_SOURCE_IP,
    F_USER_AGENT, F_ERROR_CODE, F_RECIPIENT,
    F_UI_TYPE, F_UI_ARN, F_UI_ACCOUNT,
    F_P_DOMAIN_NAME, F_P_DOMAIN, F_P_DOMAIN_OWNER, F_P_REPOSITORY_NAME, F_P_REPOSITORY, F_P_PACKAGE_FORMAT,
    F_P_FORMAT, F_P_PACKAGE_NAMESPACE, F_P_NAMESPACE, F_P_PACKAGE_NAME, F_P_PACKAGE, F_P_PACKAGE_VERSION,
    F_P_ASSET,
    F_REQUEST_URI,
    NF
};

/* events mode: the normalized columns (EVENT_NAMES) */
enum {
    E_EVENT_ID, E_EVENT_NAME, E_ACCOUNT, E_REGION, E_DOMAIN, E_DOMAIN_OWNER, E_REPOSITORY, E_FORMAT,
    E_NAMESPACE, E_PACKAGE, E_VERSION, E_ASSET, E_PRINCIPAL_ARN, E_PRINCIPAL_TYPE, E_SOURCE_IP, E_USER_AGENT,
    E_ERROR_CODE, E_REQUEST_URI,
    NE
};

/* The columns written as dictionaries: those whose values repeat within a trail file. event_id is unique,
   version, asset and request_uri vary with the package: plain. */
static const uint8_t DICTIONARY[NE] = {
    [E_EVENT_NAME] = 1, [E_ACCOUNT] = 1, [E_REGION] = 1, [E_DOMAIN] = 1, [E_DOMAIN_OWNER] = 1,
    [E_REPOSITORY] = 1, [E_FORMAT] = 1, [E_NAMESPACE] = 1, [E_PACKAGE] = 1, [E_PRINCIPAL_ARN] = 1,
    [E_PRINCIPAL_TYPE] = 1, [E_SOURCE_IP] = 1, [E_USER_AGENT] = 1, [E_ERROR_CODE] = 1,
};

static const char *FIELD_NAMES[NF] = {
    "eventVersion", "eventID", "eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress",
    "userAgent", "errorCode", "recipientAccountId",
    "userIdentity.type", "userIdentity.arn", "userIdentity.accountId",
    "requestParameters.domainName", "requestParameters.domain", "requestParameters.domainOwner",
    "requestParameters.repositoryName", "requestParameters.repository", "requestParameters.packageFormat",
    "requestParameters.format", "requestParameters.packageNamespace", "requestParameters.namespace",
    "requestParameters.packageName", "requestParameters.package", "requestParameters.packageVersion",
    "requestParameters.asset",
    "additionalEventData.requestUri",
};

typedef struct Spec {
    const char *name;
    int len;
    int field;               /* a string field, or -1 for a group */
    const struct Spec *sub;  /* the group's fields */
    int nsub, first, last;   /* the group's field range [first, last] */
} Spec;

#define S(n, f) {n, (int)sizeof(n) - 1, f, NULL, 0, 0, 0}
static const Spec IDENTITY[] = {S("type", F_UI_TYPE), S("arn", F_UI_ARN), S("accountId", F_UI_ACCOUNT)};
static const Spec PARAMS[] = {
    S("domainName", F_P_DOMAIN_NAME), S("domain", F_P_DOMAIN), S("domainOwner", F_P_DOMAIN_OWNER),
    S("repositoryName", F_P_REPOSITORY_NAME), S("repository", F_P_REPOSITORY),
    S("packageFormat", F_P_PACKAGE_FORMAT), S("format", F_P_FORMAT),
    S("packageNamespace", F_P_PACKAGE_NAMESPACE), S("namespace", F_P_NAMESPACE),
    S("packageName", F_P_PACKAGE_NAME), S("package", F_P_PACKAGE), S("packageVersion", F_P_PACKAGE_VERSION),
    S("asset", F_P_ASSET)};
static const Spec EXTRA[] = {S("requestUri", F_REQUEST_URI)};
static const Spec RECORD[] = {
    S("eventVersion", F_EVENT_VERSION), S("eventID", F_EVENT_ID), S("eventTime", F_EVENT_TIME),
    S("eventSource", F_EVENT_SOURCE), S("eventName", F_EVENT_NAME), S("awsRegion", F_AWS_REGION),
    S("sourceIPAddress", F_SOURCE_IP), S("userAgent", F_USER_AGENT), S("errorCode", F_ERROR_CODE),
    S("recipientAccountId", F_RECIPIENT),
    {"userIdentity", 12, -1, IDENTITY, 3, F_UI_TYPE, F_UI_ACCOUNT},
    {"requestParameters", 17, -1, PARAMS, 13, F_P_DOMAIN_NAME, F_P_ASSET},
    {"additionalEventData", 19, -1, EXTRA, 1, F_REQUEST_URI, F_REQUEST_URI}};
#undef S
#define NSPEC(a) ((int)(sizeof(a) / sizeof((a)[0])))

#define MAX_DEPTH 512
static const char CODEARTIFACT[] = "codeartifact.amazonaws.com";

enum { K_NULL = 0, K_PLAIN = 1, K_ESCAPED = 2, K_RAW = 3 };

typedef struct {
    const uint8_t *p;
    uint32_t len;
    uint8_t kind;
} Slot;

typedef struct {
    uint8_t *data;
    size_t len, cap;
    int32_t *off;
    uint8_t *valid;
    Py_ssize_t nulls;
} Col;

/* Events mode, a DICTIONARY column: its distinct values (data, off) and each row's index into them (idx), as
   an Arrow dictionary array. A file's records repeat these values (its account, region, principals, user
   agents), so the batch carries 4 bytes a row instead of the text: its take and the Parquet writer's
   dictionary work on indices. Open addressing over a seeded hash; the previous row's value is tried first. */
typedef struct {
    int32_t *idx;
    uint8_t *data;
    size_t len, cap;
    int32_t *off;
    uint32_t *hash;
    int32_t n, cap_values, last;
    uint32_t *slot, mask; /* slot: value index + 1, 0 = empty; mask + 1 = the table's size, a power of 2 */
} Dict;

typedef struct {
    const uint8_t *start, *p, *end;
    const char *msg;
    const uint8_t *at;
    int not_list; /* 1: Records (or the text) is not a list, said (2) once the rest of the text is found valid */
    const uint8_t *not_list_at;
    Slot slot[NF];
    Col col[NF];
    Py_ssize_t rows, cap_rows, records;
    int oom;
    int events;        /* mode: 0 = the raw FIELDS, 1 = the normalized events columns (EVENT_NAMES) */
    int64_t *when;     /* events mode: event_at, microseconds since the epoch (UTC) */
    uint8_t *when_valid;
    Py_ssize_t when_nulls;
    uint8_t *scratch;  /* events mode: the escaped fields of the record, decoded */
    size_t scratch_cap;
    Col odd;           /* events mode: the eventTime of rows whose time is not canonical, for DuckDB to read */
    int32_t *odd_rows;
    Py_ssize_t n_odd, cap_odd;
    Dict dict[NE];  /* events mode: the DICTIONARY columns */
} Parser;

static int fail(Parser *P, const uint8_t *at, const char *msg) {
    if (!P->msg) {
        P->msg = msg;
        P->at = at;
    }
    return -1;
}

static inline void ws(Parser *P) {
    const uint8_t *p = P->p, *e = P->end;
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    P->p = p;
}

/* The first '"', '\\' or control character at or after p; sets *wide when a byte >= 0x80 precedes it. */
static inline const uint8_t *special(const uint8_t *p, const uint8_t *e, int *wide) {
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), slash = _mm_set1_epi8('\\'), ctl = _mm_set1_epi8(0x1f);
    while (e - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        unsigned hi = (unsigned)_mm_movemask_epi8(v);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                                 _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask) {
            unsigned i = (unsigned)__builtin_ctz(mask);
            if (hi & ((1u << i) - 1)) *wide = 1;
            return p + i;
        }
        if (hi) *wide = 1;
        p += 16;
    }
#endif
    for (; p < e; p++) {
        uint8_t c = *p;
        if (c == '"' || c == '\\' || c < 0x20) return p;
        if (c & 0x80) *wide = 1;
    }
    return e;
}

/* NULL when [s, e) is valid UTF-8, else where it stops being. */
static const uint8_t *bad_utf8(const uint8_t *s, const uint8_t *e) {
    while (s < e) {
        uint8_t c = *s;
        if (c < 0x80) {
            s++;
        } else if (c >= 0xC2 && c <= 0xDF) {
            if (e - s < 2 || (s[1] & 0xC0) != 0x80) return s;
            s += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (e - s < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return s;
            if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0)) return s;
            s += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (e - s < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return s;
            if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90)) return s;
            s += 4;
        } else {
            return s;
        }
    }
    return NULL;
}

static inline int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A string at P->p (its opening quote): its content [*s, *s + *len) and whether it holds escapes. */
static int string(Parser *P, const uint8_t **s, uint32_t *len, int *escaped) {
    const uint8_t *p = P->p + 1, *e = P->end, *begin = p;
    int wide = 0, esc = 0;
    for (;;) {
        p = special(p, e, &wide);
        if (p >= e) return fail(P, begin - 1, "unterminated string");
        if (*p == '"') break;
        if (*p != '\\') return fail(P, p, "control character in a string");
        esc = 1;
        if (p + 1 >= e) return fail(P, p, "unterminated string");
        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p += 2;
            break;
        case 'u':
            if (e - p < 6 || hexval(p[2]) < 0 || hexval(p[3]) < 0 || hexval(p[4]) < 0 || hexval(p[5]) < 0)
                return fail(P, p, "invalid \\u escape");
            p += 6;
            break;
        default:
            return fail(P, p, "invalid escape in a string");
        }
    }
    if (wide) {
        const uint8_t *bad = bad_utf8(begin, p);
        if (bad) return fail(P, bad, "invalid UTF-8 in a string");
    }
    if (p - begin > (ptrdiff_t)0x7fffffff) return fail(P, begin, "string too long");
    *s = begin;
    *len = (uint32_t)(p - begin);
    *escaped = esc;
    P->p = p + 1;
    return 0;
}

static inline uint8_t *put_utf8(uint8_t *o, uint32_t cp) {
    if (cp < 0x80) {
        *o++ = (uint8_t)cp;
    } else if (cp < 0x800) {
        *o++ = (uint8_t)(0xC0 | (cp >> 6));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (uint8_t)(0xE0 | (cp >> 12));
        *o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (uint8_t)(0xF0 | (cp >> 18));
        *o++ = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    }
    return o;
}

static inline uint32_t hex4(const uint8_t *p) {
    return (uint32_t)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

/* Decode the (already validated) escaped content [s, e) into o; returns the end of what was written, never
   more than e - s bytes. */
static uint8_t *unescape(const uint8_t *s, const uint8_t *e, uint8_t *o) {
    while (s < e) {
        const uint8_t *q = memchr(s, '\\', (size_t)(e - s));
        if (!q) q = e;
        memcpy(o, s, (size_t)(q - s));
        o += q - s;
        s = q;
        if (s >= e) break;
        uint8_t c = s[1];
        s += 2;
        switch (c) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            uint32_t cp = hex4(s);
            s += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (e - s >= 6 && s[0] == '\\' && s[1] == 'u') {
                    uint32_t lo = hex4(s + 2);
                    if (lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        s += 6;
                    } else {
                        cp = 0xFFFD;
                    }
                } else {
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            o = put_utf8(o, cp);
            break;
        }
        default: *o++ = c; break; /* '"', '\\', '/' */
        }
    }
    return o;
}


/* A (validated) object or array [s, e) as DuckDB writes JSON text: no whitespace between tokens; in strings,
   escapes decoded to UTF-8 except '"', '\\' and control characters (\b \f \n \r \t, else \u00XX). Never longer
   than its input. */
static uint8_t *minify(const uint8_t *s, const uint8_t *e, uint8_t *o) {
    static const char HEX[] = "0123456789ABCDEF";
    while (s < e) {
        uint8_t c = *s++;
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        *o++ = c;
        if (c != '"') continue;
        while (*s != '"') {
            if (*s != '\\') {
                *o++ = *s++;
                continue;
            }
            uint8_t k = s[1];
            if (k != 'u') {
                if (k == '/') *o++ = '/';
                else {
                    *o++ = '\\';
                    *o++ = k;
                }
                s += 2;
                continue;
            }
            uint8_t one[4];
            const uint8_t *after = s + 6;
            if (hex4(s + 2) >= 0xD800 && hex4(s + 2) <= 0xDBFF && e - after >= 6 && after[0] == '\\' && after[1] == 'u') {
                uint32_t lo = hex4(after + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) after += 6;
            }
            uint8_t *end = unescape(s, after, one);
            s = after;
            if (end - one == 1 && (one[0] < 0x20 || one[0] == '"' || one[0] == '\\')) {
                uint8_t ch = one[0];
                *o++ = '\\';
                switch (ch) {
                case '\b': *o++ = 'b'; break;
                case '\f': *o++ = 'f'; break;
                case '\n': *o++ = 'n'; break;
                case '\r': *o++ = 'r'; break;
                case '\t': *o++ = 't'; break;
                case '"': case '\\': *o++ = ch; break;
                default:
                    *o++ = 'u';
                    *o++ = '0';
                    *o++ = '0';
                    *o++ = (uint8_t)HEX[ch >> 4];
                    *o++ = (uint8_t)HEX[ch & 15];
                }
            } else {
                memcpy(o, one, (size_t)(end - one));
                o += end - one;
            }
        }
        *o++ = *s++; /* the closing quote */
    }
    return o;
}

static inline int is_container(const Slot *s) { return s->kind == K_RAW && (s->p[0] == '{' || s->p[0] == '['); }

static int value(Parser *P, int depth);

static int number(Parser *P) {
    const uint8_t *p = P->p, *e = P->end, *begin = p;
    if (p < e && *p == '-') p++;
    if (p < e && *p == '0') {
        p++;
    } else if (p < e && *p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9') p++;
    } else {
        return fail(P, begin, begin < e && *begin == '-' ? "invalid number" : "unexpected character");
    }
    if (p < e && *p == '.') {
        p++;
        if (!(p < e && *p >= '0' && *p <= '9')) return fail(P, begin, "invalid number");
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (!(p < e && *p >= '0' && *p <= '9')) return fail(P, begin, "invalid number");
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    P->p = p;
    return 0;
}

static int literal(Parser *P, const char *word, size_t n) {
    if ((size_t)(P->end - P->p) < n || memcmp(P->p, word, n) != 0) return fail(P, P->p, "invalid literal");
    P->p += n;
    return 0;
}

/* The opening '{' or '[' at P->p and the whitespace after it: 1 when the container is empty (its close
   consumed too), else 0. */
static int opened(Parser *P, uint8_t close) {
    P->p++;
    ws(P);
    if (P->p < P->end && *P->p == close) {
        P->p++;
        return 1;
    }
    return 0;
}

/* A member's key and its ':' at P->p, with the whitespace around them: P->p is then at the value. */
static int key(Parser *P, const uint8_t **s, uint32_t *n, int *esc) {
    if (P->p >= P->end || *P->p != '"') return fail(P, P->p, "expected a key");
    if (string(P, s, n, esc)) return -1;
    ws(P);
    if (P->p >= P->end || *P->p != ':') return fail(P, P->p, "expected ':'");
    P->p++;
    ws(P);
    if (P->p >= P->end) return fail(P, P->p, "unexpected end of text");
    return 0;
}

/* After a member: 1 when another follows (its ',' consumed), 0 at the end of the container (`close`
   consumed), -1 on anything else. */
static int next(Parser *P, uint8_t close) {
    ws(P);
    if (P->p < P->end && *P->p == ',') {
        P->p++;
        ws(P);
        return 1;
    }
    if (P->p < P->end && *P->p == close) {
        P->p++;
        return 0;
    }
    return fail(P, P->p, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

/* Skip (validating) the container at P->p: '{' or '['. */
static int container(Parser *P, int depth) {
    if (depth > MAX_DEPTH) return fail(P, P->p, "nested too deeply");
    uint8_t close = *P->p == '{' ? '}' : ']';
    if (opened(P, close)) return 0;
    for (;;) {
        const uint8_t *s;
        uint32_t n;
        int esc;
        if (close == '}' && key(P, &s, &n, &esc)) return -1;
        if (value(P, depth + 1)) return -1;
        int more = next(P, close);
        if (more <= 0) return more;
    }
}

/* Skip (validating) any value at P->p. */
static int value(Parser *P, int depth) {
    if (P->p >= P->end) return fail(P, P->p, "unexpected end of text");
    switch (*P->p) {
    case '"': {
        const uint8_t *s;
        uint32_t n;
        int esc;
        return string(P, &s, &n, &esc);
    }
    case '{': case '[': return container(P, depth);
    case 't': return literal(P, "true", 4);
    case 'f': return literal(P, "false", 5);
    case 'n': return literal(P, "null", 4);
    default: return number(P);
    }
}

/* Key [s, s + n) (escaped when esc) among spec: its index or -1. */
static int lookup(const Spec *spec, int nspec, const uint8_t *s, uint32_t n, int esc) {
    uint8_t buf[64];
    if (esc) {
        if (n > sizeof(buf)) return -1;
        n = (uint32_t)(unescape(s, s + n, buf) - buf);
        s = buf;
    }
    for (int i = 0; i < nspec; i++)
        if ((uint32_t)spec[i].len == n && memcmp(spec[i].name, s, n) == 0) return i;
    return -1;
}

/* The object at P->p ('{'), its keys in spec filling P->slot. */
static int fields(Parser *P, const Spec *spec, int nspec, int depth) {
    if (depth > MAX_DEPTH) return fail(P, P->p, "nested too deeply");
    if (opened(P, '}')) return 0;
    for (;;) {
        const uint8_t *s;
        uint32_t n;
        int esc;
        if (key(P, &s, &n, &esc)) return -1;
        int i = lookup(spec, nspec, s, n, esc);
        if (i < 0) {
            if (value(P, depth + 1)) return -1;
        } else if (spec[i].field >= 0) {
            Slot *slot = &P->slot[spec[i].field];
            const uint8_t *v = P->p;
            if (*v == '"') {
                if (string(P, &s, &n, &esc)) return -1;
                slot->p = s;
                slot->len = n;
                slot->kind = esc ? K_ESCAPED : K_PLAIN;
            } else {
                if (value(P, depth + 1)) return -1;
                if (*v == 'n') {
                    slot->kind = K_NULL;
                } else {
                    slot->p = v;
                    slot->len = (uint32_t)(P->p - v);
                    slot->kind = K_RAW;
                }
            }
        } else {
            for (int f = spec[i].first; f <= spec[i].last; f++) P->slot[f].kind = K_NULL;
            if (*P->p == '{') {
                if (fields(P, spec[i].sub, spec[i].nsub, depth + 1)) return -1;
            } else if (value(P, depth + 1)) {
                return -1;
            }
        }
        int more = next(P, '}');
        if (more <= 0) return more;
    }
}

static int grow(Parser *P) {
    Py_ssize_t cap = P->cap_rows ? P->cap_rows * 2 : 1024;
    for (int f = 0; f < NF; f++) {
        Col *c = &P->col[f];
        int32_t *off = realloc(c->off, sizeof(int32_t) * (size_t)(cap + 1));
        if (!off) return -1;
        c->off = off;
        if (!P->cap_rows) c->off[0] = 0;
        uint8_t *valid = realloc(c->valid, (size_t)(cap + 7) / 8);
        if (!valid) return -1;
        memset(valid + (P->cap_rows + 7) / 8, 0, (size_t)((cap + 7) / 8 - (P->cap_rows + 7) / 8));
        c->valid = valid;
    }
    if (P->events) {
        int64_t *when = realloc(P->when, sizeof(int64_t) * (size_t)cap);
        if (!when) return -1;
        P->when = when;
        uint8_t *valid = realloc(P->when_valid, (size_t)(cap + 7) / 8);
        if (!valid) return -1;
        memset(valid + (P->cap_rows + 7) / 8, 0, (size_t)((cap + 7) / 8 - (P->cap_rows + 7) / 8));
        P->when_valid = valid;
        for (int i = 0; i < NE; i++) {
            if (!DICTIONARY[i]) continue;
            int32_t *idx = realloc(P->dict[i].idx, sizeof(int32_t) * (size_t)cap);
            if (!idx) return -1;
            P->dict[i].idx = idx;
            if (!P->cap_rows) P->dict[i].last = -1;
        }
    }
    P->cap_rows = cap;
    return 0;
}

static int reserve(Col *c, size_t more) {
    if (c->len + more <= c->cap) return 0;
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->len + more) cap *= 2;
    uint8_t *d = realloc(c->data, cap);
    if (!d) return -1;
    c->data = d;
    c->cap = cap;
    return 0;
}

/* -- events mode: NORMALIZE_SQL (collectors/cloudtrail_load.py) in C; tests/unit/test_ctjson.py holds the two
   to the same rows. --------------------------------------------------------------------------------------- */

static const char *EVENT_NAMES[NE] = {
    "event_id", "event_name", "account_id", "region", "domain", "domain_owner", "repository", "format",
    "namespace", "package", "version", "asset", "principal_arn", "principal_type", "source_ip", "user_agent",
    "error_code", "request_uri",
};

typedef struct {
    const uint8_t *p;
    size_t len;
    int null;
} Val;

static inline Val first(Val a, Val b) { return a.null ? b : a; }

static int digits(const uint8_t *p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

static int64_t days_from_civil(int y, int m, int d) { /* H. Hinnant's algorithm, proleptic Gregorian */
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t)era * 146097 + (int64_t)doe - 719468;
}

/* CloudTrail's own spelling, YYYY-MM-DDTHH:MM:SSZ, as microseconds; -1 for anything else (DuckDB reads it). */
static int canonical_time(Val v, int64_t *us) {
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const uint8_t *p = v.p;
    int y, mo, d, h, mi, sec;
    if (v.len != 20 || p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':' || p[19] != 'Z')
        return -1;
    if (digits(p, 4, &y) || digits(p + 5, 2, &mo) || digits(p + 8, 2, &d) || digits(p + 11, 2, &h) ||
        digits(p + 14, 2, &mi) || digits(p + 17, 2, &sec))
        return -1;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59) return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap)) return -1;
    *us = ((days_from_civil(y, mo, d) * 86400) + h * 3600 + mi * 60 + sec) * (int64_t)1000000;
    return 0;
}

static int put(Col *c, Py_ssize_t r, Val v) {
    if (v.null) {
        c->nulls++;
    } else {
        if (reserve(c, v.len)) return -1;
        memcpy(c->data + c->len, v.p, v.len);
        c->len += v.len;
        c->valid[r >> 3] |= (uint8_t)(1u << (r & 7));
    }
    if (c->len > 0x7fffffff) return -1;
    c->off[r + 1] = (int32_t)c->len;
    return 0;
}

static uint64_t SEED = 0x9E3779B97F4A7C15ull; /* set from the system's entropy at import: values are hostile */

static inline uint32_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = SEED ^ (n * 0x9E3779B97F4A7C15ull), w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    if (n) {
        w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
    }
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return (uint32_t)h;
}

static inline int same(const Dict *d, int32_t k, Val v) {
    return (size_t)(d->off[k + 1] - d->off[k]) == v.len && memcmp(d->data + d->off[k], v.p, v.len) == 0;
}

/* A new value for row r: appended to the dictionary, its index into free slot i of the table. */
static int dict_add(Dict *d, Py_ssize_t r, Val v, uint32_t h, uint32_t i) {
    if (d->n >= d->cap_values) {
        int32_t cap = d->cap_values ? d->cap_values * 2 : 64;
        int32_t *off = realloc(d->off, sizeof(int32_t) * ((size_t)cap + 1));
        if (!off) return -1;
        d->off = off;
        uint32_t *hash = realloc(d->hash, sizeof(uint32_t) * (size_t)cap);
        if (!hash) return -1;
        d->hash = hash;
        d->cap_values = cap;
    }
    if (d->len + v.len > d->cap) {
        size_t cap = d->cap ? d->cap : 1024;
        while (cap < d->len + v.len) cap *= 2;
        uint8_t *data = realloc(d->data, cap);
        if (!data) return -1;
        d->data = data;
        d->cap = cap;
    }
    if (d->len + v.len > 0x7fffffff) return -1;
    memcpy(d->data + d->len, v.p, v.len);
    d->len += v.len;
    int32_t k = d->n++;
    d->off[k + 1] = (int32_t)d->len;
    d->hash[k] = h;
    d->slot[i] = (uint32_t)k + 1;
    d->idx[r] = d->last = k;
    if ((uint32_t)d->n * 2 > d->mask) { /* over half full: double the table */
        uint32_t size = (d->mask + 1) * 2, *slot = calloc(size, sizeof(uint32_t));
        if (!slot) return -1;
        for (int32_t j = 0; j < d->n; j++) {
            uint32_t at = d->hash[j] & (size - 1);
            while (slot[at]) at = (at + 1) & (size - 1);
            slot[at] = (uint32_t)j + 1;
        }
        free(d->slot);
        d->slot = slot;
        d->mask = size - 1;
    }
    return 0;
}

/* Row r's value of a DICTIONARY column: its index, the value added when new. */
static int dict_put(Col *c, Dict *d, Py_ssize_t r, Val v) {
    if (v.null) {
        c->nulls++;
        d->idx[r] = 0;
        return 0;
    }
    c->valid[r >> 3] |= (uint8_t)(1u << (r & 7));
    if (d->last >= 0 && same(d, d->last, v)) {
        d->idx[r] = d->last;
        return 0;
    }
    if (!d->slot) {
        if (!(d->slot = calloc(64, sizeof(uint32_t))) || !(d->off = malloc(sizeof(int32_t) * 65)) ||
            !(d->hash = malloc(sizeof(uint32_t) * 64)))
            return -1;
        d->mask = 63;
        d->cap_values = 64;
        d->off[0] = 0;
    }
    uint32_t h = hash_bytes(v.p, v.len), i = h & d->mask;
    for (uint32_t s; (s = d->slot[i]) != 0; i = (i + 1) & d->mask) {
        int32_t k = (int32_t)s - 1;
        if (d->hash[k] == h && same(d, k, v)) {
            d->idx[r] = d->last = k;
            return 0;
        }
    }
    return dict_add(d, r, v, h, i);
}

/* The record's fields as values (escapes decoded and containers minified into P->scratch). */
static int values(Parser *P, Val v[NF]) {
    size_t need = 0;
    for (int f = 0; f < NF; f++)
        if (P->slot[f].kind == K_ESCAPED || is_container(&P->slot[f])) need += P->slot[f].len;
    if (need > P->scratch_cap) {
        uint8_t *s = realloc(P->scratch, need);
        if (!s) return -1;
        P->scratch = s;
        P->scratch_cap = need;
    }
    uint8_t *o = P->scratch;
    for (int f = 0; f < NF; f++) {
        Slot *s = &P->slot[f];
        v[f].null = s->kind == K_NULL;
        if (s->kind == K_ESCAPED || is_container(s)) {
            v[f].p = o;
            o = s->kind == K_ESCAPED ? unescape(s->p, s->p + s->len, o) : minify(s->p, s->p + s->len, o);
            v[f].len = (size_t)(o - v[f].p);
        } else {
            v[f].p = s->p;
            v[f].len = s->len;
        }
    }
    return 0;
}

/* Raw mode: the record's FIELDS, one column each. */
static int emit(Parser *P) {
    Val v[NF];
    if ((P->rows >= P->cap_rows && grow(P)) || values(P, v)) return -1;
    for (int f = 0; f < NF; f++)
        if (put(&P->col[f], P->rows, v[f])) return -1;
    P->rows++;
    return 0;
}

/* Events mode: the record normalized, one column per EVENT_NAMES, and event_at. */
static int emit_event(Parser *P) {
    Val v[NF];
    if ((P->rows >= P->cap_rows && grow(P)) || values(P, v)) return -1;
    Py_ssize_t r = P->rows;
    Val e[NE], none = {NULL, 0, 1};
    e[E_EVENT_ID] = v[F_EVENT_ID];
    e[E_EVENT_NAME] = v[F_EVENT_NAME];
    e[E_ACCOUNT] = first(v[F_P_DOMAIN_OWNER], v[F_RECIPIENT]);
    e[E_REGION] = v[F_AWS_REGION];
    e[E_DOMAIN] = first(v[F_P_DOMAIN_NAME], v[F_P_DOMAIN]);
    e[E_DOMAIN_OWNER] = v[F_P_DOMAIN_OWNER];
    e[E_REPOSITORY] = first(v[F_P_REPOSITORY_NAME], v[F_P_REPOSITORY]);
    e[E_FORMAT] = first(v[F_P_PACKAGE_FORMAT], v[F_P_FORMAT]);
    /* npm scopes: a namespace loses its leading '@'s; with no namespace, a package "@scope/name" is split */
    Val ns = first(v[F_P_PACKAGE_NAMESPACE], v[F_P_NAMESPACE]), pkg = first(v[F_P_PACKAGE_NAME], v[F_P_PACKAGE]);
    const uint8_t *slash = !pkg.null && pkg.len > 1 && pkg.p[0] == '@' ? memchr(pkg.p + 1, '/', pkg.len - 1) : NULL;
    if (!ns.null) {
        while (ns.len && ns.p[0] == '@') {
            ns.p++;
            ns.len--;
        }
        e[E_NAMESPACE] = ns;
        e[E_PACKAGE] = pkg;
    } else if (slash) {
        e[E_NAMESPACE] = (Val){pkg.p + 1, (size_t)(slash - pkg.p - 1), 0};
        e[E_PACKAGE] = (Val){slash + 1, (size_t)(pkg.p + pkg.len - slash - 1), 0};
    } else {
        e[E_NAMESPACE] = none;
        e[E_PACKAGE] = pkg;
    }
    Val ver = v[F_P_PACKAGE_VERSION], uri = v[F_REQUEST_URI];
    e[E_VERSION] = ver;
    /* the asset: the parameter, else the last segment of the request URI, when it names a file of the version */
    Val last = {(const uint8_t *)"", 0, 0};
    if (!uri.null) {
        const uint8_t *p = uri.p + uri.len;
        while (p > uri.p && p[-1] != '/') p--;
        last = (Val){p, (size_t)(uri.p + uri.len - p), 0};
    }
    static const char MAVEN_METADATA[] = "maven-metadata.xml";
    if (!v[F_P_ASSET].null)
        e[E_ASSET] = v[F_P_ASSET];
    else if (!ver.null && last.len &&
             !(last.len >= sizeof(MAVEN_METADATA) - 1 && !memcmp(last.p, MAVEN_METADATA, sizeof(MAVEN_METADATA) - 1)) &&
             !(last.len == ver.len && !memcmp(last.p, ver.p, ver.len)))
        e[E_ASSET] = last;
    else
        e[E_ASSET] = none;
    e[E_PRINCIPAL_ARN] = v[F_UI_ARN];
    e[E_PRINCIPAL_TYPE] = v[F_UI_TYPE];
    e[E_SOURCE_IP] = v[F_SOURCE_IP];
    e[E_USER_AGENT] = v[F_USER_AGENT];
    e[E_ERROR_CODE] = v[F_ERROR_CODE];
    e[E_REQUEST_URI] = uri;
    for (int i = 0; i < NE; i++)
        if (DICTIONARY[i] ? dict_put(&P->col[i], &P->dict[i], r, e[i]) : put(&P->col[i], r, e[i])) return -1;
    int64_t us = 0;
    Val t = v[F_EVENT_TIME];
    if (t.null) {
        P->when_nulls++;
    } else if (canonical_time(t, &us) == 0) {
        P->when_valid[r >> 3] |= (uint8_t)(1u << (r & 7));
    } else { /* NULL here; DuckDB's TRY_CAST decides, from the text kept in `odd` */
        P->when_nulls++;
        if (P->n_odd >= P->cap_odd) {
            Py_ssize_t cap = P->cap_odd ? P->cap_odd * 2 : 64;
            int32_t *rows = realloc(P->odd_rows, sizeof(int32_t) * (size_t)cap);
            int32_t *off = realloc(P->odd.off, sizeof(int32_t) * (size_t)(cap + 1));
            if (rows) P->odd_rows = rows;
            if (off) P->odd.off = off;
            if (!rows || !off) return -1;
            if (!P->cap_odd) P->odd.off[0] = 0;
            P->cap_odd = cap;
        }
        if (reserve(&P->odd, t.len)) return -1;
        memcpy(P->odd.data + P->odd.len, t.p, t.len);
        P->odd.len += t.len;
        if (P->odd.len > 0x7fffffff) return -1;
        P->odd_rows[P->n_odd] = (int32_t)r;
        P->odd.off[++P->n_odd] = (int32_t)P->odd.len;
    }
    P->when[r] = us;
    P->rows++;
    return 0;
}

static int is_codeartifact(const Slot *s) {
    uint8_t buf[sizeof(CODEARTIFACT) * 6];
    const uint8_t *p = s->p;
    size_t n = s->len;
    if (s->kind == K_ESCAPED) {
        if (n > sizeof(buf)) return 0;
        n = (size_t)(unescape(p, p + n, buf) - buf);
        p = buf;
    } else if (s->kind != K_PLAIN) {
        return 0;
    }
    return n == sizeof(CODEARTIFACT) - 1 && memcmp(p, CODEARTIFACT, n) == 0;
}

/* The Records list at P->p. */
static int records(Parser *P) {
    if (opened(P, ']')) return 0;
    for (;;) {
        if (P->p >= P->end) return fail(P, P->p, "unexpected end of text");
        P->records++;
        if (*P->p == '{') {
            for (int f = 0; f < NF; f++) P->slot[f].kind = K_NULL;
            if (fields(P, RECORD, NSPEC(RECORD), 2)) return -1;
            if (is_codeartifact(&P->slot[F_EVENT_SOURCE]) && (P->events ? emit_event(P) : emit(P))) {
                P->oom = 1;
                return -1;
            }
        } else if (value(P, 2)) {
            return -1;
        }
        int more = next(P, ']');
        if (more <= 0) return more;
    }
}

/* The whole text: zero or more top-level objects, each read for its "Records". */
static int document(Parser *P) {
    if (P->end - P->p >= 3 && P->p[0] == 0xEF && P->p[1] == 0xBB && P->p[2] == 0xBF) P->p += 3;
    for (;;) {
        ws(P);
        if (P->p >= P->end) {
            if (P->not_list) { /* the whole text is JSON: now say what is wrong with it */
                P->not_list = 2;
                return fail(P, P->not_list_at, "Records is not a list");
            }
            return 0;
        }
        if (*P->p == '[') {
            if (!P->not_list) P->not_list_at = P->p;
            P->not_list = 1;
            if (value(P, 1)) return -1;
            continue;
        }
        if (*P->p != '{') return fail(P, P->p, "expected an object");
        if (opened(P, '}')) continue;
        for (;;) {
            const uint8_t *s;
            uint32_t n;
            int esc;
            if (key(P, &s, &n, &esc)) return -1;
            static const Spec TOP[] = {{"Records", 7, 0, NULL, 0, 0, 0}};
            if (lookup(TOP, 1, s, n, esc) == 0) {
                if (*P->p == '[') {
                    if (records(P)) return -1;
                } else if (*P->p == 'n') {
                    if (literal(P, "null", 4)) return -1;
                } else {
                    if (!P->not_list) P->not_list_at = P->p;
                    P->not_list = 1;
                    if (value(P, 1)) return -1;
                }
            } else if (value(P, 1)) {
                return -1;
            }
            int more = next(P, '}');
            if (more < 0) return -1;
            if (!more) break;
        }
    }
}

static void release(Parser *P) {
    for (int f = 0; f < NF; f++) {
        free(P->col[f].data);
        free(P->col[f].off);
        free(P->col[f].valid);
    }
    free(P->when);
    free(P->when_valid);
    free(P->scratch);
    free(P->odd.data);
    free(P->odd.off);
    free(P->odd_rows);
    for (int i = 0; i < NE; i++) {
        free(P->dict[i].idx);
        free(P->dict[i].data);
        free(P->dict[i].off);
        free(P->dict[i].hash);
        free(P->dict[i].slot);
    }
}

static PyObject *bytes_of(const void *p, size_t n) {
    return PyBytes_FromStringAndSize(p ? (const char *)p : "", (Py_ssize_t)n);
}

static PyObject *column(Parser *P, Col *c) {
    PyObject *valid = c->nulls ? bytes_of(c->valid, (size_t)(P->rows + 7) / 8) : (Py_INCREF(Py_None), Py_None);
    return Py_BuildValue("(NNNn)", valid, bytes_of(c->off, sizeof(int32_t) * (size_t)(P->rows + 1)),
                         bytes_of(c->data, c->len), c->nulls);
}

/* A DICTIONARY column: (validity or None, int32 indices, null count, int32 offsets, data) of its values. A
   column of nulls alone gets one value, "", so that every index is one of its values. */
static PyObject *dict_column(Parser *P, Col *c, Dict *d) {
    static const int32_t EMPTY[2] = {0, 0};
    PyObject *valid = c->nulls ? bytes_of(c->valid, (size_t)(P->rows + 7) / 8) : (Py_INCREF(Py_None), Py_None);
    return Py_BuildValue("(NNnNN)", valid, bytes_of(d->idx, sizeof(int32_t) * (size_t)P->rows), c->nulls,
                         d->n ? bytes_of(d->off, sizeof(int32_t) * ((size_t)d->n + 1)) : bytes_of(EMPTY, sizeof EMPTY),
                         bytes_of(d->data, d->len));
}

/* After a parse that succeeded: columns that no row grew (no CodeArtifact record) still need their first
   offset. 0, or -1 when out of memory (P->oom set). */
static int columns_ready(Parser *P) {
    if (P->cap_rows == 0 && grow(P)) {
        P->oom = 1;
        return -1;
    }
    return 0;
}

/* The ValueError(message, byte offset in its text, kind[, index of the text when `index` >= 0]) of a failed
   parse. */
static void raise_parse_error(Parser *P, Py_ssize_t index) {
    if (P->oom) {
        PyErr_NoMemory();
        return;
    }
    const char *kind = P->not_list == 2 ? "not_list" : "syntax";
    Py_ssize_t at = (Py_ssize_t)(P->at - P->start);
    PyObject *args = index < 0 ? Py_BuildValue("(sns)", P->msg, at, kind)
                               : Py_BuildValue("(snsn)", P->msg, at, kind, index);
    if (args) {
        PyErr_SetObject(PyExc_ValueError, args);
        Py_DECREF(args);
    }
}

/* What parse (events 0) or events (events 1) return for the rows parsed; `tail` (a new reference, released
   here; NULL for none) is appended to the events tuple. */
static PyObject *result(Parser *P, int events, PyObject *tail) {
    PyObject *out = NULL;
    int n = events ? NE : NF;
    PyObject *cols = PyTuple_New(n);
    if (!cols) goto done;
    for (int f = 0; f < n; f++) {
        PyObject *item = events && DICTIONARY[f] ? dict_column(P, &P->col[f], &P->dict[f]) : column(P, &P->col[f]);
        if (!item) goto done;
        PyTuple_SET_ITEM(cols, f, item);
    }
    if (!events) {
        out = Py_BuildValue("(nnO)", P->rows, P->records, cols);
        goto done;
    }
    PyObject *at = Py_BuildValue("(NNn)",
                                 P->when_nulls ? bytes_of(P->when_valid, (size_t)(P->rows + 7) / 8) : (Py_INCREF(Py_None), Py_None),
                                 bytes_of(P->when, sizeof(int64_t) * (size_t)P->rows), P->when_nulls);
    PyObject *odd = P->n_odd ? Py_BuildValue("(NNNn)", bytes_of(P->odd_rows, sizeof(int32_t) * (size_t)P->n_odd),
                                             bytes_of(P->odd.off, sizeof(int32_t) * (size_t)(P->n_odd + 1)),
                                             bytes_of(P->odd.data, P->odd.len), P->n_odd)
                             : (Py_INCREF(Py_None), Py_None);
    if (at && odd) {
        out = tail ? Py_BuildValue("(nnONNO)", P->rows, P->records, cols, at, odd, tail)
                   : Py_BuildValue("(nnONN)", P->rows, P->records, cols, at, odd);
    } else {
        Py_XDECREF(at);
        Py_XDECREF(odd);
    }
done:
    Py_XDECREF(cols);
    Py_XDECREF(tail);
    return out;
}

static PyObject *run(PyObject *arg, int events) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    Parser *P = calloc(1, sizeof(Parser));
    if (!P) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    P->start = P->p = view.buf;
    P->end = P->start + view.len;
    P->events = events;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = document(P);
    if (rc == 0) rc = columns_ready(P);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    PyObject *out = NULL;
    if (rc) raise_parse_error(P, -1);
    else out = result(P, events, NULL);
    release(P);
    free(P);
    return out;
}

/* events_many(texts): events() over several whole texts (small trail files) in one call, into one set of
   columns (the dictionaries shared), with each text's end row: a file of a few records cost more in the
   Python and Arrow wrapping of its columns than in its parse. A text that fails raises
   ValueError(message, byte offset in that text, kind, its index): the caller parses them one by one. */
static PyObject *events_many(PyObject *self, PyObject *arg) {
    (void)self;
    PyObject *seq = PySequence_Fast(arg, "events_many() takes a sequence of texts");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), got = 0, failed = -1;
    Py_buffer *views = calloc((size_t)(n ? n : 1), sizeof(Py_buffer));
    int64_t *ends = calloc((size_t)(n ? n : 1), sizeof(int64_t));
    Parser *P = calloc(1, sizeof(Parser));
    PyObject *out = NULL;
    if (!views || !ends || !P) {
        PyErr_NoMemory();
        goto done;
    }
    for (; got < n; got++)
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, got), &views[got], PyBUF_SIMPLE) < 0) goto done;
    P->events = 1;
    int rc = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !rc; i++) {
        P->start = P->p = views[i].buf;
        P->end = P->start + views[i].len;
        P->not_list = 0;
        P->not_list_at = NULL;
        rc = document(P);
        if (rc) failed = i;
        else ends[i] = (int64_t)P->rows;
    }
    if (rc == 0) rc = columns_ready(P);
    Py_END_ALLOW_THREADS
    if (rc) {
        raise_parse_error(P, failed);
        goto done;
    }
    out = result(P, 1, bytes_of(ends, sizeof(int64_t) * (size_t)n));
done:
    for (Py_ssize_t i = 0; i < got; i++) PyBuffer_Release(&views[i]);
    free(views);
    free(ends);
    if (P) {
        release(P);
        free(P);
    }
    Py_DECREF(seq);
    return out;
}

static PyObject *parse(PyObject *self, PyObject *arg) {
    (void)self;
    return run(arg, 0);
}

static PyObject *events(PyObject *self, PyObject *arg) {
    (void)self;
    return run(arg, 1);
}

static PyMethodDef METHODS[] = {
    {"parse", parse, METH_O,
     "parse(text) -> (rows, records, columns): the CodeArtifact records of a trail file's JSON text as Arrow "
     "string columns, one (validity or None, int32 offsets, data, null count) per name in FIELDS. Raises "
     "ValueError(message, byte offset, kind) when the text is not valid JSON ('syntax') or its Records is not "
     "a list ('not_list')."},
    {"events", events, METH_O,
     "events(text) -> (rows, records, columns, event_at, odd): the same records normalized as NORMALIZE_SQL does, "
     "one string column per name in EVENTS (a name in DICTIONARY: (validity or None, int32 indices, null "
     "count, int32 offsets, data) of a dictionary array); event_at is (validity or None, int64 microseconds, null count) for "
     "times spelled YYYY-MM-DDTHH:MM:SSZ, and odd, when some other spelling was found, (int32 rows, int32 "
     "offsets, data, count): those texts, whose event_at is NULL here, for the caller's TRY_CAST."},
    {"events_many", events_many, METH_O,
     "events_many(texts) -> (rows, records, columns, event_at, odd, ends): events() over each text of a sequence in "
     "turn, into the same columns; ends is int64 bytes, each text's end row. Raises ValueError(message, byte "
     "offset, kind, index of the text) when a text is not valid."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_ctjson", NULL, -1, METHODS, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__ctjson(void) {
    PyObject *m = PyModule_Create(&MODULE);
    if (!m) return NULL;
    PyObject *names = PyTuple_New(NF);
    if (!names) goto error;
    for (int f = 0; f < NF; f++) PyTuple_SET_ITEM(names, f, PyUnicode_FromString(FIELD_NAMES[f]));
    if (PyModule_AddObject(m, "FIELDS", names) < 0) {
        Py_DECREF(names);
        goto error;
    }
    PyObject *events_names = PyTuple_New(NE);
    if (!events_names) goto error;
    for (int i = 0; i < NE; i++) PyTuple_SET_ITEM(events_names, i, PyUnicode_FromString(EVENT_NAMES[i]));
    if (PyModule_AddObject(m, "EVENTS", events_names) < 0) {
        Py_DECREF(events_names);
        goto error;
    }
    PyObject *dictionary = PyTuple_New(0);
    for (int i = 0; dictionary && i < NE; i++) {
        PyObject *name = DICTIONARY[i] ? PyUnicode_FromString(EVENT_NAMES[i]) : NULL;
        if (name && _PyTuple_Resize(&dictionary, PyTuple_GET_SIZE(dictionary) + 1) == 0)
            PyTuple_SET_ITEM(dictionary, PyTuple_GET_SIZE(dictionary) - 1, name);
        else
            Py_XDECREF(name);
    }
    if (!dictionary || PyModule_AddObject(m, "DICTIONARY", dictionary) < 0) {
        Py_XDECREF(dictionary);
        goto error;
    }
    uint64_t seed;
    if (getentropy(&seed, sizeof seed) == 0) SEED ^= seed;
    return m;
error:
    Py_DECREF(m);
    return NULL;
}
