"""Content sniffing: each supported type from real or hand-built heads, None for everything else."""

from __future__ import annotations

import io
import random
import struct
import wave
import zipfile

import docx
import pytest
from fpdf import FPDF

from core.sniff import DOCUMENT_TYPES, sniff_content_type

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="hello")
    return bytes(pdf.output())


def _docx() -> bytes:
    buffer = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("hello")
    document.save(buffer)
    return buffer.getvalue()


def _zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.writestr(name, "<x/>" * 100)
    return buffer.getvalue()


def _wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\x00\x00" * 1600)
    return buffer.getvalue()


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00\x00\x00\x08free"


def _ebml(doc_type: bytes) -> bytes:
    elements = (
        b"\x42\x86\x81\x01"  # EBMLVersion 1
        + b"\x42\xf7\x81\x01"  # EBMLReadVersion 1
        + b"\x42\xf2\x81\x04"  # EBMLMaxIDLength 4
        + b"\x42\xf3\x81\x08"  # EBMLMaxSizeLength 8
        + b"\x42\x82"
        + bytes([0x80 | len(doc_type)])
        + doc_type
        + b"\x42\x87\x81\x04"  # DocTypeVersion 4
    )
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(elements)]) + elements + b"\x18\x53\x80\x67"


def _ogg_vorbis() -> bytes:
    packet = b"\x01vorbis" + b"\x00" * 23
    header = b"OggS\x00\x02" + b"\x00" * 8 + b"\x01\x00\x00\x00" + b"\x00" * 8
    return header + bytes([1, len(packet)]) + packet


def _id3(size: int) -> bytes:
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x04\x00\x00" + syncsafe + b"\x00" * size


# MPEG-1 layer III, 128 kbit/s, 44.1 kHz, no padding: 144 * 128000 // 44100 = 417 bytes a frame.
MP3_FRAME = b"\xff\xfb\x90\x64" + b"\x00" * 413
# MPEG-2 layer III, 64 kbit/s, 22.05 kHz, padded: 72 * 64000 // 22050 + 1 = 209 bytes a frame.
MP2_FRAME = b"\xff\xf3\x82\x00" + b"\x00" * 205
FLAC = b"fLaC\x00\x00\x00\x22" + b"\x00" * 34


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("fpdf2 PDF", _pdf(), "application/pdf"),
        ("python-docx DOCX", _docx(), DOCX),
        ("zip with only [Content_Types].xml", _zip(["[Content_Types].xml"]), DOCX),
        ("stdlib wave WAV", _wav(), "audio/wav"),
        ("FLAC", FLAC, "audio/flac"),
        ("ID3-tagged FLAC", _id3(20) + FLAC, "audio/flac"),
        ("Ogg Vorbis", _ogg_vorbis(), "audio/ogg"),
        ("ID3-tagged MP3", _id3(30) + MP3_FRAME, "audio/mpeg"),
        ("MPEG-2 layer III frames", MP2_FRAME * 3, "audio/mpeg"),
        ("bare MP3 frames", MP3_FRAME * 3, "audio/mpeg"),
        ("MP4 isom", _ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), "video/mp4"),
        ("MP4 mp42", _ftyp(b"mp42", b"mp42", b"isom"), "video/mp4"),
        ("M4A", _ftyp(b"M4A ", b"M4A ", b"mp42", b"isom"), "audio/mp4"),
        ("QuickTime", _ftyp(b"qt  ", b"qt  "), "video/quicktime"),
        ("WebM", _ebml(b"webm"), "video/webm"),
        ("Matroska", _ebml(b"matroska"), "video/x-matroska"),
    ],
)
def test_binary_types_are_recognised(name: str, head: bytes, expected: str) -> None:
    """Each supported binary format is recognised from the first 8 KiB of a real or built file."""
    assert sniff_content_type(head[:8192], "upload.bin") == expected, name


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("plain zip", _zip(["notes.txt", "data/values.csv"])),
        ("xlsx-like zip", _zip(["[Content_Types].xml", "_rels/.rels", "xl/workbook.xml"])),
        ("AAC ADTS frame", b"\xff\xf1\x50\x80" + b"\x00" * 100),
        ("single MP3 frame header", MP3_FRAME),
        ("HEIC image", _ftyp(b"heic", b"mif1", b"heic")),
        ("PNG", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100),
        ("UTF-16 text", "hello world".encode("utf-16")),
        ("NUL in text", b"hello\x00world"),
        ("invalid UTF-8", b"caf\xe9 au lait, " * 10),
        ("control characters", bytes(range(1, 32)) * 10),
    ],
)
def test_other_content_is_unknown(name: str, head: bytes) -> None:
    """Archives, images, other audio and binary-looking bytes are not guessed at."""
    assert sniff_content_type(head, "file.txt") is None, name


def test_random_bytes_are_unknown() -> None:
    """Seeded random bytes, whatever the file name claims, are unknown."""
    generator = random.Random(1234)
    for _ in range(50):
        head = generator.randbytes(8192)
        assert sniff_content_type(head, "notes.md") is None
        assert sniff_content_type(head) is None


def test_pdf_marker_may_follow_junk() -> None:
    """%PDF- is found within the first 1024 bytes, but not after them."""
    assert sniff_content_type(b"\x00" * 1000 + b"%PDF-1.4\n") == "application/pdf"
    assert sniff_content_type(b"\x00" * 1100 + b"%PDF-1.4\n") is None


@pytest.mark.parametrize(
    "head",
    [
        b"<!DOCTYPE html><html><body>hi</body></html>",
        b"\xef\xbb\xbf\n  <!doctype HTML>\n<html>",
        b"<?xml version='1.0'?>\n<!-- generated -->\n<html lang='en'>",
        b"<html>\n<head><title>t</title></head>",
        b"<!DOCTYPE html><p>caf\xe9 in Latin-1</p>",
    ],
)
def test_html_is_recognised_by_its_opening_tag(head: bytes) -> None:
    """A doctype or html tag after a BOM, blanks, comments or an XML declaration means HTML."""
    assert sniff_content_type(head, "page.txt") == "text/html"


def test_text_types_use_the_extension_only_to_choose_between_texts() -> None:
    """UTF-8 text is Markdown for .md/.markdown, HTML for .html/.htm, plain text otherwise."""
    text = b"# Title\n\nSome text.\n"
    assert sniff_content_type(text, "README.md") == "text/markdown"
    assert sniff_content_type(text, "C:\\docs\\NOTES.MARKDOWN") == "text/markdown"
    assert sniff_content_type(text, "page.htm") == "text/html"
    assert sniff_content_type(text, "notes.txt") == "text/plain"
    assert sniff_content_type(text, "data.csv") == "text/plain"
    assert sniff_content_type(text, ".md") == "text/plain"  # a hidden file, not an extension
    assert sniff_content_type(text) == "text/plain"
    assert sniff_content_type(b"", "empty.txt") == "text/plain"


def test_extension_never_overrides_binary_content() -> None:
    """A PDF named .md is still a PDF, and binary bytes named .txt are still unknown."""
    assert sniff_content_type(_pdf(), "notes.md") == "application/pdf"
    assert sniff_content_type(b"\x00\x01\x02\x03", "notes.txt") is None


def test_multibyte_character_cut_at_the_end_is_still_text() -> None:
    """A head that ends inside a multibyte UTF-8 character is still text."""
    head = (b"a" * 8191 + "日本".encode())[:8192]
    with pytest.raises(UnicodeDecodeError):
        head.decode("utf-8")
    assert sniff_content_type(head, "a.txt") == "text/plain"


def test_document_types_are_the_five_document_formats() -> None:
    """DOCUMENT_TYPES lists exactly the five document formats and no media."""
    assert {"application/pdf", DOCX, "text/html", "text/markdown", "text/plain"} == DOCUMENT_TYPES
