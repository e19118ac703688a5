"""Where weight records come from, and how a tag resolves to one record.

Registries are merged in this order, a later record replacing an earlier one
with the same tag (so a lab can override a shipped record):

1. the registry shipped with the package, `weights/registry.json`;
2. every file or URL in `GDCLD_ZOO_REGISTRY`, separated by `os.pathsep`;
3. the user registry `$GDCLD_ZOO_HOME/registry.json`, which
   `gdcld-zoo weights add` writes for models trained with `gdcld-zoo train`.

The shipped `weights/` folder is the top-level folder of the source tree. A
source checkout or editable install reads it in place; a wheel installs it
as data files under `<prefix>/share/gdcld_zoo/weights` (pyproject's
`[tool.setuptools.data-files]`), which is searched next.

Environment:
    GDCLD_ZOO_HOME: cache and user registry, default `~/.cache/gdcld_zoo`.
    GDCLD_ZOO_REGISTRY: extra registry files or URLs.
    GDCLD_ZOO_OFFLINE: `1` never touches the network; registry URLs are read
        from the copy cached when they were last fetched.
"""

import hashlib
import json
import os
import re
import sysconfig
import urllib.request
import warnings
from pathlib import Path

import gdcld_zoo
from gdcld_zoo.errors import GdcldZooError, UnknownNameError
from gdcld_zoo.files import OutputLock
from gdcld_zoo.weights.record import (
    InvalidWeightRecordError,
    parse_registry,
    read_registry_file,
    write_registry_file,
    write_text_atomic,
)

ENV_HOME = "GDCLD_ZOO_HOME"
ENV_REGISTRY = "GDCLD_ZOO_REGISTRY"
ENV_OFFLINE = "GDCLD_ZOO_OFFLINE"
REGISTRY_FILE = "registry.json"
# Seconds to wait for a registry URL before falling back to its cached copy.
REGISTRY_TIMEOUT_S = 20
# Registry URLs are fetched once per process: URL -> text.
_FETCHED = {}


def home_dir():
    """`$GDCLD_ZOO_HOME`, default `~/.cache/gdcld_zoo`: downloads and the user registry."""
    return Path(os.environ.get(ENV_HOME) or Path.home() / ".cache" / "gdcld_zoo").expanduser()


def cache_dir():
    """Where downloaded weight files are kept: `$GDCLD_ZOO_HOME/weights`."""
    return home_dir() / "weights"


def user_registry_path():
    """The registry `gdcld-zoo weights add` writes: `$GDCLD_ZOO_HOME/registry.json`."""
    return home_dir() / REGISTRY_FILE


def is_offline():
    """True when `GDCLD_ZOO_OFFLINE` is set to 1/true/yes/on."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes", "on")


def shipped_weights_dir():
    """The `weights/` folder shipped with the package, or None when there is none.

    A source checkout (or editable install) has it next to the `gdcld_zoo`
    package; a wheel installs it under `<prefix>/share/gdcld_zoo/weights`.
    """
    candidates = [Path(gdcld_zoo.__file__).resolve().parent.parent / "weights"]
    for scheme in (sysconfig.get_default_scheme(), f"{os.name}_user"):
        if scheme in sysconfig.get_scheme_names():
            data = sysconfig.get_path("data", scheme)
            candidates.append(Path(data) / "share" / "gdcld_zoo" / "weights")
    for folder in candidates:
        if (folder / REGISTRY_FILE).is_file():
            return folder
    return None


def registry_sources():
    """Every registry file or URL, in merge order (later wins)."""
    sources = []
    shipped = shipped_weights_dir()
    if shipped is not None:
        sources.append(str(shipped / REGISTRY_FILE))
    sources.extend(split_registry_list(os.environ.get(ENV_REGISTRY, "")))
    sources.append(str(user_registry_path()))
    return sources


def split_registry_list(value):
    """Split a `GDCLD_ZOO_REGISTRY` value on `os.pathsep`, keeping URLs whole.

    On POSIX the separator is `:`, which URLs also contain (`https://host:8443/r.json`):
    a scheme and the `//` after it, and a port after a bare host, are joined back.
    """
    parts, merged = value.split(os.pathsep), []
    for part in parts:
        previous = merged[-1] if merged else ""
        scheme_split = previous in ("http", "https", "file") and part.startswith("//")
        port_split = re.fullmatch(r"https?://[^/]+", previous) and re.match(r"\d+(/|$)", part)
        if scheme_split or port_split:
            merged[-1] = f"{previous}:{part}"
        else:
            merged.append(part)
    return [m.strip() for m in merged if m.strip()]


def registry_path(source):
    """The local path of a registry source (a path or `file://` URL); None for http(s)."""
    if source.startswith(("http://", "https://")):
        return None
    return Path(source.removeprefix("file://")).expanduser()


def read_registry(source):
    """The validated records of one registry file or URL.

    A missing file is an empty registry. A URL is fetched once per process (and
    a copy kept in `$GDCLD_ZOO_HOME/registries/`); offline or when the fetch
    fails, the kept copy is used, and with no copy the registry is skipped with
    a warning.
    """
    path = registry_path(source)
    if path is not None:
        return read_registry_file(path)
    copy = home_dir() / "registries" / (hashlib.sha256(source.encode()).hexdigest()[:16] + ".json")
    text = _FETCHED.get(source)
    if text is None and not is_offline():
        try:
            with urllib.request.urlopen(source, timeout=REGISTRY_TIMEOUT_S) as response:
                text = response.read().decode("utf-8")
        except OSError as error:
            reason = f"could not fetch it ({error})"
        else:
            write_text_atomic(copy, text)
            _FETCHED[source] = text
    elif text is None:
        reason = f"{ENV_OFFLINE} is set"
    if text is None:
        if not copy.exists():
            warnings.warn(f"Skipping registry {source}: {reason} and no copy is cached.", stacklevel=2)
            return []
        if not is_offline():
            warnings.warn(f"Using the cached copy of registry {source}: {reason}.", stacklevel=2)
        text = copy.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidWeightRecordError(f"Registry {source} is not valid JSON: {error}.") from None
    return parse_registry(data, source)


def _merged_records():
    """Records by tag in merge order, and each model's default tag (the last one wins)."""
    merged, defaults = {}, {}
    for source in registry_sources():
        for record in read_registry(source):
            merged.pop(record.tag, None)
            merged[record.tag] = record
            if record.default:
                defaults[record.model] = record.tag
            elif defaults.get(record.model) == record.tag:
                del defaults[record.model]
    return merged, defaults


def list_weights():
    """Every weight record from every registry source, sorted by tag.

    Example:
    >>> all(len(record.sha256) == 64 for record in list_weights() if record.sha256)
    True
    """
    merged, _ = _merged_records()
    return [merged[tag] for tag in sorted(merged)]


def get_weights(tag):
    """The record for a tag, or for a model name its default tag.

    `get_weights("segformer_b4")` is the record of `segformer_b4` marked
    `"default": true` (the one from the latest source when several are), or
    the model's only `<model>.<data>` record. A single-word alias (`demo`) is
    only ever returned by its own name. Unknown names list close matches.
    """
    merged, defaults = _merged_records()
    if tag in merged:
        return merged[tag]
    if tag in defaults and "." in defaults[tag]:
        return merged[defaults[tag]]
    of_model = [r.tag for r in merged.values() if r.model == tag and "." in r.tag]
    if len(of_model) == 1:
        return merged[of_model[0]]
    if of_model:
        raise GdcldZooError(
            f"Model {tag!r} has several weights ({', '.join(sorted(of_model))}) and none "
            "is marked default; pass one of these tags."
        )
    from gdcld_zoo.registry import list_models

    if tag in list_models(include_tiny=True):
        raise GdcldZooError(
            f"No weights are registered for model {tag!r}. Train it with `gdcld-zoo train {tag} "
            f"--data DATA --out RUN_DIR` (then load_pretrained(RUN_DIR)), or register weights with "
            "`gdcld-zoo weights add`."
        )
    names = set(merged) | {r.model for r in merged.values()}
    raise UnknownNameError("weight tag", tag, names)


def landslide_records(model):
    """Records of `model` that map landslides: whole models with one class,
    under a `<model>.<data>` tag, not trained on synthetic scenes (the demo)."""
    return [
        r for r in list_weights()
        if r.model == model and r.part == "model" and r.num_classes == 1 and "." in r.tag
        and not r.trained_on.startswith("synthetic")
    ]


def add_user_record(record, replace=False):
    """Add `record` to the user registry (atomically); an existing tag needs `replace`."""
    path = user_registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with OutputLock(path.parent, path.name, wait=True):  # two `weights add` at once must not lose a record
        records = [r for r in read_registry_file(path)]
        if any(r.tag == record.tag for r in records) and not replace:
            raise GdcldZooError(
                f"Tag {record.tag!r} is already in the user registry {path}; "
                "choose another tag or pass --force to replace it."
            )
        records = [r for r in records if r.tag != record.tag] + [record]
        write_registry_file(path, records)
    return path
