"""Finding a record's weight file on disk, downloading it when it is not there.

Places searched, in order: an absolute `file` as is, or for a relative one the
folder of the registry file that lists the record and the shipped `weights/`
folder; then the download cache `$GDCLD_ZOO_HOME/weights/`. Every file found
is checked against the record's sha256 before it is used.
"""

import warnings
from pathlib import Path

from gdcld_zoo.errors import GdcldZooError
from gdcld_zoo.weights import sources
from gdcld_zoo.weights.download import ChecksumError, download, sha256_file


class WeightsNotFoundError(GdcldZooError):
    """A record's weight file is not on disk and cannot be downloaded."""


def cache_path(record):
    """Where the download cache keeps the record's file."""
    return sources.cache_dir() / Path(record.file).name


def local_candidates(record):
    """Paths where the record's file may already be, in search order (cache last).

    An absolute `file` is used as is; a relative one is looked for next to the
    registry listing the record and in the shipped `weights/` folder.
    """
    file = Path(record.file).expanduser()
    candidates = []
    if file.is_absolute():
        candidates.append(file)
    else:
        registry = sources.registry_path(record.origin) if record.origin else None
        if registry is not None:
            candidates.append(registry.parent / file)
        shipped = sources.shipped_weights_dir()
        if shipped is not None:
            candidates.append(shipped / file)
    candidates.append(cache_path(record))
    return list(dict.fromkeys(candidates))


def find_local(record):
    """The first existing file for `record`, or None. The hash is not checked here."""
    for path in local_candidates(record):
        if path.is_file():
            return path
    return None


def verify_file(path, record):
    """Raise `ChecksumError` unless `path` has the record's sha256."""
    got = sha256_file(path)
    if got != record.sha256:
        raise ChecksumError(
            f"sha256 mismatch for {path} (weights {record.tag!r}): expected {record.sha256}, "
            f"got {got}. Replace the file with the one the record describes, or fix the record."
        )
    return path


def weights_file(record, progress=True):
    """A verified local path to the record's weight file, downloading it if needed.

    A cached file with the wrong hash is deleted and downloaded again (when
    online and the record has a URL); a wrong file anywhere else is an error,
    since it is not the cache's to replace.

    Raises:
        WeightsNotFoundError: Offline, or no URL, and no file on disk; the
            message says where to put the file.
        ChecksumError: A file (found or downloaded) has another sha256.
    """
    cached = cache_path(record)
    stale = None
    for path in local_candidates(record):
        if not path.is_file():
            continue
        if path != cached:
            return verify_file(path, record)
        try:
            return verify_file(path, record)
        except ChecksumError as error:
            if sources.is_offline() or not record.url:
                raise
            stale = error
    if sources.is_offline() or not record.url:
        why = f"{sources.ENV_OFFLINE} is set" if sources.is_offline() and record.url else "the record has no url"
        places = ", ".join(str(p) for p in local_candidates(record))
        raise WeightsNotFoundError(
            f"Weights {record.tag!r} are not on this machine and {why}. Put {Path(record.file).name}"
            f" (sha256 {record.sha256}) at {cached}"
            + (f" (searched: {places})" if places != str(cached) else "")
            + (f", or download it from {record.url}" if record.url else "")
            + "."
        )
    if stale is not None:
        warnings.warn(f"{stale} Deleting it and downloading it again.", stacklevel=2)
        cached.unlink()
    return download(record.url, cached, record.sha256, size=record.size, progress=progress)
