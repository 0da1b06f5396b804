"""A corpus in: a folder, a manifest or a zip of audio files with their references, read as one list of clips.

The layouts people already keep their recordings in, so nothing has to be converted first: NVIDIA NeMo's
JSON-lines manifest (`audio_filepath` relative to the manifest, `text`, optional `duration`, every other
field a column), Hugging Face's audiofolder (`metadata.csv` or `metadata.jsonl` with `file_name` and a
text column), a `.txt` beside each audio file, or audio alone (no references: error rates stay empty).

Uploads are hostile until checked. A zip is unpacked only within limits (size, file count, what it
would unpack to, counted while writing, since a header can lie), and an entry whose name leaves the
folder (`../`, absolute, a link) is never written. In a zip, and in a server's own folder, a manifest
line naming a path outside the corpus is that clip's one-line error; only a local manifest given on the
command line may name absolute paths, as NeMo's manifests usually do.
"""

from __future__ import annotations

import csv
import io
import json
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from whisper_inquiry.errors import CorpusError

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".webm", ".mp4", ".mkv")
MANIFEST_SUFFIXES = (".jsonl", ".json")
TEXT_COLUMNS = ("text", "transcription", "sentence", "transcript", "normalized_text")  # audiofolder's usual names


@dataclass(frozen=True)
class Limits:
    """How much of a zip is unpacked at the most. The defaults suit a class's corpus on a small server."""

    zip_bytes: int = 200_000_000  # the archive itself
    files: int = 2000  # entries in it, and clips in a corpus
    unpacked_bytes: int = 1_000_000_000  # what its entries would unpack to, all together


@dataclass(frozen=True)
class Clip:
    """One row of a corpus, as the corpus names it. `error` says in one line why it cannot be run."""

    audio: str  # the path as the corpus spells it (relative to its folder, or absolute in a local manifest)
    path: Path | None  # the file, resolved; None where the row is refused
    reference: str | None  # what was said; None where the corpus has no reference for it
    duration_s: float | None = None  # as the manifest gives it
    columns: dict[str, Any] = field(default_factory=dict)  # every other field, for slices
    error: str | None = None


@dataclass(frozen=True)
class Corpus:
    name: str
    root: Path  # the folder every relative path is read from
    layout: str  # which of the layouts above it was read as, in words
    clips: list[Clip]
    refused: list[str] = field(default_factory=list)  # zip entries never written, each with why

    @property
    def has_references(self) -> bool:
        return any(c.reference is not None for c in self.clips)

    @property
    def columns(self) -> list[str]:
        """The extra columns the corpus carries, in the order they first appear."""
        seen: dict[str, None] = {}
        for clip in self.clips:
            seen.update(dict.fromkeys(clip.columns))
        return list(seen)


def open_corpus(source: str | Path, trusted: bool = False, limits: Limits = Limits(),
                unpack_to: Path | None = None) -> Corpus:
    """Read a folder, a manifest (.jsonl / .json) or a zip. `trusted` (a path typed on one's own command line)
    lets a manifest name files anywhere; otherwise every path must stay inside the corpus's folder. A zip is
    unpacked into `unpack_to` (required for a zip)."""
    path = Path(source)
    if not path.exists():
        raise CorpusError(f"no such corpus: {path}")
    if path.is_file() and path.suffix.lower() == ".zip":
        if unpack_to is None:
            raise CorpusError("a zip corpus needs a folder to unpack into")
        with path.open("rb") as f:
            return open_zip(f, unpack_to, path.stem, limits)
    if path.is_file():
        if path.suffix.lower() not in MANIFEST_SUFFIXES:
            raise CorpusError(f"{path.name} is neither a folder, a .jsonl manifest nor a .zip")
        return _checked(Corpus(path.parent.name or path.stem, path.parent.resolve(), "NeMo manifest",
                               read_manifest(path, path.parent.resolve(), trusted)))
    return _checked(read_folder(path, trusted))


def open_zip(data: bytes | BinaryIO, unpack_to: Path, name: str = "upload", limits: Limits = Limits()) -> Corpus:
    """Unpack an uploaded zip into `unpack_to` within `limits`, then read it as a folder (never trusted)."""
    refused = unpack_zip(data, unpack_to, limits)
    corpus = read_folder(unpack_to, trusted=False, name=name)
    return _checked(Corpus(corpus.name, corpus.root, corpus.layout, corpus.clips, refused), limits)


def _checked(corpus: Corpus, limits: Limits | None = None) -> Corpus:
    """A corpus with no audio is refused in one line; an upload's, past its limit of clips too (a folder or
    manifest of one's own may hold thousands)."""
    if not corpus.clips:
        raise CorpusError(f"no audio in {corpus.name}: expected audio files ({', '.join(AUDIO_SUFFIXES)}) "
                          "or a manifest naming them")
    if limits is not None and len(corpus.clips) > limits.files:
        raise CorpusError(f"{corpus.name} has {len(corpus.clips)} clips; at most {limits.files} are read at once")
    return corpus


# -- zips ---------------------------------------------------------------------------------------------------------

def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an entry must not be written, or None. Names are checked as written (zip uses '/')."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return f"{info.filename}: an absolute path"
    if ".." in PurePosixPath(name).parts:
        return f"{info.filename}: leaves the corpus folder"
    if stat.S_ISLNK(info.external_attr >> 16):
        return f"{info.filename}: a link"
    return None


def unpack_zip(data: bytes | BinaryIO, dest: Path, limits: Limits = Limits()) -> list[str]:
    """Write a zip's safe entries under `dest`; return the refused ones, each with why. A zip over the
    limits is refused whole, in one line, before anything is written (and again while writing, by the
    bytes actually unpacked)."""
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    if size > limits.zip_bytes:
        raise CorpusError(f"the zip is {size / 1e6:.0f} MB; at most {limits.zip_bytes / 1e6:.0f} MB is read")
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile:
        raise CorpusError("not a zip file: it could not be opened as one") from None
    with archive:
        entries = [i for i in archive.infolist() if not i.is_dir()]
        if len(entries) > limits.files:
            raise CorpusError(f"the zip holds {len(entries)} files; at most {limits.files} are read")
        claimed = sum(i.file_size for i in entries)
        if claimed > limits.unpacked_bytes:
            raise CorpusError(f"the zip would unpack to {claimed / 1e6:.0f} MB; at most "
                              f"{limits.unpacked_bytes / 1e6:.0f} MB is unpacked")
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        refused, written = [], 0
        for info in entries:
            problem = _entry_problem(info)
            target = (root / info.filename.replace("\\", "/")).resolve()
            if problem is None and not target.is_relative_to(root):
                problem = f"{info.filename}: leaves the corpus folder"
            if problem:
                refused.append(problem)
                continue
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, target.open("wb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > limits.unpacked_bytes:  # more than the headers said: a bomb
                            raise CorpusError(f"the zip unpacks to more than {limits.unpacked_bytes / 1e6:.0f} MB; "
                                              "refused")
                        out.write(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # zipfile stops at the stated size
                target.unlink(missing_ok=True)
                raise CorpusError(f"the zip is damaged: {info.filename} ({exc})") from None
            except OSError as exc:  # a file where a folder must go, or the other way round
                refused.append(f"{info.filename}: {exc.strerror or exc}")
    return refused


# -- folders ------------------------------------------------------------------------------------------------------

def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")


def read_folder(folder: str | Path, trusted: bool = False, name: str | None = None) -> Corpus:
    """Find the folder's layout: a manifest at its top, else audiofolder metadata, else audio files (with a
    `.txt` beside each where there is one)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"no such folder: {folder}")
    root = folder.resolve()
    name = name or folder.name
    inside = [p for p in root.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(inside) == 1 and inside[0].is_dir() and not inside[0].is_symlink():  # a zipped folder: its content
        root = inside[0].resolve()
    manifest = _manifest(root)
    if manifest is not None:
        return Corpus(name, root, f"NeMo manifest ({manifest.name})", read_manifest(manifest, root, trusted))
    for meta in ("metadata.csv", "metadata.jsonl"):
        if (root / meta).is_file():
            return Corpus(name, root, f"audiofolder ({meta})", read_audiofolder(root / meta, root, trusted))
    audio = sorted(p for p in root.rglob("*") if p.is_file() and _is_audio(p) and p.resolve().is_relative_to(root))
    clips = []
    for p in audio:
        txt = p.with_suffix(".txt")
        beside = txt.is_file() and (trusted or txt.resolve().is_relative_to(root))
        reference = txt.read_text(encoding="utf-8", errors="replace").strip() if beside else None
        clips.append(Clip(p.relative_to(root).as_posix(), p, reference))
    with_text = sum(c.reference is not None for c in clips)
    layout = "a .txt beside each audio file" if with_text else "audio files, no references"
    return Corpus(name, root, layout, clips)


def _manifest(root: Path) -> Path | None:
    """The folder's NeMo manifest: a `manifest*` file, else a .jsonl / .json whose first line names an
    `audio_filepath` (a `config.json` beside the clips is not one)."""
    found = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES
                   and not p.name.startswith("metadata"))
    for p in found:
        if p.stem.startswith("manifest"):
            return p
    for p in found:
        with p.open(encoding="utf-8", errors="replace") as f:
            if "audio_filepath" in f.readline():
                return p
    return None


def _resolve(named: str, root: Path, trusted: bool) -> tuple[Path | None, str | None]:
    """The file a row names, or why it is refused."""
    if not named.strip():
        return None, "no audio file named"
    path = Path(named)
    if path.is_absolute() and not trusted:
        return None, f"{named}: an absolute path; a corpus may only name files inside its folder"
    resolved = (root / path).resolve()
    if not trusted and not resolved.is_relative_to(root):
        return None, f"{named}: leaves the corpus folder; refused"
    if not resolved.is_file():
        return None, f"no such file: {named}"
    return resolved, None


def _clip(named: Any, reference: Any, duration: Any, columns: dict, root: Path, trusted: bool,
          where: str) -> Clip:
    if not isinstance(named, str):
        return Clip(f"({where})", None, None, None, columns, f"{where}: no audio file named")
    path, error = _resolve(named, root, trusted)
    text = None if reference is None else str(reference)
    try:
        seconds = None if duration in (None, "") else float(duration)
    except (TypeError, ValueError):
        seconds = None
    return Clip(named, path, text, seconds, columns, error)


def read_manifest(manifest: Path, root: Path, trusted: bool = False) -> list[Clip]:
    """NeMo's JSON-lines manifest: one object per line. A line that is not JSON is its own row's error,
    with its line number; the other lines still run."""
    clips = []
    with manifest.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{manifest.name} line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                clips.append(Clip(f"({where})", None, None, error=f"{where} is not valid JSON: {exc.msg}"))
                continue
            if not isinstance(row, dict):
                clips.append(Clip(f"({where})", None, None, error=f"{where} is not a JSON object"))
                continue
            columns = {k: v for k, v in row.items() if k not in ("audio_filepath", "text", "duration")
                       and isinstance(v, (str, int, float, bool))}
            clips.append(_clip(row.get("audio_filepath"), row.get("text"), row.get("duration"), columns, root,
                               trusted, where))
    return clips


def read_audiofolder(meta: Path, root: Path, trusted: bool = False) -> list[Clip]:
    """Hugging Face's audiofolder: `file_name` and a text column per row, every other field a column."""
    if meta.suffix == ".csv":
        with meta.open(encoding="utf-8", errors="replace", newline="") as f:
            rows = [(i + 2, row) for i, row in enumerate(csv.DictReader(f))]  # line 1 is the header
    else:
        rows = []
        for number, line in enumerate(meta.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    rows.append((number, f"not valid JSON: {exc.msg}"))
    clips = []
    for number, row in rows:
        where = f"{meta.name} line {number}"
        if not isinstance(row, dict):
            why = row if isinstance(row, str) else "not a JSON object"
            clips.append(Clip(f"({where})", None, None, error=f"{where} is {why}"))
            continue
        text_column = next((c for c in TEXT_COLUMNS if c in row), None)
        columns = {k: v for k, v in row.items() if k not in ("file_name", text_column)
                   and isinstance(v, (str, int, float, bool))}
        clips.append(_clip(row.get("file_name"), row.get(text_column) if text_column else None, None, columns,
                           root, trusted, where))
    return clips
