"""Finding a record's weight file on disk, downloading it when it is not there.

Places searched, in order: an absolute `file` as is, or for a relative one the
folder of the registry file that lists the record and the shipped `weights/`
folder; then the download cache `$GDCLD_ZOO_HOME/weights/`. Every file found
is checked against the record's sha256 before it is used.

A file from the hub (`hf://` URL) lives only in the cache, under
`$GDCLD_ZOO_HOME/weights/hf/OWNER/REPO/COMMIT/FILE`. When its record has no
sha256, the one the hub declared is checked before the download is kept and
saved next to it as `FILE.sha256`, against which later loads verify it.
"""

import warnings
from pathlib import Path

from gdcld_zoo.errors import GdcldZooError
from gdcld_zoo.weights import sources
from gdcld_zoo.weights.download import ChecksumError, download, sha256_file
from gdcld_zoo.weights.hub import HubError, declared_sha256
from gdcld_zoo.weights.record import write_text_atomic


class WeightsNotFoundError(GdcldZooError):
    """A record's weight file is not on disk and cannot be downloaded."""


def cache_path(record):
    """Where the download cache keeps the record's file."""
    hub_file = record.hub_file
    if hub_file is not None:
        return sources.cache_dir() / "hf" / hub_file.repo / (hub_file.revision or "unpinned") / hub_file.path
    return sources.cache_dir() / Path(record.file).name


def hash_path(path):
    """The file keeping the hub-declared sha256 of a downloaded hub file."""
    return path.with_name(path.name + ".sha256")


def expected_sha256(record, path):
    """The record's sha256, or for a hub file without one the hash saved at download (None if absent)."""
    if record.sha256 is not None:
        return record.sha256
    saved = hash_path(Path(path))
    return saved.read_text(encoding="utf-8").strip() if saved.is_file() else None


def local_candidates(record):
    """Paths where the record's file may already be, in search order (cache last).

    An absolute `file` is used as is; a relative one is looked for next to the
    registry listing the record and in the shipped `weights/` folder.
    """
    if record.hub_file is not None:
        return [cache_path(record)]
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
    expected = expected_sha256(record, path)
    if expected is None:
        raise ChecksumError(
            f"Cannot verify {path} (weights {record.tag!r}): its record has no sha256 and no hub "
            f"hash was saved with it ({hash_path(Path(path)).name}). Delete it and run "
            f"`gdcld-zoo weights download {record.tag}`."
        )
    got = sha256_file(path)
    if got != expected:
        raise ChecksumError(
            f"sha256 mismatch for {path} (weights {record.tag!r}): expected {expected}, "
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
    if record.hub_file is not None:
        return _hub_weights_file(record, progress)
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


def _hub_weights_file(record, progress):
    """`weights_file` for an `hf://` record: the cached file, or a verified download."""
    hub_file, path = record.hub_file, cache_path(record)
    if not hub_file.pinned:
        use = (
            "pass its path as encoder_weights (build_model) or --encoder-weights (gdcld-zoo train)"
            if record.part == "encoder"
            else "convert it with gdcld_zoo.convert"
        )
        raise WeightsNotFoundError(
            f"Weights {record.tag!r} are not pinned: no commit of {hub_file.repo} has been verified "
            f"for them, so gdcld_zoo does not download {hub_file.url}. Pin it in a registry of your own "
            f"(GDCLD_ZOO_REGISTRY) as hf://{hub_file.repo}@<40-hex commit>/{hub_file.path} "
            f"(commits: {hub_file.page}/commits/main), or download {hub_file.path} yourself and {use}."
        )
    if path.is_file():
        try:
            return verify_file(path, record)
        except ChecksumError as error:
            if sources.is_offline():
                raise
            warnings.warn(f"{error} Deleting it and downloading it again.", stacklevel=3)
            path.unlink()
            hash_path(path).unlink(missing_ok=True)
    if sources.is_offline():
        raise WeightsNotFoundError(
            f"Weights {record.tag!r} are not on this machine and {sources.ENV_OFFLINE} is set: on a "
            f"connected machine run `gdcld-zoo weights download {record.tag}` (it fetches {hub_file.url}), "
            f"then copy its {sources.ENV_HOME} folder here as {sources.home_dir()}, so that {path} exists."
        )
    declared = declared_sha256(hub_file)
    if record.sha256 is not None and declared is not None and declared != record.sha256:
        raise ChecksumError(
            f"The hub declares sha256 {declared} for {hub_file.url}, but weights {record.tag!r} record "
            f"{record.sha256}. Nothing was downloaded; check which file the record should describe."
        )
    sha256 = record.sha256 or declared
    if sha256 is None:
        raise HubError(
            f"The hub declares no sha256 for {hub_file.url} and weights {record.tag!r} record none, "
            "so the download could not be verified; add the file's sha256 to the record."
        )
    download(hub_file.resolve_url(), path, sha256, size=record.size, progress=progress)
    write_text_atomic(hash_path(path), sha256 + "\n")
    return path
