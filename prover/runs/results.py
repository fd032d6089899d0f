"""The results log: one JSON line per theorem, flushed and fsynced as each theorem finishes.

The first line records the run's configuration (``"type": "config"``); every other line is one
theorem's result (``"type": "result"``). A run killed mid-write leaves at most one partial last line,
which resume cuts off before appending, so a resumed run ends with exactly one line per theorem.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

# Every setting that changes results must match for --resume to append to a file ("a.b": key b of
# the dict at a). Not compared: workers, Ray, grace, the device (same model, same decoding), and
# the tactics file's path (its content is: tactics_sha256). The coqlib benchmark's theorems are its
# packaged sample (sample_sha1); miniF2F's are in data_dir.
RESUME_KEYS = ("benchmark", "backend", "split", "generator", "tactics_sha256", "model",
               "model_options.decoding", "model_options.temperatures", "model_options.max_new_tokens",
               "budgets", "seed", "data_dir", "sample_sha1", "online", "learn_file")
RESUME_DEFAULTS = {"benchmark": "minif2f", "online": False, "learn_file": False}  # files written before the key existed
# Lines that are no verdict on their theorem (the model's service died during it): --resume runs the
# theorem again, and its new line replaces the old one for every reader.
RERUN_REASONS = ("generator_unavailable",)


def _setting(config: dict, key: str):
    value = config
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        value = RESUME_DEFAULTS.get(key)
    return json.loads(json.dumps(value))  # as the file holds it: tuples are lists


class ResultsError(ValueError):
    pass


@dataclass
class ResultsFile:
    path: Path
    config: dict | None = None
    results: list[dict] = field(default_factory=list)
    partial_bytes: int = 0  # length of a trailing line without its newline

    @property
    def done(self) -> set[tuple[str, str]]:
        return {(r["name"], r.get("split", "")) for r in self.results
                if r.get("failure_reason") not in RERUN_REASONS}


def read_results(path: str | Path) -> ResultsFile:
    """Read a results file; a partial last line (a killed writer) is ignored."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ResultsError(f"no such results file: {p}") from None
    out = ResultsFile(p)
    index: dict[tuple, int] = {}
    lines = data.split(b"\n")
    if lines and lines[-1] != b"":
        out.partial_bytes = len(lines[-1])
    for number, raw in enumerate(lines[:-1], 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError:
            raise ResultsError(f"{p}:{number}: not a JSON line") from None
        kind = rec.get("type")
        if kind == "config":
            out.config = rec
        elif kind == "result":
            key = (rec.get("name"), rec.get("split", ""))
            if key in index:  # a theorem run again after a generator failure: the later line counts
                out.results[index[key]] = rec
            else:
                index[key] = len(out.results)
                out.results.append(rec)
        else:
            raise ResultsError(f"{p}:{number}: a line of unknown type {kind!r}")
    return out


class ResultsLog:
    """Appends result lines durably. Only the driver process writes."""

    def __init__(self, path: str | Path, config: dict, resume: bool) -> None:
        self.path = Path(path)
        self.existing = ResultsFile(self.path)
        if self.path.exists() and self.path.stat().st_size > 0:
            if not resume:
                raise ResultsError(f"{self.path} exists: pass --resume to continue it, or choose another --out")
            self.existing = read_results(self.path)
            old = self.existing.config or {}
            for key in RESUME_KEYS:
                if key.split(".")[0] in config and _setting(old, key) != _setting(config, key):
                    raise ResultsError(f"cannot resume {self.path}: its {key} is {_setting(old, key)!r}, "
                                       f"this run's is {_setting(config, key)!r}")
            if self.existing.partial_bytes:
                with open(self.path, "r+b") as f:
                    f.truncate(self.path.stat().st_size - self.existing.partial_bytes)
            self._file = open(self.path, "a", encoding="utf-8")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w", encoding="utf-8")
            self._write({"type": "config", **config})

    def _write(self, record: dict) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def append(self, record: dict) -> None:
        self._write({"type": "result", **record})

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "ResultsLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
