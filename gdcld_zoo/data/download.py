"""`download_gdcld`: the GDCLD release from Zenodo, verified, resumable and unpacked.

GDCLD (Fang et al., 2024) is published on Zenodo as record 13612636 (DOI
10.5281/zenodo.13612636, CC BY 4.0), its splits as archives (`train_dataset.zip`,
`val_dataset.zip`, `test_dataset.zip`). The file list, sizes and md5 checksums
come from Zenodo's records API (`{endpoint}/api/records/13612636`); each file is
downloaded to `DIR/.downloads/` with resume (HTTP `Range`, as weight files are)
and kept only once its md5 matches; archives are unpacked into DIR (tar members
that would land outside it are refused; zip names are confined to it by
`zipfile`), so DIR is the dataset root that `gdcld-zoo data check` and
`make_dataset` read. Finished files are noted in `DIR/.gdcld_download.json`,
so running again skips them and continues with the rest.

Environment:
    GDCLD_ZOO_ZENODO_ENDPOINT: Zenodo or a mirror of its records API and file
        addresses (`{endpoint}/api/records/{id}/files/{key}/content`); default
        `https://zenodo.org`.
"""

import dataclasses
import json
import os
import re
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from gdcld_zoo.errors import GdcldZooError
from gdcld_zoo.weights import sources
from gdcld_zoo.weights.download import DownloadError, download
from gdcld_zoo.weights.record import write_text_atomic

ZENODO_RECORD = "13612636"
GDCLD_DOI = "10.5281/zenodo.13612636"
ENV_ZENODO_ENDPOINT = "GDCLD_ZOO_ZENODO_ENDPOINT"
DEFAULT_ZENODO_ENDPOINT = "https://zenodo.org"
STATE_FILE = ".gdcld_download.json"
DOWNLOAD_DIR = ".downloads"
_MD5_PATTERN = re.compile(r"^md5:([0-9a-f]{32})$")
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


@dataclasses.dataclass(frozen=True)
class ReleaseFile:
    """One file of a Zenodo record: its name, size in bytes, md5 and address."""

    key: str
    size: int
    md5: str
    url: str


def zenodo_endpoint():
    """`$GDCLD_ZOO_ZENODO_ENDPOINT`, default `https://zenodo.org`."""
    return (os.environ.get(ENV_ZENODO_ENDPOINT) or DEFAULT_ZENODO_ENDPOINT).rstrip("/")


def release_files(record=ZENODO_RECORD, timeout=30):
    """The files of a Zenodo record, from its records API.

    Raises:
        DownloadError: Offline, Zenodo unreachable, or an answer without a
            file list, sizes and md5 checksums.
    """
    endpoint = zenodo_endpoint()
    url = f"{endpoint}/api/records/{record}"
    if sources.is_offline():
        raise DownloadError(f"Not asking {url} for the GDCLD files: {sources.ENV_OFFLINE} is set.")
    data = _get_json(url, timeout)
    entries = data.get("files") if isinstance(data, dict) else None
    if entries is None:  # records with many files list them at /files only
        listing = _get_json(f"{url}/files", timeout)
        entries = listing.get("entries") if isinstance(listing, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DownloadError(f"{url} lists no files; is {record} the GDCLD record ({GDCLD_DOI})?")
    files = []
    for entry in entries:
        key, size = entry.get("key"), entry.get("size")
        md5 = _MD5_PATTERN.match(str(entry.get("checksum", "")).lower())
        if not isinstance(key, str) or "/" in key or key.startswith(".") or not isinstance(size, int) or not md5:
            raise DownloadError(f"{url} describes a file without a safe name, size and md5 checksum: {entry!r:.200}.")
        quoted = urllib.parse.quote(key)
        files.append(ReleaseFile(key, size, md5.group(1), f"{endpoint}/api/records/{record}/files/{quoted}/content"))
    return files


def _get_json(url, timeout):
    from gdcld_zoo import __version__

    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": f"gdcld-zoo/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        raise DownloadError(f"Zenodo refused {url}: HTTP {error.code} {error.reason}.") from None
    except (urllib.error.URLError, OSError) as error:
        raise DownloadError(
            f"Could not reach {url} ({getattr(error, 'reason', error)}); check the connection or set "
            f"{ENV_ZENODO_ENDPOINT} to a mirror."
        ) from None
    except ValueError as error:
        raise DownloadError(f"{url} did not answer JSON: {error}.") from None


def download_gdcld(dest, progress=True, keep_archives=False):
    """Download, verify and unpack the GDCLD release into `dest`; returns `dest`.

    Args:
        dest: Dataset root to create (or to continue filling).
        progress: Show a progress bar per file.
        keep_archives: Keep the downloaded archives in `dest/.downloads`
            after unpacking (default: delete them to save disk).

    Raises:
        DownloadError: Zenodo is unreachable, or a file could not be fetched
            (the bytes received are kept and the next run resumes them).
        ChecksumError: A file's md5 differs from Zenodo's; it was deleted.
        GdcldZooError: Not enough free disk, or an archive holding a member
            that would land outside `dest`.

    Example:
    >>> root = download_gdcld("GDCLD")  # doctest: +SKIP
    >>> check_dataset(root).ok  # doctest: +SKIP
    True
    """
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    state_path = dest / STATE_FILE
    done = json.loads(state_path.read_text(encoding="utf-8")) if state_path.is_file() else {}
    pending = [f for f in release_files() if done.get(f.key) != f.md5]
    _check_free_space(dest, pending)
    for file in pending:
        archive = download(
            file.url, dest / DOWNLOAD_DIR / file.key, file.md5, size=file.size, progress=progress, algorithm="md5"
        )
        if file.key.lower().endswith(_ARCHIVE_SUFFIXES):
            _unpack(archive, dest)
            if not keep_archives:
                archive.unlink()
        else:
            os.replace(archive, dest / file.key)
        done[file.key] = file.md5
        write_text_atomic(state_path, json.dumps(done, indent=2) + "\n")
    return dest


def _check_free_space(dest, pending):
    """Archives and what they unpack to: refuse to start without room for both."""
    needed = 2 * sum(f.size for f in pending)
    free = shutil.disk_usage(dest).free
    if needed > free:
        raise GdcldZooError(
            f"GDCLD needs about {needed / 1e9:.1f} GB free in {dest} (the archives and their unpacked "
            f"files), but {free / 1e9:.1f} GB are free. Free some space or choose another folder."
        )


def _unpack(archive, dest):
    """Unpack a zip or tar archive into `dest`, refusing members that would land outside it."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as handle:
                handle.extractall(dest)  # zipfile drops absolute paths and '..' parts
            return
        with tarfile.open(archive) as handle:
            handle.extractall(dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as error:
        raise GdcldZooError(f"Could not unpack {archive.name} into {dest}: {error}") from None
