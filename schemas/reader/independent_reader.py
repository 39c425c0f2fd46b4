#!/usr/bin/env python3
"""An independent reader of moltlog's persisted formats, written from schemas/FORMAT.md alone.

It shares no code with moltlog-core: its only sources are the document and Python's standard
library. Run against the golden fixtures, it shows that the document is enough to decode and
verify what moltlog stores, and it fails (naming the file and the section) where the document and
the bytes disagree:

    python3 schemas/reader/independent_reader.py schemas/fixtures/v1

Checked: value encoding (§1), variant indices (§2), headers and bodies (§3), frames, the chain,
skeletons, redaction and per-record verification (§4), snapshots and the state layout (§5),
segments (§6), R2 object keys (§7) and the worked example (§10). Every decoded value is encoded
again and must give the stored bytes back (writers emit minimal varints, §1).
"""

import hashlib
import json
import re
import sys
import zlib
from pathlib import Path


class FormatError(Exception):
    pass


# --- §1: values -------------------------------------------------------------------------------


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise FormatError(f"truncated: need {n} bytes at offset {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def varint(self, max_bytes):
        value, shift = 0, 0
        for i in range(max_bytes):
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
        raise FormatError("varint too long")

    def left(self):
        return len(self.data) - self.pos


def put_varint(out, value):
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return


# A type is a tuple: ("u32",) ("u64",) ("bool",) ("str",) ("bytes", n) ("opt", T) ("vec", T)
# ("arr", T, n) ("map", K, V) ("struct", [(name, T)...]) ("enum", [(name, T or None)...]).
U32, U64, BOOL, STR = ("u32",), ("u64",), ("bool",), ("str",)


def bytes_(n):
    return ("bytes", n)


def opt(t):
    return ("opt", t)


def vec(t):
    return ("vec", t)


def struct(*fields):
    return ("struct", list(fields))


def enum(*variants):
    return ("enum", list(variants))


def unit_enum(*names):
    return enum(*[(n, None) for n in names])


def read(t, r):
    tag = t[0]
    if tag == "u32":
        v = r.varint(5)
        if v > 0xFFFFFFFF:
            raise FormatError("u32 out of range")
        return v
    if tag == "u64":
        v = r.varint(10)
        if v > 0xFFFFFFFFFFFFFFFF:
            raise FormatError("u64 out of range")
        return v
    if tag == "bool":
        b = r.take(1)[0]
        if b > 1:
            raise FormatError(f"bool byte {b:#x}")
        return b == 1
    if tag == "str":
        n = r.varint(10)
        try:
            return r.take(n).decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(f"invalid UTF-8: {e}")
    if tag == "bytes":
        return r.take(t[1])
    if tag == "opt":
        b = r.take(1)[0]
        if b == 0:
            return None
        if b == 1:
            return read(t[1], r)
        raise FormatError(f"option tag {b:#x}")
    if tag == "vec":
        return [read(t[1], r) for _ in range(r.varint(10))]
    if tag == "arr":
        return [read(t[1], r) for _ in range(t[2])]
    if tag == "map":
        items = [(read(t[1], r), read(t[2], r)) for _ in range(r.varint(10))]
        keys = [k.encode() if isinstance(k, str) else k for k, _ in items]
        if keys != sorted(keys) or len(set(keys)) != len(keys):
            raise FormatError("map keys not in ascending order")
        return items
    if tag == "struct":
        return {name: read(ft, r) for name, ft in t[1]}
    if tag == "enum":
        idx = r.varint(5)
        if idx >= len(t[1]):
            raise FormatError(f"variant index {idx} past the last of {len(t[1])}")
        name, content = t[1][idx]
        return (name, None if content is None else read(content, r))
    raise AssertionError(tag)


def write(t, v, out):
    tag = t[0]
    if tag in ("u32", "u64"):
        put_varint(out, v)
    elif tag == "bool":
        out.append(1 if v else 0)
    elif tag == "str":
        b = v.encode("utf-8")
        put_varint(out, len(b))
        out.extend(b)
    elif tag == "bytes":
        out.extend(v)
    elif tag == "opt":
        if v is None:
            out.append(0)
        else:
            out.append(1)
            write(t[1], v, out)
    elif tag in ("vec", "map"):
        put_varint(out, len(v))
        for item in v:
            if tag == "vec":
                write(t[1], item, out)
            else:
                write(t[1], item[0], out)
                write(t[2], item[1], out)
    elif tag == "arr":
        for item in v:
            write(t[1], item, out)
    elif tag == "struct":
        for name, ft in t[1]:
            write(ft, v[name], out)
    elif tag == "enum":
        names = [n for n, _ in t[1]]
        idx = names.index(v[0])
        put_varint(out, idx)
        if t[1][idx][1] is not None:
            write(t[1][idx][1], v[1], out)
    else:
        raise AssertionError(tag)


def decode_value(t, data, version=1, what="value"):
    """§1: version byte, then postcard; nothing may be left over."""
    if not data:
        raise FormatError(f"{what}: empty")
    if data[0] != version:
        raise FormatError(f"{what}: version byte {data[0]}, expected {version}")
    r = Reader(data)
    r.take(1)
    v = read(t, r)
    if r.left():
        raise FormatError(f"{what}: {r.left()} bytes left over")
    again = bytearray([version])
    write(t, v, again)
    if bytes(again) != data:
        raise FormatError(f"{what}: re-encoding gives other bytes")
    return v


def encode_value(t, v, version=1):
    out = bytearray([version])
    write(t, v, out)
    return bytes(out)


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


# --- §2, §3: the types ------------------------------------------------------------------------

KINDS = [
    "chat_message",
    "tool_call",
    "tool_result",
    "browser_action",
    "model_call",
    "webhook_received",
    "lifecycle",
    "delivery_receipt",
    "redaction",
]
EVENT_KIND = unit_enum(*KINDS)
ACTOR = unit_enum("system", "runtime", "bridge", "webhook", "operator")
HASH = bytes_(32)
BLOB_REF = struct(("sha256", HASH), ("len", U64), ("content_type", STR))
PAYLOAD = enum(("Inline", STR), ("Blob", BLOB_REF), ("Redacted", None))
ROLE = unit_enum("User", "Assistant", "System")
PLATFORM = enum(("Telegram", None), ("Slack", None), ("Discord", None), ("Web", None), ("Other", STR))
CHANNEL_REF = struct(("platform", PLATFORM), ("chat_id", STR), ("message_id", opt(STR)), ("thread_id", opt(STR)))
ATTACHMENT = struct(("name", opt(STR)), ("blob", BLOB_REF))
BROWSER_ACTION_KIND = unit_enum(
    "Navigate", "Reload", "History", "Click", "Type", "Screenshot", "Evaluate", "CreateTarget", "CloseTarget", "RawCdp"
)
LIFECYCLE = enum(
    ("SessionStarted", struct(("agent", opt(STR)))),
    ("SandboxAttached", struct(("sandbox_id", STR))),
    ("SandboxEvicted", struct(("sandbox_id", opt(STR)), ("reason", STR))),
    ("Restored", struct(("sandbox_id", opt(STR)), ("head_seq", U64))),
    ("Compacted", struct(("summary", PAYLOAD), ("first_kept_seq", U64), ("tokens_before", U64))),
    ("RecoveredFromArchive", struct(("snapshot_seq", opt(U64)), ("segments", U32), ("last_seq", U64))),
    ("RecordsLost", struct(("first_seq", U64), ("last_seq", U64), ("reason", STR))),
)
DELIVERY_OUTCOME = enum(
    ("Delivered", struct(("remote_id", opt(STR)))),
    ("Failed", struct(("error", STR), ("retry_at_ms", U64))),
    ("DeadLettered", struct(("error", STR))),
)
BODIES = [
    struct(
        ("role", ROLE),
        ("channel", opt(CHANNEL_REF)),
        ("author", opt(STR)),
        ("text", PAYLOAD),
        ("attachments", vec(ATTACHMENT)),
    ),
    struct(("call_id", STR), ("tool", STR), ("input", PAYLOAD)),
    struct(("call_id", STR), ("output", PAYLOAD), ("is_error", BOOL), ("duration_ms", opt(U64))),
    struct(
        ("action", BROWSER_ACTION_KIND),
        ("target_id", opt(STR)),
        ("url", opt(STR)),
        ("detail", PAYLOAD),
        ("result", PAYLOAD),
        ("error", opt(STR)),
        ("screenshot", opt(PAYLOAD)),
    ),
    struct(
        ("provider", STR),
        ("model", STR),
        ("input_tokens", U64),
        ("output_tokens", U64),
        ("latency_ms", U64),
        ("stop_reason", opt(STR)),
    ),
    struct(
        ("source", STR),
        ("delivery_id", opt(STR)),
        ("event_type", opt(STR)),
        ("verified", BOOL),
        ("content_type", STR),
        ("payload", PAYLOAD),
    ),
    LIFECYCLE,
    struct(("outbox_seq", U64), ("attempt", U32), ("outcome", DELIVERY_OUTCOME)),
    struct(("target_seq", U64), ("reason", STR)),
]
EVENT_BODY = enum(*zip(KINDS, BODIES))
EVENT_HEADER = struct(
    ("seq", U64),
    ("id", bytes_(16)),
    ("ts_ms", U64),
    ("kind", EVENT_KIND),
    ("actor", ACTOR),
    ("causation", opt(U64)),
    ("idempotency_key", opt(STR)),
    ("body_len", U32),
    ("body_sha256", HASH),
    ("skeleton_sha256", HASH),
)


# --- §4.3: skeletons --------------------------------------------------------------------------

REDACTED = ("Redacted", None)


def skeleton(body):
    """The body with its content erased (§4.3)."""
    kind, b = body
    b = dict(b) if isinstance(b, dict) else b
    if kind == "chat_message":
        b["text"], b["attachments"] = REDACTED, []
    elif kind == "tool_call":
        b["input"] = REDACTED
    elif kind == "tool_result":
        b["output"] = REDACTED
    elif kind == "browser_action":
        b["detail"], b["result"] = REDACTED, REDACTED
        if b["screenshot"] is not None:
            b["screenshot"] = REDACTED
    elif kind == "webhook_received":
        b["payload"] = REDACTED
    elif kind == "lifecycle" and b[0] == "Compacted":
        b = ("Compacted", dict(b[1], summary=REDACTED))
    return (kind, b)


def has_content(body):
    return skeleton(body) != body


# --- §4: records and the chain ----------------------------------------------------------------

CHAIN_TAG = b"moltlog.chain.v1"
GENESIS_TAG = b"moltlog.genesis.v1"
KEY_RE = re.compile(r"^[A-Za-z0-9._:@-]{1,256}$")


def genesis(session_key):
    if not KEY_RE.match(session_key):
        raise FormatError(f"bad session key {session_key!r}")
    return sha256(GENESIS_TAG, session_key.encode())


def check_record(prev_hash, expected_seq, prev_ts_ms, header_bytes, body_bytes, redacted, stored_hash, what):
    """§4.4, in the document's order. Returns (header, body, hash)."""
    h = decode_value(EVENT_HEADER, header_bytes, what=f"{what} header")
    if h["seq"] != expected_seq:
        raise FormatError(f"{what}: seq {h['seq']}, expected {expected_seq}")
    link = sha256(CHAIN_TAG, prev_hash, header_bytes)
    if stored_hash is not None and link != stored_hash:
        raise FormatError(f"{what}: chain hash differs from the stored hash")
    digest = sha256(body_bytes)
    if redacted and h["skeleton_sha256"] == h["body_sha256"]:
        raise FormatError(f"{what}: redacted, but the body has no content")
    if redacted:
        if digest != h["skeleton_sha256"]:
            raise FormatError(f"{what}: skeleton digest")
    else:
        if digest != h["body_sha256"]:
            raise FormatError(f"{what}: body digest")
        if len(body_bytes) != h["body_len"]:
            raise FormatError(f"{what}: body_len")
    body = decode_value(EVENT_BODY, body_bytes, what=f"{what} body")
    if body[0] != h["kind"][0]:
        raise FormatError(f"{what}: body is {body[0]}, header says {h['kind'][0]}")
    if redacted and has_content(body):
        raise FormatError(f"{what}: a redacted body with content")
    if h["ts_ms"] < prev_ts_ms:
        raise FormatError(f"{what}: time went back")
    # The optional check of §4.4: the skeleton of a full body hashes to skeleton_sha256.
    if not redacted and sha256(encode_value(EVENT_BODY, skeleton(body))) != h["skeleton_sha256"]:
        raise FormatError(f"{what}: skeleton_sha256 is not the digest of the body's skeleton")
    return h, body, link


def read_frame(r, what):
    """§4.1."""
    header_bytes = r.take(int.from_bytes(r.take(4), "little"))
    stored_hash = r.take(32)
    flag = r.take(1)[0]
    if flag > 1:
        raise FormatError(f"{what}: redacted flag {flag}")
    body_bytes = r.take(int.from_bytes(r.take(4), "little"))
    return header_bytes, body_bytes, flag == 1, stored_hash


class Log:
    """A whole-log verification (§4.4, last paragraph)."""

    def __init__(self, session_key):
        self.session_key = session_key
        self.prev = genesis(session_key)
        self.seq = 0
        self.ts = 0
        self.stored_redacted = []
        self.named = set()

    def push(self, header_bytes, body_bytes, redacted, stored_hash, what):
        h, body, link = check_record(
            self.prev, self.seq + 1, self.ts, header_bytes, body_bytes, redacted, stored_hash, what
        )
        self.prev, self.seq, self.ts = link, h["seq"], h["ts_ms"]
        if redacted:
            self.stored_redacted.append(h["seq"])
        if body[0] == "redaction":
            self.named.add(body[1]["target_seq"])
        return h, body

    def finish(self):
        unauthorized = [s for s in self.stored_redacted if s not in self.named]
        if unauthorized:
            raise FormatError(f"records stored redacted without a redaction event: {unauthorized}")


# --- §5: snapshots and the state --------------------------------------------------------------

HEAD = struct(("seq", U64), ("hash", HASH))
SANDBOX_STATUS = enum(
    ("Unknown", None),
    ("Attached", struct(("sandbox_id", STR), ("since_ms", U64))),
    ("Detached", struct(("since_ms", U64), ("reason", STR))),
)
OUTBOX_STATUS = unit_enum("Pending", "DeadLettered")
SESSION_STATE = struct(
    ("session_key", STR),
    ("head", HEAD),
    ("last_id", opt(bytes_(16))),
    ("first_ts_ms", U64),
    ("last_ts_ms", U64),
    ("agent", opt(STR)),
    ("transcript", vec(U64)),
    (
        "compaction",
        opt(struct(("seq", U64), ("summary", PAYLOAD), ("first_kept_seq", U64), ("tokens_before", U64))),
    ),
    ("open_tool_calls", ("map", STR, struct(("seq", U64), ("tool", STR), ("input", PAYLOAD)))),
    (
        "browser",
        struct(
            ("targets", ("map", STR, struct(("url", opt(STR)), ("last_seq", U64)))),
            ("current_target", opt(STR)),
            (
                "last_action",
                opt(
                    struct(
                        ("seq", U64),
                        ("ts_ms", U64),
                        ("action", BROWSER_ACTION_KIND),
                        ("target_id", opt(STR)),
                        ("url", opt(STR)),
                        ("error", opt(STR)),
                    )
                ),
            ),
            ("last_screenshot", opt(struct(("seq", U64), ("target_id", opt(STR)), ("image", PAYLOAD)))),
            ("actions", U64),
        ),
    ),
    ("sandbox", SANDBOX_STATUS),
    ("model", opt(struct(("provider", STR), ("model", STR)))),
    (
        "outbox",
        (
            "map",
            U64,
            struct(
                ("channel", CHANNEL_REF),
                ("text", PAYLOAD),
                ("attempts", U32),
                ("next_attempt_ms", U64),
                ("last_error", opt(STR)),
                ("status", OUTBOX_STATUS),
            ),
        ),
    ),
    (
        "counters",
        struct(
            ("by_kind", ("arr", U64, 9)),
            ("input_tokens", U64),
            ("output_tokens", U64),
            ("compactions", U64),
            ("delivered", U64),
            ("dead_lettered", U64),
            ("restores", U64),
            ("recoveries", U64),
        ),
    ),
    ("redacted", vec(U64)),
)
COMPRESSION = unit_enum("None", "Deflate")
SNAPSHOT_HEADER = struct(
    ("session_key", STR),
    ("seq", U64),
    ("head_hash", HASH),
    ("state_sha256", HASH),
    ("state_len", U64),
    ("compression", COMPRESSION),
    ("created_ms", U64),
)
STATE_VERSION = 2


def framed(r):
    return r.take(int.from_bytes(r.take(4), "little"))


def read_snapshot(data, session_key, what):
    if len(data) < 32 or sha256(data[:-32]) != data[-32:]:
        raise FormatError(f"{what}: trailing digest")
    r = Reader(data[:-32])
    if r.take(8) != b"MOLTSNAP":
        raise FormatError(f"{what}: magic")
    if r.take(1) != b"\x01":
        raise FormatError(f"{what}: version")
    h = decode_value(SNAPSHOT_HEADER, framed(r), what=f"{what} header")
    payload = framed(r)
    if r.left():
        raise FormatError(f"{what}: bytes after the payload")
    if h["session_key"] != session_key:
        raise FormatError(f"{what}: another session")
    if h["state_len"] > 1 << 30:
        raise FormatError(f"{what}: state_len")
    if h["compression"][0] == "Deflate":
        d = zlib.decompressobj(-15)  # raw DEFLATE, RFC 1951
        state_bytes = d.decompress(payload, h["state_len"] + 1)
    else:
        state_bytes = payload
    if len(state_bytes) != h["state_len"]:
        raise FormatError(f"{what}: state length")
    if sha256(state_bytes) != h["state_sha256"]:
        raise FormatError(f"{what}: state digest")
    state = decode_value(SESSION_STATE, state_bytes, version=STATE_VERSION, what=f"{what} state")
    if (state["head"]["seq"], state["head"]["hash"]) != (h["seq"], h["head_hash"]):
        raise FormatError(f"{what}: the state's head is not the header's")
    if state["session_key"] != h["session_key"]:
        raise FormatError(f"{what}: the state's session is not the header's")
    return h, state, state_bytes


# --- §6: segments -----------------------------------------------------------------------------

SEGMENT_HEADER = struct(
    ("session_key", STR),
    ("first_seq", U64),
    ("last_seq", U64),
    ("prev_hash", HASH),
    ("last_hash", HASH),
    ("count", U64),
    ("first_ts_ms", U64),
    ("last_ts_ms", U64),
    ("created_ms", U64),
)


def read_segment(data, session_key, prev_hash, what):
    r = Reader(data)
    if r.take(8) != b"MOLTSEGM" or r.take(1) != b"\x01":
        raise FormatError(f"{what}: magic or version")
    h = decode_value(SEGMENT_HEADER, framed(r), what=f"{what} header")
    if h["session_key"] != session_key:
        raise FormatError(f"{what}: another session")
    if h["prev_hash"] != prev_hash:
        raise FormatError(f"{what}: does not chain to its predecessor")
    log = Log(session_key)
    log.prev, log.seq = h["prev_hash"], h["first_seq"] - 1
    last = None
    while r.left() > 32:
        last = log.push(*read_frame(r, f"{what} seq {log.seq + 1}"), what=f"{what} seq {log.seq + 1}")
    count = log.seq - h["first_seq"] + 1
    if count != h["count"] or log.seq != h["last_seq"] or log.prev != h["last_hash"]:
        raise FormatError(f"{what}: count, last_seq or last_hash")
    if last and (h["first_ts_ms"] > h["last_ts_ms"] or last[0]["ts_ms"] != h["last_ts_ms"]):
        raise FormatError(f"{what}: timestamps")
    if sha256(data[:-32]) != data[-32:]:
        raise FormatError(f"{what}: trailing digest")
    return h, log


# --- the fixtures -----------------------------------------------------------------------------

SEGMENT_KEY = re.compile(r"^sessions/(?P<key>[A-Za-z0-9._:@-]+)/segments/(\d{20})-(\d{20})(\.g(\d+))?\.seg$")
SNAPSHOT_KEY = re.compile(r"^sessions/(?P<key>[A-Za-z0-9._:@-]+)/snapshots/(\d{20})\.snap$")
BLOB_KEY = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")


def check_fixtures(root):
    root = Path(root)
    manifest = json.loads((root / "manifest.json").read_text())
    key = manifest["session_key"]
    checked = []

    if genesis(key).hex() != manifest["genesis"]:
        raise FormatError("§4.2: genesis")

    for path, f in manifest["files"].items():
        data = (root / path).read_bytes()
        if len(data) != f["len"] or hashlib.sha256(data).hexdigest() != f["sha256"]:
            raise FormatError(f"manifest: {path} length or digest")
    checked.append(f"{len(manifest['files'])} files match the manifest")

    records = manifest["records"]
    if len(records) != len(list((root / "records").glob("*.header.bin"))):
        raise FormatError("manifest: not every record fixture is listed")
    for rec in records:
        stem = root / "records" / rec["name"]
        h, _, link = check_record(
            genesis(key),
            1,
            0,
            stem.with_name(f"{rec['name']}.header.bin").read_bytes(),
            stem.with_name(f"{rec['name']}.body.bin").read_bytes(),
            rec["redacted"],
            None,
            f"records/{rec['name']}",
        )
        if link.hex() != rec["hash"] or h["kind"][0] != rec["kind"] or h["actor"][0] != rec["actor"]:
            raise FormatError(f"records/{rec['name']}: hash, kind or actor differ from the manifest")
    checked.append(f"{len(records)} single records (§3, §4.4)")

    log = Log(key)
    chain = manifest["chain"]["records"]
    for rec in chain:
        stem = root / "chain" / f"{rec['seq']:04}"
        h, _ = log.push(
            (stem.parent / f"{stem.name}.header.bin").read_bytes(),
            (stem.parent / f"{stem.name}.body.bin").read_bytes(),
            rec["redacted"],
            bytes.fromhex(rec["hash"]),
            f"chain/{rec['seq']:04}",
        )
        if h["kind"][0] != rec["kind"] or h["actor"][0] != rec["actor"]:
            raise FormatError(f"chain/{rec['seq']:04}: kind or actor")
    log.finish()
    head = manifest["chain"]["head"]
    if (log.seq, log.prev.hex()) != (head["seq"], head["hash"]):
        raise FormatError("chain: head")
    checked.append(f"a {log.seq}-record chain from genesis, redactions authorised (§4)")

    state_bytes = (root / "state.bin").read_bytes()
    state = decode_value(SESSION_STATE, state_bytes, version=STATE_VERSION, what="state.bin")
    if (state["head"]["seq"], state["head"]["hash"].hex()) != (head["seq"], head["hash"]):
        raise FormatError("state.bin: head")
    if state["redacted"] != log.stored_redacted:
        raise FormatError("state.bin: redacted seqs")
    for name in ("snapshot.bin", "snapshot-deflate.bin"):
        _, _, s_bytes = read_snapshot((root / name).read_bytes(), key, name)
        if s_bytes != state_bytes:
            raise FormatError(f"{name}: its state is not state.bin")
    checked.append("state.bin and both snapshots (§5)")

    seg_header, seg_log = read_segment((root / "segment.bin").read_bytes(), key, genesis(key), "segment.bin")
    if (seg_header["first_seq"], seg_log.seq, seg_log.prev) != (1, log.seq, log.prev):
        raise FormatError("segment.bin: does not hold the chain")
    checked.append("segment.bin (§6)")

    for name, pattern in (("segment", SEGMENT_KEY), ("snapshot", SNAPSHOT_KEY), ("blob", BLOB_KEY)):
        object_key = manifest[name] if name != "blob" else manifest["chain"]["blobs"][0]
        object_key = object_key["object_key"]
        m = pattern.match(object_key)
        if not m or (name != "blob" and m.group("key") != key):
            raise FormatError(f"§7: {name} key {object_key!r}")
    blob = manifest["chain"]["blobs"][0]
    if hashlib.sha256((root / blob["file"]).read_bytes()).hexdigest() != BLOB_KEY.match(blob["object_key"]).group(1):
        raise FormatError("§7: the blob's key is not its content's digest")
    checked.append("R2 object keys (§7)")

    r4 = decode_value(EVENT_HEADER, (root / "chain" / "0004.header.bin").read_bytes(), what="chain/0004")
    example = (r4["seq"], r4["ts_ms"], r4["kind"][0], r4["actor"][0], r4["causation"], r4["body_len"])
    if example != (4, 1767225604000, "model_call", "runtime", 3, 45):
        raise FormatError(f"§10: the worked example reads {example}")
    checked.append("the worked example (§10)")
    return checked


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0])
        print("usage: independent_reader.py FIXTURES_DIR")
        return 2
    try:
        for line in check_fixtures(argv[1]):
            print(f"ok: {line}")
    except (FormatError, KeyError, OSError) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
