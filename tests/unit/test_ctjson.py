"""The native trail-file decoder (collectors/_ctjson.c) against Python's json module, on generated documents.

- Every CodeArtifact record of a valid document comes out, in order, with each field as json.loads reads it:
  a string as itself, null or a missing key as NULL, any other value as its JSON text, and a nested group
  that is not an object as NULLs. Records of other services and elements that are not objects are left out.
- A text json.loads rejects is rejected, with the byte where it stopped; one it accepts is accepted. Texts
  are cut, spliced and corrupted from valid documents, so the errors sit anywhere in them.
- The events the collector stores (the decoder's normalized columns) are NORMALIZE_SQL's over the same
  records: key spellings, npm scopes, the asset from the request URI, and every eventTime spelling (the
  decoder reads CloudTrail's own, DuckDB the others).
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from collectors import _ctjson
from collectors.cloudtrail_load import (
    EVENT_COLUMNS,
    NORMALIZE_SQL,
    RECORD_FIELDS,
    BadTrailFile,
    decode_records,
    parse_many,
    parse_text,
)
from tests.fixtures.hostile import HOSTILE

CA = "codeartifact.amazonaws.com"
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOP = [k for k, v in RECORD_FIELDS.items() if isinstance(v, str)]
GROUPS = {k: list(v) for k, v in RECORD_FIELDS.items() if isinstance(v, dict)}

texts = st.sampled_from(list(HOSTILE.values())) | st.text(max_size=12) | st.sampled_from(["", "\u2028", "\U0001f600"])
values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=6)


@st.composite
def records(draw: Any) -> Any:
    """A record with some of caa's fields (any JSON in them), unknown keys, and sometimes not an object."""
    if draw(st.integers(0, 9)) == 0:
        return draw(values)
    rec: dict = {}
    for k in draw(st.lists(st.sampled_from(TOP + list(GROUPS)), unique=True, max_size=8)):
        if k in GROUPS and draw(st.booleans()):
            rec[k] = {f: draw(values) for f in draw(st.lists(st.sampled_from(GROUPS[k]), unique=True, max_size=4))}
            rec[k].update(draw(st.dictionaries(texts, values, max_size=2)))
        else:
            rec[k] = draw(values)
    rec.update(draw(st.dictionaries(texts.filter(lambda k: k not in RECORD_FIELDS), values, max_size=2)))
    if draw(st.integers(0, 3)):
        rec["eventSource"] = CA
    return rec


@st.composite
def documents(draw: Any) -> tuple[bytes, list]:
    recs = draw(st.lists(records(), max_size=6))
    doc = {"Records": recs, **draw(st.dictionaries(st.sampled_from(["extra", "Other"]), values, max_size=1))}
    ascii_only, indent = draw(st.booleans()), draw(st.sampled_from([None, 0, 2, "\t"]))
    text = json.dumps(doc, ensure_ascii=ascii_only, indent=indent)
    if draw(st.booleans()):
        text = text.replace("/", "\\/")  # an escaped solidus is still a solidus
    return text.encode(), recs


def rows_of(arr: Any) -> list[dict]:
    return arr.to_pylist()


def same(got: str | None, want: Any, present: bool) -> bool:
    if not present or want is None:
        return got is None
    if isinstance(want, str):
        return got == want
    return got is not None and json.loads(got) == want


@PROPS
@given(doc=documents())
def test_every_codeartifact_record_comes_out_in_order_with_each_field_as_json_reads_it(doc):
    text, recs = doc
    kept = [r for r in recs if isinstance(r, dict) and r.get("eventSource") == CA]
    got = rows_of(decode_records(text))
    assert len(got) == len(kept)
    for row, rec in zip(got, kept, strict=True):
        for k in TOP:
            assert same(row[k], rec.get(k), k in rec), (k, row[k], rec.get(k))
        for g, fields in GROUPS.items():
            sub = rec.get(g)
            for f in fields:
                if isinstance(sub, dict):
                    assert same(row[g][f], sub.get(f), f in sub), (g, f, row[g][f], sub.get(f))
                else:
                    assert row[g][f] is None


def python_verdict(text: bytes) -> str:
    """'ok', 'not_list' or 'bad', as json.loads (strict, no NaN) sees a single trail document."""
    try:
        doc = json.loads(text.decode("utf-8"), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except UnicodeDecodeError:
        return "bad"
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # several top-level objects: the decoder reads each (concatenated members)
            return "skip"
        return "bad" if text.strip() else "ok"  # an empty text is a trail file with no records
    except ValueError:
        return "bad"
    if isinstance(doc, list) or (isinstance(doc, dict) and not isinstance(doc.get("Records"), list | None)):
        return "not_list"
    if not isinstance(doc, dict):
        return "bad"
    return "ok"


@st.composite
def damaged(draw: Any) -> bytes:
    text, _ = draw(documents())
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        how = draw(st.sampled_from(["cut", "insert", "replace", "delete"]))
        junk = draw(st.sampled_from([b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"\\u12", b"\\ud800", b"\\x",
                                     b"\x00", b"\x1f", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                                     b"-", b"01", b"1.", b"1e", b"tru", b"nul", b"NaN", b" ", b"\t", b"\xef\xbb\xbf"]))
        if how == "cut":
            text = text[:at]
        elif how == "insert":
            text = text[:at] + junk + text[at:]
        elif how == "replace":
            text = text[:at] + junk + text[at + len(junk):]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 8)):]
    return text


@PROPS
@given(text=damaged())
def test_a_text_is_rejected_exactly_when_json_rejects_it(text):
    verdict = python_verdict(text)
    assume(verdict != "skip" and not text.startswith(b"\xef\xbb\xbf"))  # Python's json refuses a BOM; CloudTrail sends none
    try:
        parse_text(text)
        got = "ok"
    except BadTrailFile as e:
        got = "not_list" if "Records is not a list" in str(e) else "bad"
    assert got == verdict, text


def test_the_error_names_the_byte_where_the_text_stops_being_json():
    good = b'{"Records": [{"eventSource": "codeartifact.amazonaws.com", "eventID": "a"}]}'
    with pytest.raises(ValueError) as e:
        _ctjson.parse(good[:40] + b"\x01" + good[41:])
    assert e.value.args == ("control character in a string", 40, "syntax")
    cut = good[:-3] + b",}]}"  # a trailing comma: the '}' after it is where the text stops being JSON
    at = len(good) - 2
    with pytest.raises(BadTrailFile, match=f"^not valid CloudTrail JSON at byte {at} of the uncompressed file: "
                                           "expected a key$"):
        parse_text(cut)
    with pytest.raises(BadTrailFile, match="^its Records is not a list of events$"):
        parse_text(b'{"Records": {"eventID": "x"}}')
    with pytest.raises(BadTrailFile, match="invalid UTF-8"):
        parse_text(good.replace(b'"a"', b'"\xff\xfe"'))


def test_escapes_surrogates_and_concatenated_documents():
    rec = {"eventSource": CA, "eventID": "\U0001f600 \u00e9\t\"\\/", "userAgent": "x"}
    text = json.dumps({"Records": [rec]}).encode()  # \ud83d\ude00 as a surrogate pair
    lone = text.replace(b'"userAgent": "x"', b'"userAgent": "a\\ud800b\\udc00c"')
    ((row,), (other,)) = (rows_of(decode_records(text)), rows_of(decode_records(lone)))
    assert row["eventID"] == rec["eventID"] and other["userAgent"] == "a\ufffdb\ufffdc"
    # Two whole documents in one text (two gzip members of whole files): both are read.
    assert [r["eventID"] for r in rows_of(decode_records(text + b"\n" + text))] == [rec["eventID"]] * 2
    # Deep nesting in an unknown field is checked without exhausting the stack.
    deep = b'{"Records": [{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]}"
    with pytest.raises(BadTrailFile, match="nested too deeply"):
        parse_text(deep)


# -- events mode: the normalized columns against NORMALIZE_SQL over the same records ------------------------

scoped = st.sampled_from(["@scope/pkg", "@@a/b/c", "@/x", "@", "@scope", "plain", "a/@b", "", "é/@x", "@é/ü"])
uris = st.sampled_from(["/npm/r/lodash/-/lodash-1.0.0.tgz", "/maven/r/g/a/1.0/maven-metadata.xml.sha1", "/x/1.0",
                        "/", "", "no-slash", "/a/b/", "/pypi/r/simple/p/\nline", "/a/\u00e9\u20ac"]) | texts
words = texts | st.none() | st.integers(-5, 5) | st.lists(st.integers(0, 3) | texts, max_size=2) \
    | st.dictionaries(texts, st.integers(0, 3) | texts, max_size=2)
times = st.sampled_from(["2026-11-03T12:00:00Z", "2024-02-29T23:59:59Z", "2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
                         "2026-11-03T24:00:00Z", "2026-11-03T12:00:60Z", "2026-11-03 12:00:00", "2026-11-03",
                         "2026-11-03T12:00:00.123456Z", "2026-11-03T12:00:00+05:30", "0001-01-01T00:00:00Z",
                         "9999-12-31T23:59:59Z", "yesterday", "", "infinity", "-infinity", "INF",
                         "0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "-0001-01-01"]) | st.none() \
    | st.integers(0, 2 * 10**9)


@st.composite
def ca_records(draw: Any) -> dict:
    params = {k: draw(words) for k in draw(st.lists(st.sampled_from(GROUPS["requestParameters"]), unique=True))}
    for k in ("packageName", "package", "packageNamespace", "namespace"):
        if k in params and draw(st.booleans()):
            params[k] = draw(scoped)
    rec = {"eventSource": CA, "eventTime": draw(times), "requestParameters": params,
           "additionalEventData": {"requestUri": draw(uris)} if draw(st.booleans()) else draw(words),
           **{k: draw(words) for k in draw(st.lists(st.sampled_from(TOP[:3] + TOP[4:]), unique=True))}}
    if "packageVersion" in params and draw(st.booleans()) and isinstance(rec["additionalEventData"], dict):
        rec["additionalEventData"]["requestUri"] = f"/npm/r/p/{params['packageVersion']}"  # a last segment == version
    if draw(st.booleans()):
        rec["userIdentity"] = {k: draw(words) for k in GROUPS["userIdentity"]}
    return rec


def sql_normalized(con: Any, text: bytes) -> list[tuple]:
    records = decode_records(text)
    con.register("recs", pa.Table.from_arrays([pa.array(["f"] * len(records)), records], names=["filename", "r"]))
    try:
        return con.execute(f"SELECT {EVENT_COLUMNS} FROM (" + NORMALIZE_SQL.format(
            source="SELECT filename, r FROM recs", extra="", extra_in="") + ")").fetchall()
    finally:
        con.unregister("recs")


@pytest.fixture(scope="module")
def duck():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    yield con
    con.close()


@PROPS
@given(recs=st.lists(ca_records(), min_size=1, max_size=5), ascii_only=st.booleans())
def test_the_decoders_normalized_columns_are_normalize_sqls(duck, recs, ascii_only):
    text = json.dumps({"Records": recs}, ensure_ascii=ascii_only).encode()
    duck.register("got", parse_text(text))
    try:
        got = duck.execute(f"SELECT {EVENT_COLUMNS} FROM got").fetchall()
    finally:
        duck.unregister("got")
    assert got == sql_normalized(duck, text)


def test_a_file_of_thousands_of_distinct_values_keeps_every_rows_own_value(duck):
    """The columns whose values repeat within a file come out as dictionaries (_ctjson.DICTIONARY), built as the
    decoder reads: a file with thousands of distinct values in each, near-identical ones (a shared prefix,
    a last byte apart, past the hash's 8-byte words, "" beside null), hostile names and columns of nulls
    alone gives every row its own value, as NORMALIZE_SQL reads the same records, and the stored rows."""
    hostile = list(HOSTILE.values())
    recs = []
    for i in range(6000):
        k = (i * 7919) % 2500  # values come back out of order, and most of them many times
        recs.append({
            "eventSource": CA, "eventID": f"id-{i}", "eventTime": "2026-11-03T12:00:00Z",
            "eventName": ["ReadFromRepository", "GetAuthorizationToken", ""][k % 3],
            "awsRegion": f"region-{k % 40}", "sourceIPAddress": f"10.{k // 250}.{k % 250}.{k % 7}",
            "userAgent": "npm/10.2.4 node/v20.11.0 linux x64 workspaces/false ci/github-actions " + "x" * (k % 19),
            "errorCode": None if k % 5 else hostile[k % len(hostile)],
            "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::1:assumed-role/ci/{k}" if k % 11 else ""},
            "requestParameters": {"domainName": f"d{k % 3}", "domainOwner": "111122223333",
                                  "repositoryName": hostile[k % len(hostile)], "packageFormat": "npm",
                                  "packageName": f"@scope-{k % 97}/pkg-{k}", "packageVersion": "1.0.0"},
        })
    text = json.dumps({"Records": recs}).encode()
    decoded = parse_text(text)
    assert all(pa.types.is_dictionary(decoded.schema.field(c).type) for c in _ctjson.DICTIONARY)
    assert len(set(decoded.column("package").to_pylist())) == 2500
    keys = [(i * 7919) % 2500 for i in range(12)]
    assert decoded.column("namespace").to_pylist()[:12] == [f"scope-{k % 97}" for k in keys]
    assert decoded.column("principal_arn").to_pylist()[:12] == [f"arn:aws:sts::1:assumed-role/ci/{k}" if k % 11 else ""
                                                               for k in keys]
    duck.register("got", decoded)
    try:
        got = duck.execute(f"SELECT {EVENT_COLUMNS} FROM got").fetchall()
    finally:
        duck.unregister("got")
    assert got == sql_normalized(duck, text)


@PROPS
@given(docs=st.lists(st.lists(ca_records(), max_size=4), min_size=1, max_size=6), ascii_only=st.booleans(),
       bad=st.integers(-1, 5))
def test_small_files_decoded_together_are_each_file_decoded_alone_in_turn(docs, ascii_only, bad):
    """collectors/cloudtrail_load.py decode_group: consecutive small trail files go through the decoder in one
    call (parse_many); their events, in order, and each file's count must be what decoding each file gives,
    and a file that is not valid anywhere in the group fails the call with its index."""
    texts = [json.dumps({"Records": recs}, ensure_ascii=ascii_only).encode() for recs in docs]
    if 0 <= bad < len(texts):
        texts[bad] = texts[bad][:-1]  # the file's last byte lost: no longer JSON
        with pytest.raises(ValueError) as e:
            parse_many(texts)
        assert e.value.args[3] == bad
        return
    together, counts = parse_many(texts)
    alone = [parse_text(text) for text in texts]
    assert counts == [a.num_rows for a in alone]
    assert together.schema == alone[0].schema
    assert plain(together).equals(plain(pa.concat_tables(alone)))


def plain(table: pa.Table) -> pa.Table:
    """`table` with its dictionaries as text and its times as microseconds (an eventTime past year 9999 has
    no Python datetime), in one chunk: equal when the values are."""
    return pa.table({f.name: table.column(f.name).cast(
        pa.string() if pa.types.is_dictionary(f.type) else pa.int64() if pa.types.is_timestamp(f.type) else f.type)
        for f in table.schema}).combine_chunks()
