"""Verifies Stellar's DSSE envelopes with software nobody at Stellar wrote.

1. The in-toto reference implementation: `in_toto.models.metadata.Metadata.load` reads our file
   as a DSSE envelope and `verify([key], 1)` checks it (in-toto's `get_payload()` only knows
   link and layout payloads, so it does not parse Statement v1 - the signature check is what
   matters here), and securesystemslib's DSSE `Envelope.verify` directly, with an ECDSA P-256
   key (keytype "ecdsa", scheme "ecdsa-sha2-nistp256").
2. The `cryptography` package's ECDSA verification of the DSSE pre-authentication encoding.
3. The `cryptography` package's ECDSA verification of a signed ledger checkpoint (C2SP signed
   note: key id = first 4 bytes of sha256 over the DER SubjectPublicKeyInfo, DER signature).

Usage: verify_dsse.py DIR   (DIR from `cargo run -p stellar-trust --example interop -- DIR`)
The valid envelope must pass both; every tampered one must fail both.
"""

import base64
import json
import pathlib
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from in_toto.models.metadata import Metadata
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def with_securesystemslib(path: pathlib.Path, key: SSlibKey) -> str | None:
    try:
        env = Envelope.from_dict(json.loads(path.read_text()))
        env.verify([key], 1)
        return None
    except Exception as e:  # noqa: BLE001 - any failure is a rejection
        return f"{type(e).__name__}: {e}"


def with_in_toto(path: pathlib.Path, key: SSlibKey) -> str | None:
    try:
        Metadata.load(str(path)).verify([key], 1)
        return None
    except Exception as e:  # noqa: BLE001 - any failure is a rejection
        return f"{type(e).__name__}: {e}"


def with_cryptography(path: pathlib.Path, pem: bytes, keyid: str) -> str | None:
    public = serialization.load_pem_public_key(pem)
    env = json.loads(path.read_text())
    try:
        payload = base64.b64decode(env["payload"], validate=True)
    except Exception as e:  # noqa: BLE001
        return f"payload: {e}"
    # A verifier counts the signatures it verified: zero is a failure, not a vacuous pass.
    if not env.get("signatures"):
        return "no signature"
    for s in env["signatures"]:
        if s["keyid"] != keyid:
            return f"unknown key id {s['keyid'][:16]}"
        try:
            public.verify(base64.b64decode(s["sig"]), pae(env["payloadType"], payload), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return "signature does not verify"
    return None


def checkpoint_with_cryptography(path: pathlib.Path, pem: bytes) -> str | None:
    public = serialization.load_pem_public_key(pem)
    spki = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    keyid4 = digest.finalize()[:4]
    text = path.read_text()
    body, _, sigs = text.partition("\n\n")
    body += "\n"
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            continue
        _, _, b64 = line[2:].partition(" ")
        blob = base64.b64decode(b64)
        if blob[:4] != keyid4:
            continue
        try:
            public.verify(blob[4:], body.encode(), ec.ECDSA(hashes.SHA256()))
            return None
        except InvalidSignature:
            return "checkpoint signature does not verify"
    return "no signature by the key"


def main() -> int:
    d = pathlib.Path(sys.argv[1])
    pem = (d / "key.pub").read_bytes()
    keyid = (d / "keyid").read_text().strip()
    key = SSlibKey(keyid, "ecdsa", "ecdsa-sha2-nistp256", {"public": pem.decode()})
    failures = 0
    for name, want_ok in [
        ("valid.json", True),
        ("tampered-payload.json", False),
        ("tampered-signature.json", False),
        ("tampered-keyid.json", False),
        ("unsigned.json", False),
    ]:
        for verifier, result in [
            ("in-toto", with_in_toto(d / name, key)),
            ("securesystemslib", with_securesystemslib(d / name, key)),
            ("cryptography", with_cryptography(d / name, pem, keyid)),
        ]:
            ok = result is None
            status = "accepted" if ok else f"rejected ({result})"
            mark = "ok  " if ok == want_ok else "FAIL"
            print(f"{mark} {verifier:16} {name:26} {status}")
            failures += ok != want_ok
    for name, want_ok in [("checkpoint.txt", True), ("checkpoint-forged.txt", False)]:
        result = checkpoint_with_cryptography(d / name, pem)
        ok = result is None
        status = "accepted" if ok else f"rejected ({result})"
        mark = "ok  " if ok == want_ok else "FAIL"
        print(f"{mark} {'cryptography':16} {name:26} {status}")
        failures += ok != want_ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
