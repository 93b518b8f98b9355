"""Verifies Stellar's DSSE envelopes with software nobody at Stellar wrote.

1. securesystemslib's DSSE implementation (the one the in-toto reference implementation uses)
   with an ECDSA P-256 key (keytype "ecdsa", scheme "ecdsa-sha2-nistp256").
2. The `cryptography` package's ECDSA verification of the DSSE pre-authentication encoding.

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


def with_cryptography(path: pathlib.Path, pem: bytes, keyid: str) -> str | None:
    public = serialization.load_pem_public_key(pem)
    env = json.loads(path.read_text())
    try:
        payload = base64.b64decode(env["payload"], validate=True)
    except Exception as e:  # noqa: BLE001
        return f"payload: {e}"
    for s in env["signatures"]:
        if s["keyid"] != keyid:
            return f"unknown key id {s['keyid'][:16]}"
        try:
            public.verify(base64.b64decode(s["sig"]), pae(env["payloadType"], payload), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return "signature does not verify"
    return None


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
    ]:
        for verifier, result in [
            ("securesystemslib", with_securesystemslib(d / name, key)),
            ("cryptography", with_cryptography(d / name, pem, keyid)),
        ]:
            ok = result is None
            status = "accepted" if ok else f"rejected ({result})"
            mark = "ok  " if ok == want_ok else "FAIL"
            print(f"{mark} {verifier:16} {name:26} {status}")
            failures += ok != want_ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
