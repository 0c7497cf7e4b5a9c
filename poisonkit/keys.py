"""The owner's secret: keys, the private key file, and what may be published about a key.

- A key is an int in [0, 2^128); the default is 128 random bits from the OS (never 0).
  The kernels' Philox generator takes 64 bits: `philox_key` passes keys below 2^64
  through unchanged (so `ARPoison(key=1234)` and `--key 1234` agree) and folds larger
  ones with keyed BLAKE2b.
- The key file (JSON, mode 0600, written atomically) holds the key and every per-class
  secret parameter a poison needs to be regenerated (AR coefficients, class-wise blur
  kernels, ...). It lives outside the published folder; the owner keeps it.
- Published outputs hold at most `key_check`: scrypt of the key with a random per-dataset
  salt (n=2^14, r=8, p=1: ~0.1 s per guess), which lets the owner match a key file to a
  dataset; with a 128-bit key no guessing reaches it. `key_id` is the same, shortened, for
  eval outputs.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

KEY_BITS = 128
KEY_FILE_FORMAT = "poisonkit-key/1"
SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}


def new_key() -> int:
    """128 random bits from the OS, never 0."""
    while True:
        key = secrets.randbits(KEY_BITS)
        if key:
            return key


def check_key(key) -> int:
    """A key as an int in [0, 2^128); negative keys are refused (-1 and 2^64-1 used to
    give the same poison under different names)."""
    if isinstance(key, bool) or not isinstance(key, int):
        raise TypeError(f"key: expected an int in [0, 2^{KEY_BITS}), got {type(key).__name__}")
    if not 0 <= key < 1 << KEY_BITS:
        raise ValueError(f"key: expected an int in [0, 2^{KEY_BITS}), got {key}")
    return key


def parse_key(text: str) -> int:
    """A key from the command line: decimal or 0x-prefixed hex."""
    try:
        return check_key(int(text, 0))
    except ValueError as e:
        raise ValueError(f"key: expected a decimal or 0x-hex integer in [0, 2^{KEY_BITS}), "
                         f"got {text!r}") from e


def philox_key(key: int) -> int:
    """The 64-bit Philox key the kernels use for `key`."""
    key = check_key(key)
    if key < 1 << 64:
        return key
    digest = hashlib.blake2b(key.to_bytes(16, "big"), digest_size=8,
                             person=b"poisonkit-philox").digest()
    return int.from_bytes(digest, "big")


def derived_seed(key: int, purpose: str, bits: int = 63) -> int:
    """A seed for one parameter draw (coefficients, kernels), a keyed hash of the key, so
    the parameters are as secret as the key and still reproducible from it."""
    digest = hashlib.blake2b(purpose.encode(), key=check_key(key).to_bytes(16, "big"),
                             digest_size=16).digest()
    return int.from_bytes(digest, "big") >> (128 - bits)


def _scrypt(key: int, salt: bytes, length: int) -> bytes:
    return hashlib.scrypt(check_key(key).to_bytes(16, "big"), salt=salt, dklen=length,
                          maxmem=64 << 20, **SCRYPT)


def key_check(key: int, salt: bytes | None = None) -> dict:
    """What a manifest may say about a key: a salted scrypt hash (fresh salt by default)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    return {"kdf": "scrypt", **SCRYPT, "salt": salt.hex(), "hash": _scrypt(key, salt, 16).hex()}


def matches(key: int, check: dict) -> bool:
    """True when `key` is the key a manifest's key_check was made from."""
    expected = _scrypt(key, bytes.fromhex(check["salt"]), len(bytes.fromhex(check["hash"])))
    return hmac.compare_digest(expected.hex(), check["hash"])


def key_id(key, salt: bytes) -> str:
    """A short salted id (8 hex) naming a key (as written in a condition: int or text) in
    eval outputs without revealing it."""
    return hashlib.scrypt(str(key).encode(), salt=salt, dklen=4, maxmem=64 << 20, **SCRYPT).hex()


def write_key_file(path: str | os.PathLike, payload: dict) -> Path:
    """Writes payload (with its 'key' as hex) to path, readable by the owner only: created
    0600 under a temporary name, then renamed over path."""
    path = Path(path)
    record = {"format": KEY_FILE_FORMAT, **payload, "key": hex(check_key(payload["key"]))}
    text = json.dumps(record, indent=1) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_key_file(path: str | os.PathLike) -> dict:
    """The key file's record with 'key' as an int."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"key file: no such file {path}")
    try:
        record = json.loads(path.read_text())
        if record.get("format") != KEY_FILE_FORMAT:
            raise ValueError(f"format {record.get('format')!r}")
        record["key"] = check_key(int(record["key"], 16))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"key file: {path} is not a poisonkit key file ({e})") from None
    return record
