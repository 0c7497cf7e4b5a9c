"""poisonkit.keys: 128-bit OS-random keys, one canonical form per key, the private key
file, and the salted slow check that is all a manifest may hold."""
import json
import os
import stat

import pytest

from poisonkit import keys


def test_new_keys_are_128_random_bits():
    drawn = {keys.new_key() for _ in range(64)}
    assert len(drawn) == 64 and 0 not in drawn
    assert max(k.bit_length() for k in drawn) > 120 and all(k < 1 << 128 for k in drawn)


def test_one_canonical_form_per_key():
    assert keys.parse_key("1234") == 1234 and keys.parse_key("0xff") == 255
    for bad in (-1, 1 << 128, True):
        with pytest.raises((ValueError, TypeError), match="key"):
            keys.check_key(bad)
    with pytest.raises(ValueError, match="key"):
        keys.parse_key("12ab")
    assert keys.philox_key(1234) == 1234 and keys.philox_key((1 << 64) - 1) == (1 << 64) - 1
    folded = {keys.philox_key((1 << 64) + i) for i in range(100)}
    assert len(folded) == 100 and all(0 <= k < 1 << 64 for k in folded)


def test_key_check_is_salted():
    a, b = keys.key_check(7), keys.key_check(7)
    assert a["salt"] != b["salt"] and a["hash"] != b["hash"]  # per-dataset salt
    assert keys.matches(7, a) and keys.matches(7, b) and not keys.matches(8, a)
    assert keys.key_id(7, b"s") == keys.key_id(7, b"s") != keys.key_id(7, b"t")


def test_key_file_is_private_and_round_trips(tmp_path):
    path = keys.write_key_file(tmp_path / "k" / "a.key.json", {"key": 1 << 100, "x": [1.5]})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    record = keys.read_key_file(path)
    assert record["key"] == 1 << 100 and record["x"] == [1.5]
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.key.json"]
    (tmp_path / "other.json").write_text(json.dumps({"key": "0x1"}))
    with pytest.raises(ValueError, match="not a poisonkit key file"):
        keys.read_key_file(tmp_path / "other.json")
    with pytest.raises(FileNotFoundError, match="key file"):
        keys.read_key_file(tmp_path / "missing.json")
