"""Reading sources and writing results, the one way every part of exprgrad
does it (the command line, drawings, the import cache).

Reading never goes past the source size limit, so a huge file or
`/dev/zero` is refused after reading the limit, not after filling memory.
Writing is atomic for regular files (a temporary file in the same directory,
then `os.replace`, so a reader sees a whole old file or a whole new one);
the new file gets the usual permissions (0o666 less the umask), and a file
that already exists keeps its own.  Anything that is not a regular file (a
terminal, `/dev/stdout`, a FIFO) is written to directly and never opened for
reading, so a pipe cannot hang.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import sys

from .compiler import limits
from .compiler.printers.python import STDIN_NAME
from .errors import LimitError

STDIO = "-"  # as a FILE: standard input; as an output: standard output


def is_source_path(thing) -> bool:
    """Whether `thing` names an `.expr` file rather than being source text:
    a path object, or one line of text ending in `.expr` that is an existing
    file.  (Source text that happens to be such a file name is rare; a name
    with a NUL character is never a file.)"""
    if isinstance(thing, os.PathLike):
        return True
    return (isinstance(thing, str) and "\n" not in thing and thing.endswith(".expr")
            and os.path.isfile(thing))


def source_and_name(thing, filename: str | None = None) -> tuple[str, str]:
    """(source text, file name) for a path or for source text itself."""
    if is_source_path(thing):
        path = os.fspath(thing)
        return read_text(path), filename or path
    if isinstance(thing, str):
        return thing, filename or "<string>"
    raise TypeError(f"expected .expr source text or a path, not {type(thing).__name__}")


def read_text(path: str, limit: int = limits.MAX_SOURCE_BYTES) -> str:
    """The UTF-8 text of `path` (`-`: standard input), read with universal
    newlines; a text longer than `limit` characters is a `LimitError` raised
    after reading just past the limit.  OSError and UnicodeDecodeError pass
    through, and a name with a NUL character is a FileNotFoundError."""
    refuse_nul(path)
    if path == STDIO:
        return _read_stdin(limit)
    with open(path, encoding="utf-8") as file:
        return _bounded(file, path, limit)


def _read_stdin(limit: int) -> str:
    """Standard input as UTF-8 whatever the locale says (as files are read)."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # a replaced stdin (a StringIO): already text
        return _bounded(sys.stdin, STDIN_NAME, limit)
    stream = io.TextIOWrapper(buffer, encoding="utf-8")
    try:
        return _bounded(stream, STDIN_NAME, limit)
    finally:
        stream.detach()  # leave sys.stdin open


def refuse_nul(path: str) -> None:
    """A name with a NUL character names no file: FileNotFoundError, not the
    ValueError `open` raises."""
    if "\0" in path:
        raise FileNotFoundError(errno.ENOENT, "no such file (a file name cannot contain a NUL "
                                "character)", path)


def _bounded(file, name: str, limit: int) -> str:
    text = file.read(limit + 1)
    if len(text) > limit:
        raise LimitError(f"the source is longer than the limit of {limit:,} characters",
                         filename=name)
    return text


def display_name(path: str) -> str:
    """How messages and generated comments name a FILE argument."""
    return STDIN_NAME if path == STDIO else path


def is_regular_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def read_head(path: str, size: int = 4096) -> bytes | None:
    """The first bytes of an existing regular file; None when `path` is not
    one (missing, a directory, a device, a FIFO: those are never read)."""
    if not is_regular_file(path):
        return None
    with open(path, "rb") as file:
        return file.read(size)


def write_file(path: str, content: str | bytes, mode: int | None = None) -> None:
    """Write `content` (text is written as UTF-8 with `\\n` line ends) to
    `path`; `-` is standard output.  `mode`, if given, is the permission a new
    file asks for (the umask still applies); an existing file keeps its mode.
    Raises OSError (with `path` as its filename) when it cannot be written."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    refuse_nul(path)
    if path == STDIO:
        _write_stream(data)
    elif os.path.exists(path) and not is_regular_file(path):
        with open(path, "wb") as stream:  # a device or a FIFO: no rename, no reading
            stream.write(data)
    else:
        _write_atomic(os.path.realpath(path), data, mode, path)


def _write_stream(data: bytes) -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a replaced stdout (pytest's capture, a StringIO)
        sys.stdout.write(data.decode("utf-8"))
    else:
        buffer.write(data)
    sys.stdout.flush()


def _write_atomic(target: str, data: bytes, mode: int | None, shown: str) -> None:
    directory = os.path.dirname(target) or os.curdir
    try:
        existing = os.stat(target).st_mode & 0o7777
    except OSError:
        existing = None
    temporary = _temporary_name(directory, os.path.basename(target))
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                     0o666 if mode is None else mode & 0o777)  # the umask applies here
    except OSError as error:
        raise type(error)(error.errno, error.strerror, shown) from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        if existing is not None:
            os.chmod(temporary, existing)
        os.replace(temporary, target)
    except BaseException as error:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise type(error)(error.errno, error.strerror, shown) from None
        raise


def _temporary_name(directory: str, base: str) -> str:
    return os.path.join(directory, f".{base}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
