"""Generated Python text → a live module object, and the on-disk cache.

`load(path)` and the import hook (`importer.py`) compile an `.expr` file at
most once per content and exprgrad version, the way Python caches `.pyc`
files: the generated text is kept next to the source in
`__pycache__/NAME.exprgrad-VERSION.py` (or, where that directory is not
writable, in the user's cache directory).  The first line of a cache file
records the SHA-256 of the source, a fingerprint of the compiler that wrote
it and the SHA-256 of the generated text, so an entry for other source or
from another compiler (a stale one) or a damaged one is ignored and rewritten.  Files
are written to a temporary name and renamed into place (`os.replace`), so a
reader, in this process or another, sees a whole old file or a whole new one.

Generated code is compiled under the cache file's name and its text is also
registered with `linecache`, so a traceback shows the generated line with its
`# model.expr:12:9` comment even if the cache file is rewritten meanwhile.
"""

from __future__ import annotations

import functools
import hashlib
import linecache
import os
import sys
import types
from pathlib import Path

from .. import files
from .._version import __version__
from ..compiler.pipeline import emit
from ..errors import CompileError

CACHE_DIR_NAME = "__pycache__"
CACHE_ENV = "EXPRGRAD_CACHE_DIR"  # overrides the user cache directory
# Set (non-empty) to stop writing cache entries.  PYTHONDONTWRITEBYTECODE does
# not apply: it is often set in containers, where recompiling every `.expr` at
# every import would be a surprise, and the cache holds source, not bytecode.
NO_CACHE_ENV = "EXPRGRAD_NO_CACHE"
_HEADER = ("# exprgrad cache: source sha256={source} exprgrad {version} generator {generator}"
           " text sha256={text}\n")
# The packages whose code decides the generated text: an entry made by other
# code (a development checkout changed within one version) is stale.
_GENERATOR_PACKAGES = ("compiler", "grammar")


def module_from_text(text: str, filename: str, module_name: str | None = None,
                     code_filename: str | None = None) -> types.ModuleType:
    """A module running the generated `text` compiled from `filename`.
    `code_filename` is the file holding `text`, if any (tracebacks name it)."""
    name = module_name or module_name_for(filename)
    module = types.ModuleType(name, f"Compiled by exprgrad from {filename}.")
    module.__exprgrad_source__ = filename
    exec_generated(text, module, code_filename)
    return module


def exec_generated(text: str, module: types.ModuleType, code_filename: str | None = None) -> None:
    """Run generated `text` in `module`, with its lines known to `linecache`."""
    if code_filename is None:
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        source = str(module.__exprgrad_source__).replace("\0", "\\0")  # compile() refuses NUL
        code_filename = f"<exprgrad {source} {digest}>"
    if getattr(module, "__file__", None) is None:
        module.__file__ = code_filename
    for code in _compiled_parts(text, code_filename):
        exec(code, module.__dict__)
    # Registered after compiling, so the lines are not held during CPython's
    # peak.  mtime None: linecache keeps the entry even if the file changes.
    linecache.cache[code_filename] = (len(text), None, text.splitlines(True), code_filename)


FUNCTION_SEPARATOR = "\n\n\ndef "


def _compiled_parts(text: str, code_filename: str):
    """The code of `text`, one top-level function at a time.

    CPython's parser holds every token of what it compiles, with its memo
    entries, about 1 KB per arithmetic operation: compiling a large module's
    functions one by one bounds that peak by the largest function instead of
    the whole module.  Each part's code is moved to its line in the whole
    text, so tracebacks show the generated module's line numbers."""
    start, line = 0, 1
    while start < len(text):
        end = text.find(FUNCTION_SEPARATOR, start)
        end = len(text) if end < 0 else end + 3  # the part keeps its blank lines
        part = text[start:end]
        yield _moved(compile(part, code_filename, "exec"), line - 1)
        line += part.count("\n")
        start = end


def _moved(code: types.CodeType, lines: int) -> types.CodeType:
    """`code` with every line number, its functions' too, `lines` further down."""
    if not lines:
        return code
    consts = tuple(_moved(c, lines) if isinstance(c, types.CodeType) else c
                   for c in code.co_consts)
    return code.replace(co_firstlineno=code.co_firstlineno + lines, co_consts=consts)


def compile_source(source: str, filename: str = "<string>",
                   target: str = "python") -> types.ModuleType:
    """Compile `.expr` source text to a module with f, f_grad/f_vjp, ...
    for `target` ("python" or "array")."""
    return module_from_text(emit(source, filename, target=target), filename)


def load(path: str | os.PathLike, target: str = "python") -> types.ModuleType:
    """The module for an `.expr` file, compiled once per content and target (cached)."""
    path = os.fspath(path)
    files.refuse_nul(path)
    text, code_filename = generated_text(path, target)
    module = types.ModuleType(module_name_for(path), f"Compiled by exprgrad from {path}.")
    module.__exprgrad_source__ = path
    module.__file__ = os.path.abspath(path)
    module.__cached__ = code_filename
    exec_generated(text, module, code_filename)
    return module


def module_name_for(filename: str) -> str:
    base = os.path.basename(filename)
    stem = base[:-5] if base.endswith(".expr") else base
    return stem if stem.isidentifier() else "exprgrad_module"


# --- the cache -----------------------------------------------------------------
def generated_text(path: str, target: str = "python") -> tuple[str, str | None]:
    """The Python text for the `.expr` file at `path`, from the cache when
    it holds a sound entry for this source, otherwise compiled (a bad source
    raises CompileError naming `path`) and cached.  Also returns the cache
    file holding the text, or None when no cache directory is writable.
    The text of a cache file includes its first line (a comment), so line
    numbers in tracebacks match the file."""
    with open(path, "rb") as file:
        raw = file.read()
    source_hash = hashlib.sha256(raw).hexdigest()
    candidates = cache_paths(path, target)
    for candidate in candidates:
        entry = read_cache(candidate, source_hash)
        if entry is not None:
            return entry, candidate
    source = _decode(raw, path)
    try:
        text = emit(source, os.path.basename(path), target=target)
    except CompileError as error:
        raise error.located(path, source) from None
    if not os.environ.get(NO_CACHE_ENV):
        entry = _header(source_hash, text) + text
        mode = _cache_mode(path)
        for candidate in candidates:
            if write_atomic(candidate, entry, mode):
                return entry, candidate
    return text, None


def _cache_mode(source_path: str) -> int:
    """Permissions of a cache file: the source's, plus the owner's write
    permission (as Python does for `.pyc` files)."""
    try:
        return (os.stat(source_path).st_mode & 0o777) | 0o200
    except OSError:
        return 0o644


def _decode(raw: bytes, path: str) -> str:
    """Source text as `open(path, encoding="utf-8")` reads it (universal newlines)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CompileError(f"the file is not UTF-8 text ({error.reason} at byte {error.start})",
                           filename=path) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def cache_paths(path: str, target: str = "python") -> list[str]:
    """Where the cache entry of `path` may live, in order of preference: the
    `__pycache__` next to the source, then the user cache directory.  The
    array target's entries are `NAME.exprgrad-VERSION-array.py`."""
    path = os.path.abspath(path)
    directory, base = os.path.split(path)
    stem = base[:-5] if base.endswith(".expr") else base
    tag = f"exprgrad-{__version__}" + ("" if target == "python" else f"-{target}")
    beside = os.path.join(directory, CACHE_DIR_NAME, f"{stem}.{tag}.py")
    where = hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    user = os.path.join(user_cache_dir(), f"{stem}-{where}.{tag}.py")
    return [beside, user]


def user_cache_dir() -> str:
    override = os.environ.get(CACHE_ENV)
    if override:
        return override
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "exprgrad")


def _header(source_hash: str, text: str) -> str:
    return _HEADER.format(source=source_hash, version=__version__,
                          generator=generator_fingerprint(),
                          text=hashlib.sha256(text.encode()).hexdigest())


@functools.cache
def generator_fingerprint() -> str:
    """A short hash of the compiler's own files, read once per process, so a
    cache entry is reused only by the code that wrote it, not merely by the
    same version number."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for folder in _GENERATOR_PACKAGES:
        for path in sorted((package / folder).rglob("*")):
            if path.suffix in (".py", ".lark") and path.is_file():
                digest.update(path.relative_to(package).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def read_cache(cache_path: str, source_hash: str) -> str | None:
    """The content of `cache_path` if its generated text was made from this
    source by this version and is intact; None for a missing, stale or
    damaged entry."""
    try:
        with open(cache_path, encoding="utf-8", newline="") as file:
            header = file.readline()
            text = file.read()
    except (OSError, UnicodeDecodeError):
        return None
    return header + text if header == _header(source_hash, text) else None


def write_atomic(target: str, content: str, mode: int = 0o644) -> bool:
    """Write `content` to `target` through a temporary file and a rename, so
    no reader ever sees part of it; a new file asks for `mode` (the umask
    applies), an existing one keeps its mode.  False when the directory is
    not writable."""
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        files.write_file(target, content, mode)
        return True
    except OSError:
        return False
