"""Model files: one ``.npz`` archive of plain arrays plus a JSON header, loaded without pickle.

Every model file carries ``header`` (UTF-8 JSON with ``format`` and ``version``), so a file of another
kind, a truncated download or a foreign archive is refused with one line instead of a traceback.
Strings (tactics, contexts) are stored as one UTF-8 blob and an offsets array.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np


class ModelFileError(ValueError):
    """A model file that cannot be used: missing, corrupt, foreign or of another version."""


def pack_strings(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [s.encode("utf-8") for s in strings]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, np.uint8)
    return blob, offsets


class PackedStrings:
    """Strings kept as one blob, decoded on access (a corpus-sized table loads in milliseconds)."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray) -> None:
        self._blob = blob.tobytes()
        self._offsets = offsets.tolist()  # Python ints: indexing a list is much cheaper than an array
        self._decoded: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        s = self._decoded.get(i)
        if s is None:
            s = self._decoded[i] = self._blob[self._offsets[i]:self._offsets[i + 1]].decode("utf-8")
        return s

    def empty(self, i: int) -> bool:
        return self._offsets[i] == self._offsets[i + 1]

    def to_list(self) -> list[str]:
        return [self[i] for i in range(len(self))]


def save(path: str | Path, kind: str, version: int, header: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically: a killed build never leaves a half-written model under the final name."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": kind, "version": version, **header}
    blob = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    tmp = p.with_name(p.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, header=blob, **arrays)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(p)


def load(path: str | Path, kind: str, version: int, names: tuple[str, ...]) -> tuple[dict, dict[str, np.ndarray]]:
    """The header and the named arrays of a model file of ``kind``; ModelFileError otherwise."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"no model file at {p}")
    try:
        with np.load(p, allow_pickle=False) as z:
            if "header" not in z.files:
                raise ModelFileError(f"{p} is not a prover model file (no header)")
            try:
                meta = json.loads(z["header"].tobytes().decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise ModelFileError(f"{p} is not a prover model file (unreadable header)") from None
            if not isinstance(meta, dict) or meta.get("format") != kind:
                found = meta.get("format") if isinstance(meta, dict) else None
                raise ModelFileError(f"{p} is not a {kind} model (format: {found!r})")
            if meta.get("version") != version:
                raise ModelFileError(f"{p} is a {kind} model of version {meta.get('version')!r}; this prover "
                                     f"reads version {version}: rebuild it")
            missing = [n for n in names if n not in z.files]
            if missing:
                raise ModelFileError(f"{p} is incomplete (missing {', '.join(missing)})")
            arrays = {n: z[n] for n in names}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as e:
        why = " ".join(str(e).split())[:200]
        raise ModelFileError(f"{p} is not a readable model file ({type(e).__name__}: {why})") from None
    return meta, arrays
