"""A zip reader with budgets, for model files that may be hostile.

``zipfile`` trusts the archive: it inflates a member before anyone can check its size, accepts
bzip2 and LZMA (whose small inputs can take gigabytes and minutes), lets a later member of the
same name win, and opens whatever path it is given (a FIFO blocks forever).  This reader
checks the whole zip directory before it reads a byte of data:

* only a regular file is opened (``O_NONBLOCK``, then ``fstat``: a FIFO, device or socket is
  refused without waiting for a writer);
* the end-of-central-directory record (also its Zip64 form) must sit at the end of the file,
  the directory inside the file, at most ``max_members`` entries of at most ``max_directory``
  bytes in all;
* every member is stored or deflated (no bzip2/LZMA/encryption), named once, its local header
  agrees with its directory entry, and its data lie inside the file without overlapping another
  member's (the overlapping "better zip bomb");
* a stored member's size equals its compressed size; a deflated one may declare at most
  ``max_ratio`` times its compressed size (plus 64 KiB);
* while reading, a member never yields more bytes than its directory entry declares, must
  yield exactly that many, and must match its CRC-32.

So what a caller can be made to allocate is the sizes the directory declares, which the caller
checks against what it expects before reading.  Errors are :class:`ArchiveError` without the
file name (the caller adds it).  The zip format: PKWARE's APPNOTE.TXT, sections 4.3-4.5.
"""

from __future__ import annotations

import itertools
import os
import stat
import struct
import zlib

__all__ = ["Archive", "ArchiveError", "Member"]

STORED, DEFLATED = 0, 8
_CHUNK = 1 << 20  # bytes read or inflated at a time

_EOCD = struct.Struct("<4sHHHHIIH")  # end of central directory, APPNOTE 4.3.16
_EOCD64_LOCATOR = struct.Struct("<4sIQI")  # 4.3.15
_EOCD64 = struct.Struct("<4sQHHIIQQQQ")  # 4.3.14
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")  # central directory header, 4.3.12
_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # local file header, 4.3.7


class ArchiveError(ValueError):
    """The archive is damaged, unsupported, or exceeds a budget (message without the path)."""


class Member:
    """One checked directory entry: ``name``, ``method``, ``crc``, ``compressed_size``,
    ``size`` (uncompressed) and ``data_offset`` (where its compressed bytes start)."""

    __slots__ = ("name", "raw_name", "method", "crc", "compressed_size", "size",
                 "header_offset", "data_offset")

    def __init__(self, name, raw_name, method, crc, compressed_size, size, header_offset):
        self.name, self.raw_name, self.method, self.crc = name, raw_name, method, crc
        self.compressed_size, self.size, self.header_offset = compressed_size, size, header_offset
        self.data_offset = None


def _kind(mode):
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


class Archive:
    """A zip archive opened for bounded reading.

    Parameters
    ----------
    path : str or os.PathLike
        Must name a regular file (checked on the open descriptor, without blocking).
    max_members : int
        Most directory entries accepted.
    max_directory : int
        Most bytes of central directory accepted.
    max_ratio : int
        Most a deflated member may declare to inflate to, per compressed byte (plus 64 KiB).

    Raises
    ------
    FileNotFoundError, PermissionError, IsADirectoryError
        As ``open`` raises them.
    ArchiveError
        Not a regular file; not a zip archive; a directory or member outside the budgets.

    Attributes
    ----------
    members : dict of str to Member
        In directory order.
    size : int
        The file's size in bytes.
    identity : tuple
        ``(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)`` of the opened file.
    """

    def __init__(self, path, *, max_members=1024, max_directory=1 << 20, max_ratio=32):
        self.max_members, self.max_directory, self.max_ratio = max_members, max_directory, max_ratio
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(os.fspath(path), flags | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                if stat.S_ISDIR(st.st_mode):
                    raise IsADirectoryError(21, "Is a directory", os.fspath(path))
                raise ArchiveError(f"is {_kind(st.st_mode)}, not a regular file")
            self._fh = open(fd, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        except BaseException:
            os.close(fd)
            raise
        self.size = st.st_size
        self.identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        self.members = {}

    # -------------------------------------------------------------------- plumbing
    def close(self):
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _read_at(self, offset, n):
        if offset < 0 or offset + n > self.size:
            raise ArchiveError("truncated (a record points past the end of the file)")
        self._fh.seek(offset)
        chunks, left = [], n
        while left:
            chunk = self._fh.read(left)
            if not chunk:
                raise ArchiveError("truncated (the file ended while reading it)")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def head(self, n):
        """The first ``n`` bytes of the file (fewer if it is shorter)."""
        return self._read_at(0, min(n, self.size))

    # -------------------------------------------------------------------- directory
    def read_directory(self):
        """Parse and check the central directory and every local header; fills ``members``."""
        end, count, cd_size, cd_offset = self._end_record()
        if count > self.max_members:
            raise ArchiveError(f"has {count:,} members; a model file has at most "
                               f"{self.max_members:,}")
        if cd_size > self.max_directory:
            raise ArchiveError(f"has a zip directory of {cd_size:,} bytes; at most "
                               f"{self.max_directory:,} are accepted")
        if cd_offset + cd_size > end:
            raise ArchiveError("is damaged (its zip directory overlaps its end record)")
        raw = self._read_at(cd_offset, cd_size)
        pos, members = 0, {}
        for _ in range(count):
            m, pos = self._central_entry(raw, pos)
            if m.name in members:
                raise ArchiveError(f"holds the member {m.name!r} twice")
            members[m.name] = m
        if pos != cd_size:
            raise ArchiveError("is damaged (its zip directory has trailing bytes)")
        spans = []
        for m in members.values():
            self._local_header(m, cd_offset)
            spans.append((m.header_offset, m.data_offset + m.compressed_size, m.name))
        spans.sort()
        for (_, stop, name), (start, _, other) in itertools.pairwise(spans):
            if start < stop:
                raise ArchiveError(f"is damaged: the members {name!r} and {other!r} overlap")
        self.members = members
        return members

    def _end_record(self):
        tail_len = min(self.size, _EOCD.size + 0xFFFF)
        tail = self._read_at(self.size - tail_len, tail_len)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + _EOCD.size > tail_len:
            raise ArchiveError("is not a zip archive (no end-of-directory record)")
        (_, disk, cd_disk, n_disk, count, cd_size, cd_offset,
         comment) = _EOCD.unpack_from(tail, at)
        end = self.size - tail_len + at
        if end + _EOCD.size + comment != self.size:
            raise ArchiveError("is damaged (bytes after its zip end record)")
        if disk != cd_disk or n_disk != count or disk not in (0, 0xFFFF):
            raise ArchiveError("is a multi-volume zip archive, which is not supported")
        if 0xFFFF in (count, n_disk) or 0xFFFFFFFF in (cd_size, cd_offset):
            loc = end - _EOCD64_LOCATOR.size
            if loc < 0:
                raise ArchiveError("is damaged (no Zip64 end record locator)")
            sig, _, off64, _ = _EOCD64_LOCATOR.unpack(self._read_at(loc, _EOCD64_LOCATOR.size))
            if sig != b"PK\x06\x07" or off64 + _EOCD64.size > loc:
                raise ArchiveError("is damaged (bad Zip64 end record locator)")
            (sig, _, _, _, disk, cd_disk, n_disk, count, cd_size,
             cd_offset) = _EOCD64.unpack(self._read_at(off64, _EOCD64.size))
            if sig != b"PK\x06\x06":
                raise ArchiveError("is damaged (bad Zip64 end record)")
            if disk != 0 or cd_disk != 0 or n_disk != count:
                raise ArchiveError("is a multi-volume zip archive, which is not supported")
            end = off64
        return end, count, cd_size, cd_offset

    def _central_entry(self, raw, pos):
        if pos + _CENTRAL.size > len(raw):
            raise ArchiveError("is damaged (its zip directory is cut short)")
        (sig, _, _, flags, method, _, _, crc, csize, usize, nlen, elen, clen, disk, _, _,
         offset) = _CENTRAL.unpack_from(raw, pos)
        if sig != b"PK\x01\x02":
            raise ArchiveError("is damaged (bad zip directory entry)")
        start = pos + _CENTRAL.size
        pos = start + nlen + elen + clen
        if pos > len(raw):
            raise ArchiveError("is damaged (its zip directory is cut short)")
        name_bytes = raw[start:start + nlen]
        name = name_bytes.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
        if flags & 0x41:
            raise ArchiveError(f"has the encrypted member {name!r}")
        if method not in (STORED, DEFLATED):
            kind = {12: "bzip2", 14: "LZMA", 93: "Zstandard", 95: "XZ"}.get(
                method, f"method {method}")
            raise ArchiveError(f"has the member {name!r} compressed with {kind}; only stored "
                               "or deflated members are read")
        extra = raw[start + nlen:start + nlen + elen]
        if 0xFFFFFFFF in (usize, csize, offset) or disk == 0xFFFF:
            usize, csize, offset = self._zip64(extra, usize, csize, offset, name)
        if method == STORED and csize != usize:
            raise ArchiveError(f"is damaged: the stored member {name!r} has two sizes")
        if method == DEFLATED and usize > self.max_ratio * csize + 65536:
            raise ArchiveError(
                f"has the member {name!r} declaring {usize:,} bytes from {csize:,} compressed "
                f"ones, more than {self.max_ratio}:1 (a zip bomb?)"
            )
        return Member(name, name_bytes, method, crc, csize, usize, offset), pos

    @staticmethod
    def _zip64(extra, usize, csize, offset, name):
        pos = 0
        while pos + 4 <= len(extra):
            tag, size = struct.unpack_from("<HH", extra, pos)
            body = extra[pos + 4:pos + 4 + size]
            pos += 4 + size
            if tag != 1:
                continue
            values, at = [], 0
            for old in (usize, csize, offset):
                if old == 0xFFFFFFFF:
                    if at + 8 > len(body):
                        raise ArchiveError(f"is damaged (short Zip64 field of {name!r})")
                    values.append(struct.unpack_from("<Q", body, at)[0])
                    at += 8
                else:
                    values.append(old)
            return values
        raise ArchiveError(f"is damaged (no Zip64 sizes for {name!r})")

    def _local_header(self, m, cd_offset):
        (sig, _, _, _, _, _, _, _, _, nlen, elen) = _LOCAL.unpack(
            self._read_at(m.header_offset, _LOCAL.size))
        if sig != b"PK\x03\x04":
            raise ArchiveError(f"is damaged (no local header for {m.name!r})")
        if self._read_at(m.header_offset + _LOCAL.size, nlen) != m.raw_name:
            raise ArchiveError(f"is damaged (the local header of {m.name!r} names another file)")
        m.data_offset = m.header_offset + _LOCAL.size + nlen + elen
        if m.data_offset + m.compressed_size > cd_offset:
            raise ArchiveError(f"is damaged: the data of {m.name!r} run past the zip directory")

    # -------------------------------------------------------------------- data
    def chunks(self, name, size=_CHUNK):
        """Yield the member's bytes, at most ``size`` at a time: never more in all than its
        directory entry declares; exactly that many and a matching CRC-32 by the end."""
        m = self.members[name]
        left, pos, produced, crc = m.compressed_size, m.data_offset, 0, 0
        inflate = zlib.decompressobj(-15) if m.method == DEFLATED else None
        pending = b""
        while True:
            if not pending and left:
                n = min(size, left)
                pending = self._read_at(pos, n)
                pos, left = pos + n, left - n
            if inflate is None:
                out, pending = pending, b""
            else:
                try:
                    out = inflate.decompress(pending, size)
                except zlib.error as exc:
                    raise ArchiveError(f"has the damaged member {name!r} ({exc})") from None
                pending = inflate.unconsumed_tail
            if not out:
                if inflate is not None and not inflate.eof and not pending and not left:
                    raise ArchiveError(f"has the truncated member {name!r}")
                if inflate is None or inflate.eof or (not pending and not left):
                    break
                continue
            produced += len(out)
            if produced > m.size:
                raise ArchiveError(f"has the member {name!r} inflating past the {m.size:,} "
                                   "bytes its directory entry declares")
            crc = zlib.crc32(out, crc)
            yield out
        if produced != m.size:
            raise ArchiveError(f"has the member {name!r} holding {produced:,} bytes where its "
                               f"directory entry declares {m.size:,}")
        if crc != m.crc:
            raise ArchiveError(f"has the damaged member {name!r} (CRC-32 mismatch)")

    def prefix(self, name, n):
        """The member's first ``n`` bytes (fewer if it is shorter); no CRC check."""
        out = bytearray()
        stream = self.chunks(name, size=max(1, n))  # inflate no more than is asked for
        try:
            for chunk in stream:
                out += chunk[: n - len(out)]
                if len(out) >= n:
                    break
        finally:
            stream.close()
        return bytes(out)

    def read_into(self, name, buffer, skip=0):
        """Fill ``buffer`` (a writable byte memoryview) with the member's bytes after the
        first ``skip``; the member must hold exactly ``skip + len(buffer)`` bytes."""
        m = self.members[name]
        if m.size != skip + len(buffer):
            raise ArchiveError(f"has the member {name!r} of {m.size:,} bytes, expected "
                               f"{skip + len(buffer):,}")
        at = -skip
        for chunk in self.chunks(name):
            lo = max(0, -at)
            if lo < len(chunk):
                part = chunk[lo:]
                buffer[at + lo:at + lo + len(part)] = part
            at += len(chunk)
