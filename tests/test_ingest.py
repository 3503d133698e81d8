"""Reading the knowledge folder: manifest, defaults, and PDF / DOCX / Markdown / text files."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.documents import KnowledgeError, discover, read_blocks
from index.paragraphs import build_paragraphs

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"


def make_pdf(path: Path, pages: list[list[str]], title: str | None = None) -> None:
    from fpdf import FPDF

    class Report(FPDF):
        def footer(self):  # a page number at the foot of every page, as real reports have
            self.set_y(-15)
            self.cell(0, 6, str(self.page_no()), align="C")

    pdf = Report()
    if title:
        pdf.set_title(title)
    pdf.set_font("helvetica", size=11)
    for lines in pages:
        pdf.add_page()
        for line in lines:
            pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def test_manifest_facts_are_read_and_checked():
    docs = {d.doc_id: d for d in discover(KNOWLEDGE)}
    assert set(docs) == {"000", "001", "002", "003", "004"}
    assert docs["001"].year == 2025 and docs["001"].publisher.startswith("Upphandlingsdialog Dalarna")
    assert docs["000"].year == 2019
    assert docs["002"].publisher == "Upphandlingsmyndigheten"
    assert all(len(d.sha256) == 64 for d in docs.values())


def test_pdf_ingestion_keeps_page_numbers(tmp_path):
    page1 = [
        "Reserverade kontrakt",
        "En upphandlande myndighet får reservera rätten att delta i en upphand-",
        "ling för sociala företag vars huvudsakliga syfte är social och yrkes-",
        "mässig integration av personer som står långt från arbetsmarknaden.",
    ]
    page2 = [
        "Direktupphandling",
        "Om en upphandling berör ett belopp under 586 907 kr är det möjligt",
        "att göra en så kallad direktupphandling utan krav på annonsering.",
    ]
    pdf = tmp_path / "rapport.pdf"
    make_pdf(pdf, [page1, page2], title="Testrapport om upphandling")
    docs = discover(tmp_path)
    assert docs[0].title == "Testrapport om upphandling" and docs[0].doc_id == "rapport"
    paragraphs = build_paragraphs("rapport", read_blocks(pdf))
    texts = {p.page: p.text for p in paragraphs}
    assert "upphandling för sociala företag" in texts[1]
    assert "yrkesmässig integration" in texts[1]
    assert "586 907 kr" in texts[2]
    assert {p.section for p in paragraphs} == {"Reserverade kontrakt", "Direktupphandling"}
    assert all(not p.text.strip().isdigit() for p in paragraphs)


def test_docx_ingestion_uses_heading_styles(tmp_path):
    import docx

    document = docx.Document()
    document.core_properties.title = "IOP-vägledning"
    document.add_heading("Vad är IOP?", level=1)
    document.add_paragraph("Idéburet offentligt partnerskap är en samverkansform mellan kommun och förening.")
    document.add_heading("Avtalet", level=2)
    document.add_paragraph("Överenskommelsen saknar sanktioner och bygger på tillit.")
    document.save(tmp_path / "iop.docx")
    doc = discover(tmp_path)[0]
    assert doc.title == "IOP-vägledning"
    paragraphs = build_paragraphs(doc.doc_id, read_blocks(doc.path))
    assert [(p.section, p.page) for p in paragraphs] == [("Vad är IOP?", None), ("Avtalet", None)]
    assert "sanktioner" in paragraphs[1].text


def test_markdown_and_text_without_manifest_get_defaults(tmp_path):
    (tmp_path / "Min_egen-guide.md").write_text("# Guide för sociala företag\n\nHär står hur man marknadsför sig under ett ramavtal.\n", encoding="utf-8")
    (tmp_path / "anteckningar.txt").write_text("Anteckningar om tröskelvärden och direktupphandling i kommunen.\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("not a source document", encoding="utf-8")
    docs = {d.doc_id: d for d in discover(tmp_path)}
    assert set(docs) == {"min-egen-guide", "anteckningar"}
    assert docs["min-egen-guide"].title == "Guide för sociala företag"
    assert docs["anteckningar"].language == "sv" and docs["anteckningar"].year is None


def test_bad_manifest_and_missing_files_are_reported(tmp_path):
    (tmp_path / "a.txt").write_text("Text om upphandling och ramavtal för kommuner.", encoding="utf-8")
    (tmp_path / "manifest.toml").write_text('[[documents]]\nid = "x"\nfile = "saknas.pdf"\n', encoding="utf-8")
    with pytest.raises(KnowledgeError, match="saknas.pdf"):
        discover(tmp_path)
    (tmp_path / "manifest.toml").write_text("[[documents]\nbroken", encoding="utf-8")
    with pytest.raises(KnowledgeError, match="manifest.toml"):
        discover(tmp_path)


def test_unreadable_pdf_gives_a_clear_error(tmp_path):
    bad = tmp_path / "trasig.pdf"
    bad.write_bytes(b"%PDF-1.4 this is not really a pdf")
    with pytest.raises(KnowledgeError, match="trasig.pdf"):
        read_blocks(bad)
