"""The budgeted zip reader: what zipfile writes reads back; what it would trust is refused."""

import struct
import zipfile

import pytest

from relunet._archive import Archive, ArchiveError

PAYLOAD = {"a.npy": b"hello " * 1000, "b.npy": bytes(range(256)) * 40, "c.npy": b""}


def _write(path, compression=zipfile.ZIP_STORED, members=PAYLOAD):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _read_all(path):
    with Archive(path) as archive:
        archive.read_directory()
        return {name: b"".join(archive.chunks(name)) for name in archive.members}


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_reads_back_what_zipfile_writes(tmp_path, compression):
    assert _read_all(_write(tmp_path / "z.zip", compression)) == PAYLOAD


def test_zip64_records_are_read(tmp_path, monkeypatch):
    # zipfile writes Zip64 sizes, offsets and end records past ZIP64_LIMIT: lower it to 1 KiB
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1024)
    path = _write(tmp_path / "z64.zip")
    raw = path.read_bytes()
    assert b"PK\x06\x06" in raw and b"PK\x06\x07" in raw  # the Zip64 end record and locator
    monkeypatch.undo()
    assert _read_all(path) == PAYLOAD


def test_prefix_reads_only_the_start(tmp_path):
    path = _write(tmp_path / "z.zip", zipfile.ZIP_DEFLATED)
    with Archive(path) as archive:
        archive.read_directory()
        assert archive.prefix("a.npy", 9) == b"hello hel"


def _patched(path, out, find, offset, fmt, value):
    raw = bytearray(path.read_bytes())
    at = raw.index(find)
    struct.pack_into(fmt, raw, at + offset, *(value if isinstance(value, tuple) else (value,)))
    out.write_bytes(bytes(raw))
    return out


@pytest.mark.parametrize("case, match", [
    ("crc", "CRC-32 mismatch"),
    ("encrypted", "encrypted member"),
    ("overlap", "overlap"),
    ("local-name", "names another file"),
    ("trailing", "bytes after its zip end record"),
    ("short", "holding 6,000 bytes where its directory entry declares 6,001"),
])
def test_damaged_or_deceptive_archives_are_refused(tmp_path, case, match):
    path = _write(tmp_path / "z.zip")
    bad = tmp_path / "bad.zip"
    central = b"PK\x01\x02"
    if case == "crc":  # the CRC-32 of a.npy in its directory entry
        _patched(path, bad, central, 16, "<I", 12345)
    elif case == "encrypted":  # general-purpose flag bit 0
        _patched(path, bad, central, 8, "<H", 1)
    elif case == "overlap":  # a.npy's stored data claimed to run into b.npy's
        _patched(path, bad, central, 20, "<II", (6100, 6100))
    elif case == "local-name":
        raw = bytearray(path.read_bytes())
        raw[30:35] = b"x.npy"  # a.npy's local header now names x.npy
        bad.write_bytes(bytes(raw))
    elif case == "trailing":
        bad.write_bytes(path.read_bytes() + b"junk")
    else:  # a deflate stream that ends one byte before the size its entry declares
        deflated = _write(tmp_path / "d.zip", zipfile.ZIP_DEFLATED)
        _patched(deflated, bad, central, 24, "<I", 6001)
    with pytest.raises(ArchiveError, match=match):
        _read_all(bad)
