"""The knowledge folder: its manifest, its files, and reading each file into cleaned blocks."""

from __future__ import annotations

import hashlib
import re
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .clean import Block, clean_pages, normalize_chars, repair_inline, tidy

SUPPORTED_SUFFIXES = {".pdf", ".docx", ".md", ".markdown", ".txt"}
MANIFEST_NAME = "manifest.toml"
IGNORED_NAMES = {"readme.md", "readme.txt", MANIFEST_NAME}


class KnowledgeError(ValueError):
    """A problem with the knowledge folder that the user can fix; the message says how."""


class DocumentEntry(BaseModel):
    """One [[documents]] table of knowledge/manifest.toml."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    file: str
    slug: str | None = None
    title: str | None = None
    publisher: str | None = None
    year: int | None = Field(None, ge=1900, le=2100)
    language: str = "sv"


@dataclass(frozen=True)
class SourceDocument:
    doc_id: str
    slug: str
    title: str
    publisher: str | None
    year: int | None
    language: str
    path: Path
    sha256: str


def slugify(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64] or "document"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_manifest(knowledge_dir: Path) -> dict[str, DocumentEntry]:
    """Manifest entries keyed by file name; an absent manifest means no entries."""
    path = knowledge_dir / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        entries = [DocumentEntry(**d) for d in data.get("documents", [])]
    except (tomllib.TOMLDecodeError, ValidationError, TypeError) as exc:
        raise KnowledgeError(f"{path} is not a valid manifest: {exc}") from exc
    by_file: dict[str, DocumentEntry] = {}
    ids: set[str] = set()
    for e in entries:
        if e.id in ids:
            raise KnowledgeError(f"{path}: document id {e.id!r} is used twice")
        ids.add(e.id)
        by_file[e.file] = e
    return by_file


def discover(knowledge_dir: Path) -> list[SourceDocument]:
    """Every supported file in the knowledge folder, with manifest facts or sensible defaults."""
    if not knowledge_dir.is_dir():
        raise KnowledgeError(f"knowledge folder {knowledge_dir} does not exist (set ASSISTANT_KNOWLEDGE_DIR)")
    manifest = load_manifest(knowledge_dir)
    files = sorted(
        p for p in knowledge_dir.iterdir()
        if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES and p.name.lower() not in IGNORED_NAMES
        and not p.name.startswith(".")
    )
    missing = sorted(set(manifest) - {p.name for p in files})
    if missing:
        raise KnowledgeError(
            f"{knowledge_dir / MANIFEST_NAME} lists files that are not in the folder: {', '.join(missing)}"
        )
    docs: list[SourceDocument] = []
    used: set[str] = {e.id for e in manifest.values()}
    for path in files:
        entry = manifest.get(path.name)
        if entry is None:
            doc_id = slugify(path.stem)
            base, n = doc_id, 2
            while doc_id in used:
                doc_id, n = f"{base}-{n}", n + 1
            used.add(doc_id)
            title, year = default_title_and_year(path)
            docs.append(SourceDocument(doc_id, doc_id, title, None, year, "sv", path, file_sha256(path)))
        else:
            docs.append(
                SourceDocument(
                    entry.id, entry.slug or slugify(entry.title or path.stem), entry.title or default_title_and_year(path)[0],
                    entry.publisher, entry.year, entry.language, path, file_sha256(path),
                )
            )
    return docs


def default_title_and_year(path: Path) -> tuple[str, int | None]:
    """Title from PDF or DOCX metadata or a Markdown '# ' heading (else the file name), and for a
    PDF the year of its creation date."""
    title: str | None = None
    year: int | None = None
    try:
        suffix = path.suffix.lower()
        if suffix == ".pdf":
            from pypdf import PdfReader

            meta = PdfReader(str(path)).metadata
            if meta:
                title = meta.title
                year = meta.creation_date.year if meta.creation_date else None
        elif suffix == ".docx":
            import docx

            title = docx.Document(str(path)).core_properties.title
        elif suffix in {".md", ".markdown"}:
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("# "):
                    title = line[2:]
                    break
    except Exception:  # noqa: BLE001 - a title is a nicety; a broken file fails later with a clear message
        pass
    if title and title.strip():
        return title.strip(), year
    return path.stem.replace("_", " ").replace("-", " ").strip() or path.name, year


def read_blocks(path: Path) -> list[Block]:
    """Read a supported file into cleaned blocks (PDF blocks carry 1-based page numbers)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".pdf":
            return _pdf_blocks(path)
        if suffix == ".docx":
            return _docx_blocks(path)
        if suffix in {".md", ".markdown"}:
            return _markdown_blocks(path.read_text(encoding="utf-8", errors="replace"))
        if suffix == ".txt":
            return clean_pages([(None, path.read_text(encoding="utf-8", errors="replace"))])
    except KnowledgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure becomes one clear message
        raise KnowledgeError(f"could not read {path}: {exc}") from exc
    raise KnowledgeError(f"{path}: unsupported file type {suffix} (use PDF, DOCX, Markdown or text)")


def _pdf_blocks(path: Path) -> list[Block]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    if reader.is_encrypted:
        raise KnowledgeError(f"{path} is encrypted; save an unprotected copy in the knowledge folder")
    pages = [(number, page.extract_text() or "") for number, page in enumerate(reader.pages, start=1)]
    if not any(text.strip() for _, text in pages):
        raise KnowledgeError(f"{path} has no extractable text (a scanned PDF needs OCR first)")
    return clean_pages(pages)


def _prose(text: str) -> str:
    return tidy(repair_inline(normalize_chars(text)))


def _docx_blocks(path: Path) -> list[Block]:
    import docx

    document = docx.Document(str(path))
    blocks: list[Block] = []
    for para in document.paragraphs:
        text = para.text.strip()
        if not text:
            continue
        style = (para.style.name if para.style is not None else "") or ""
        if style.lower().startswith(("heading", "rubrik", "title")):
            blocks.append(Block("heading", normalize_chars(text).strip(), None))
        elif style.lower().startswith("list") and blocks and blocks[-1].kind == "text":
            blocks[-1] = Block("text", f"{blocks[-1].text}\n• {_prose(text)}", None)
        else:
            blocks.append(Block("text", _prose(text), None))
    for table in document.tables:
        rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows]
        if rows:
            blocks.append(Block("table", "\n".join(rows), None))
    return blocks


def _markdown_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            if any(re.match(r"^\s*(?:[-*+]|\d+\.)\s+", line) for line in current):
                blocks.append(Block("text", "\n".join(_prose(line) for line in current), None))
            else:
                blocks.append(Block("text", _prose(" ".join(line.strip() for line in current)), None))
            current.clear()

    for line in normalize_chars(text).split("\n"):
        heading = re.match(r"^#{1,6}\s+(.*)$", line)
        if heading:
            flush()
            blocks.append(Block("heading", heading.group(1).strip(), None))
        elif not line.strip():
            flush()
        else:
            current.append(line)
    flush()
    return [b for b in blocks if b.text]
