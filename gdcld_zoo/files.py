"""Atomic outputs and output locks: why a killed or concurrent run never leaves a half-written file.

Every file gdcld_zoo writes for a user goes through here:

* `atomic_path(path)` yields a temporary name next to `path` that is unique
  per process and call (`.<name>.<pid>-<random>.part`), so two runs writing
  the same output never share a temporary file; on success the file gets the
  permissions a plain `open()` would give it (0666 minus the umask, not
  `mkstemp`'s 0600) and is renamed onto `path`, on failure it is removed.
* `OutputLock(folder, name)` lets one process at a time write a set of
  outputs. It is an advisory `flock` on `.<name>.lock`, a file that holds the
  holder's pid: the kernel drops the lock when its process dies, so a lock
  left by a killed run is stale and taken over, and a live holder is named in
  the refusal. (Where there is no `flock`, e.g. Windows, no lock is taken.)
* `remove_parts(*finals)` deletes the temporary files a killed run
  left behind; call it while holding the lock for those outputs.
* `check_writable_folder(folder)` fails early, before hours of work, when an
  output folder cannot be created or written.

Example:
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> with OutputLock(folder, "scene"):
...     write_text_atomic(folder / "scene.txt", "done")
>>> sorted(p.name for p in folder.iterdir())
['scene.txt']
"""

import contextlib
import errno
import glob
import os
import secrets
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX (Windows): outputs stay atomic, but no lock is taken
    fcntl = None

from gdcld_zoo.errors import GdcldZooError

PART_SUFFIX = ".part"


class OutputError(GdcldZooError, OSError):
    """An output that cannot be written where it was asked for."""


class OutputLockedError(OutputError):
    """Another live process is writing the same outputs."""


def temporary_path(path, suffix=""):
    """A unique temporary name in `path`'s folder: `.<name>.<pid>-<random>.part<suffix>`.

    `suffix` is for writers that insist on an extension (Keras: `.weights.h5`).
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{PART_SUFFIX}{suffix}")


def _umask():
    """The process umask, read without changing it where Linux shows it (other threads may be creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o077)  # briefly the strictest mask, so a file made meanwhile is never too open
    os.umask(umask)
    return umask


def default_mode():
    """The permission bits a new file gets from `open()`: 0666 minus the umask."""
    return 0o666 & ~_umask()


def publish(temporary, path):
    """Give `temporary` the default permissions and rename it onto `path`."""
    os.chmod(temporary, default_mode())
    os.replace(temporary, path)


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """A unique temporary path next to `path`, published onto it only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path, suffix)
    try:
        yield temporary
        publish(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path, text):
    """Write `text` to `path` so readers see the old or the new file, never half of one."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def remove_parts(*finals):
    """Delete the temporaries of these output files that a killed run left; returns how many.

    Call it holding the lock of those outputs, so no live run's temporaries are removed.
    """
    removed = 0
    for final in map(Path, finals):
        for part in final.parent.glob(f".{glob.escape(final.name)}.*{PART_SUFFIX}*"):
            part.unlink(missing_ok=True)
            removed += 1
    return removed


def check_writable_folder(folder, what="output folder"):
    """Create `folder` if needed and prove a file can be written in it; `OutputError` if not."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: the {what} is a file, not a folder; choose another path.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temporary_path(folder / ".write-test")
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as error:
        raise OutputError(
            f"{folder}: cannot write the {what} ({error.strerror or error}); choose a folder you can write to."
        ) from None
    return folder


def check_writable_file(path, what="output file"):
    """Refuse `path` early when it is a folder or its folder cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give the {what} a file name, e.g. {path / 'out'}.")
    check_writable_folder(path.parent, f"folder of the {what}")
    return path


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputLock:
    """An exclusive, process-wide lock on the outputs named `name` in `folder`.

    Args:
        folder: Where the outputs (and `.<name>.lock`) are.
        name: What is being written (e.g. a scene's stem).
        wait: Wait for the holder to finish instead of refusing (for short
            read-modify-write updates such as a registry file).

    Attributes:
        stale_pid: The pid of a dead process whose lock file was taken over, else None.

    Raises:
        OutputLockedError: A live process holds the lock; the message names it.
    """

    def __init__(self, folder, name, wait=False):
        self.path = Path(folder) / f".{name}.lock"
        self.name, self.wait = name, wait
        self.stale_pid = None
        self._fd = None

    def _holder(self):
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def acquire(self):
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, default_mode())
            if fcntl is None:
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
            except OSError as error:
                os.close(fd)
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = self._holder()
                raise OutputLockedError(
                    f"{self.path.parent}: another run (pid {holder if holder else 'unknown'}) is writing "
                    f"the outputs of {self.name!r} there; wait for it to finish or choose another output folder."
                ) from None
            try:  # the holder may have removed the file between our open and flock
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        holder = self._holder()
        if holder and holder != os.getpid() and not _pid_alive(holder):
            self.stale_pid = holder
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self):
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
