"""Verified, resumable downloads of weight files.

Like `keras.utils.get_file(..., file_hash=...)`, but the hash is always
checked, an interrupted download resumes where it stopped (HTTP `Range`), and
the file only appears under its final name once its sha256 matches: bytes go
to `<name>.part`, which is renamed after verification and deleted on a
mismatch, so the cache never holds a wrong file. Concurrent processes take
turns through a lock on `.download.lock` in the download folder.
"""

import contextlib
import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from gdcld_zoo.errors import GdcldZooError
from gdcld_zoo.weights import sources

CHUNK_BYTES = 1 << 20
# Empty file in the download folder that concurrent downloads lock.
LOCK_FILE = ".download.lock"
# Server answers worth retrying: timeouts, rate limits and passing server errors.
_RETRY_STATUS = (408, 425, 429, 500, 502, 503, 504)


class DownloadError(GdcldZooError):
    """A weight file could not be downloaded."""


class ChecksumError(GdcldZooError):
    """A file's sha256 is not the one its record states."""


def hash_file(path, algorithm="sha256"):
    """Hex digest of a file (any `hashlib` algorithm), read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path):
    """Hex sha256 digest of a file."""
    return hash_file(path, "sha256")


def part_path(dest):
    """The temporary name a download is written to before verification."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def download(url, dest, expected, size=None, progress=True, retries=3, timeout=30, backoff_s=1.0,
             algorithm="sha256"):
    """Download `url` to `dest`, resuming `dest.part`, and verify its digest.

    Args:
        url: http(s) or file URL.
        dest: Final path; written only once the digest matches.
        expected: Expected hex digest (sha256 unless `algorithm` says otherwise).
        size: Expected size in bytes, if known (skips a request when a complete
            `.part` is already there).
        progress: Show a tqdm progress bar on stderr.
        retries: Extra attempts after a failed or interrupted request; each
            resumes from the bytes already received.
        timeout: Seconds to wait on the connection before retrying.
        backoff_s: Wait before retry n is `backoff_s * 2**(n-1)` seconds.
        algorithm: The `hashlib` name of the digest, e.g. `"md5"` for files
            whose publisher gives only that (Zenodo).

    Returns:
        `dest` as a `Path`.

    Raises:
        ChecksumError: The downloaded bytes have another digest; nothing is
            left behind.
        DownloadError: `GDCLD_ZOO_OFFLINE` is set (for http and https URLs).
        DownloadError: Every attempt failed; the `.part` file is kept so the
            next call resumes.
    """
    if sources.is_offline() and not url.startswith("file://"):
        raise DownloadError(f"Not downloading {url}: {sources.ENV_OFFLINE} is set.")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _download_lock(dest.parent):
        if dest.is_file() and hash_file(dest, algorithm) == expected:
            return dest  # another process finished it while this one waited
        return _download(url, dest, expected, size, progress, retries, timeout, backoff_s, algorithm)


@contextlib.contextmanager
def _download_lock(folder):
    """One download at a time per folder across processes (POSIX `flock`), so two
    processes never append to the same `.part`. Elsewhere, no lock is taken."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(folder / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download(url, dest, expected, size, progress, retries, timeout, backoff_s, algorithm):
    part = part_path(dest)
    resumed_from_scratch = False
    attempt = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        if size is not None and offset > size:
            part.unlink()
            offset = 0
        try:
            if size is None or offset < size:
                _fetch(url, part, offset, progress, timeout)
        except _Retryable as error:
            attempt += 1
            if attempt > retries:
                raise DownloadError(
                    f"Could not download {url} after {attempt} attempts ({error}); "
                    f"{part} keeps the bytes received so far and the next try resumes from it."
                ) from None
            time.sleep(backoff_s * 2 ** (attempt - 1))
            continue
        got = hash_file(part, algorithm)
        if got == expected:
            os.replace(part, dest)
            return dest
        part.unlink()
        # A resumed file can be spoiled by a file that changed on the server
        # between attempts: start once from scratch before giving up.
        if offset > 0 and not resumed_from_scratch:
            resumed_from_scratch = True
            continue
        raise ChecksumError(
            f"{algorithm} mismatch for {url}: expected {expected}, got {got}. The download was "
            "deleted; the file on the server is not the one the record describes."
        )


class _Retryable(Exception):
    """A failure that another (resumed) attempt may get past."""


def _fetch(url, part, offset, progress, timeout):
    """One request: append to `part` from `offset` (HTTP Range), or restart it."""
    from gdcld_zoo import __version__

    headers = {"User-Agent": f"gdcld-zoo/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            return  # The .part already holds every byte; the caller verifies it.
        if error.code in _RETRY_STATUS:
            raise _Retryable(f"HTTP {error.code} {error.reason}") from None
        raise DownloadError(f"Could not download {url}: HTTP {error.code} {error.reason}.") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        if url.startswith("file://"):
            raise DownloadError(f"Could not read {url}: {reason}.") from None
        raise _Retryable(str(reason)) from None
    with response:
        status = getattr(response, "status", 200)
        content_range = response.headers.get("Content-Range", "")
        if offset and status == 206 and content_range.startswith(f"bytes {offset}-"):
            mode, start = "ab", offset
        else:
            mode, start = "wb", 0  # No range support (or a file URL): start over.
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        received = 0
        with open(part, mode) as handle, tqdm(
            total=total,
            initial=start,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=Path(part).name[: -len(".part")],
            disable=not progress,
            leave=False,
        ) as bar:
            try:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    handle.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (http.client.IncompleteRead, OSError) as error:
                raise _Retryable(f"connection lost after {start + received} bytes ({error})") from None
        if length is not None and received < int(length):
            raise _Retryable(f"connection closed after {start + received} of {total} bytes")
