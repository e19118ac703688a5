"""Files on the Hugging Face hub, pinned to a commit: `hf://OWNER/REPO@REVISION/FILE`.

A record's `hf://` URL names a repository, a full 40-hex commit and a file
in it; it resolves against `GDCLD_ZOO_HF_ENDPOINT` (default the public hub) as
`{endpoint}/{OWNER}/{REPO}/resolve/{REVISION}/{FILE}`. The hub declares the
sha256 of a large (LFS) file in the `X-Linked-Etag` header of that address
(the response that redirects to its storage), and the commit it answered from
in `X-Repo-Commit`; huggingface_hub checks the same headers. `declared_sha256`
reads them without following the redirect, so the hash is known, and checked,
before any byte enters the cache.

A URL without `@REVISION` is accepted in a record only to say honestly that no
commit has been verified for it: such a record is listed but never downloaded.
"""

import dataclasses
import os
import re
import urllib.error
import urllib.parse
import urllib.request

from gdcld_zoo.errors import GdcldZooError

ENV_HF_ENDPOINT = "GDCLD_ZOO_HF_ENDPOINT"
DEFAULT_ENDPOINT = "https://huggingface.co"
SCHEME = "hf://"
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_URL_PATTERN = re.compile(
    rf"^hf://(?P<repo>{_NAME}/{_NAME})(@(?P<revision>[^/]+))?/(?P<path>{_NAME}(/{_NAME})*)$"
)
_COMMIT_PATTERN = re.compile(r"^[0-9a-f]{40}$")
_SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
# Relative redirects (a renamed repository) followed before the hub's answer is read.
_MAX_REDIRECTS = 3


class HubError(GdcldZooError):
    """The hub could not be asked about a file, or its answer does not fit the record."""


@dataclasses.dataclass(frozen=True)
class HubFile:
    """A file in a hub repository at one revision (None: not pinned)."""

    repo: str
    revision: str | None
    path: str

    @property
    def pinned(self):
        return self.revision is not None

    @property
    def url(self):
        return f"{SCHEME}{self.repo}{'@' + self.revision if self.revision else ''}/{self.path}"

    @property
    def page(self):
        """The repository's page on the public hub, for messages."""
        return f"{DEFAULT_ENDPOINT}/{self.repo}"

    def resolve_url(self):
        """The download address at the configured endpoint."""
        if not self.pinned:
            raise HubError(f"{self.url} names no commit; only pinned files are downloaded.")
        endpoint = os.environ.get(ENV_HF_ENDPOINT) or DEFAULT_ENDPOINT
        return f"{endpoint.rstrip('/')}/{self.repo}/resolve/{self.revision}/{urllib.parse.quote(self.path)}"


def parse_hf_url(url):
    """The `HubFile` of `hf://OWNER/REPO@REVISION/FILE` (or unpinned `hf://OWNER/REPO/FILE`).

    Raises:
        ValueError: Not such a URL, or a revision that is not a full 40-hex commit
            (a branch or tag name can move, so it pins nothing).

    Example:
    >>> parse_hf_url("hf://nvidia/mit-b0@" + "a" * 40 + "/pytorch_model.bin").path
    'pytorch_model.bin'
    """
    match = _URL_PATTERN.match(url) if isinstance(url, str) else None
    if match is None or ".." in match["path"].split("/"):
        raise ValueError(f"expected hf://OWNER/REPO@COMMIT/FILE, got {url!r}")
    revision = match["revision"]
    if revision is not None and not _COMMIT_PATTERN.match(revision):
        raise ValueError(
            f"the revision of {url!r} must be a full 40-hex commit (branches and tags move); "
            "copy it from the repository's 'Files and versions' history on the hub"
        )
    return HubFile(match["repo"], revision, match["path"])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 3xx answer itself carries the hub's headers


def declared_sha256(hub_file, timeout=30):
    """The sha256 the hub declares for a pinned file (`X-Linked-Etag`), or None for a
    file it declares none for (small files kept in git rather than LFS).

    Raises:
        HubError: The hub is unreachable, has no such file at that commit, or
            answers from another commit than the pinned one.
    """
    from gdcld_zoo import __version__

    url = hub_file.resolve_url()
    opener = urllib.request.build_opener(_NoRedirect)
    for _ in range(_MAX_REDIRECTS + 1):
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": f"gdcld-zoo/{__version__}"})
        try:
            response = opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as error:
            response = error
            if error.code == 404:
                raise HubError(
                    f"The hub has no {hub_file.path} in {hub_file.repo} at commit {hub_file.revision} "
                    f"({url}: HTTP 404). Check the record's revision against {hub_file.page}."
                ) from None
            if not 300 <= error.code < 400:
                raise HubError(f"The hub refused {url}: HTTP {error.code} {error.reason}.") from None
        except (urllib.error.URLError, OSError) as error:
            raise HubError(
                f"Could not reach the hub for {hub_file.url} ({getattr(error, 'reason', error)}). On a "
                "machine without internet: run `gdcld-zoo weights download TAG` on a connected one and "
                f"copy its GDCLD_ZOO_HOME here, or set {ENV_HF_ENDPOINT} to a mirror."
            ) from None
        with response:
            headers = response.headers
            location = headers.get("Location", "")
            linked = headers.get("X-Linked-Etag")
            if linked is None and location.startswith("/"):
                url = urllib.parse.urljoin(url, location)
                continue
        commit = headers.get("X-Repo-Commit")
        if commit and commit != hub_file.revision:
            raise HubError(
                f"The hub answered {hub_file.url} from commit {commit}, not the pinned {hub_file.revision}."
            )
        etag = (linked or headers.get("ETag") or "").removeprefix("W/").strip('"').lower()
        return etag if _SHA256_PATTERN.match(etag) else None
    raise HubError(f"The hub redirected {hub_file.url} more than {_MAX_REDIRECTS} times.")
