"""Parser bombs: PDFs whose page tree claims or builds huge page counts or loops, and zips posing
as DOCX that inflate to gigabytes, end with a clear error quickly and in bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from core.errors import InvalidInput, TooLarge
from core.sniff import DOCX, PDF, sniff_content_type
from tests.fixtures.backends import Service
from worker.documents import DocumentLimits, extract_document

LIMITS = DocumentLimits()
_TEXT = b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET"
_PAGE = b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
_PAGE_END = b" /Resources << /Font << /F1 %d 0 R >> >> >>"
# Peak RSS of a child that imports the readers and reads a harmless PDF is about 75 MB.
_RSS_CEILING_MB = 200


def pdf_file(objects: list[bytes]) -> bytes:
    """A PDF of `objects` (numbered from 1, object 1 the catalog) with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def page_tree_pdf(levels: int, fan_out: int, count: int | None = None, loop: bool = False) -> bytes:
    """A PDF with one real page reached through `levels` of /Pages nodes whose /Kids name the
    next node `fan_out` times: fan_out**levels pages from a few KB. `count` overrides the
    root's claimed /Count; `loop` makes the root also list itself as a kid."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    page = 2 + levels
    for level in range(levels):
        number = 2 + level
        parent = b"" if level == 0 else b" /Parent %d 0 R" % (number - 1)
        kids = [b"%d 0 R" % (number + 1)] * fan_out
        if loop and level == 0:
            kids.insert(0, b"2 0 R")
        claimed = fan_out ** (levels - level) if count is None or level else count
        objects.append(
            b"<< /Type /Pages%s /Kids [%s] /Count %d >>" % (parent, b" ".join(kids), claimed)
        )
    objects.append(_PAGE % (page - 1, page + 1) + _PAGE_END % (page + 2))
    objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(_TEXT), _TEXT))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    return pdf_file(objects)


def zip_member(path: Path, name: str, zeros: int, *, declare: int | None = None) -> Path:
    """A DOCX-looking zip whose `name` holds `zeros` zero bytes (streamed, never in memory),
    declaring `declare` bytes instead of the truth when given (a lying header)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open(name, "w", force_zip64=zeros > 2**31) as member:
            block = bytes(1 << 20)
            for _ in range(zeros // len(block)):
                member.write(block)
            member.write(bytes(zeros % len(block)))
    if declare is not None:
        data = bytearray(path.read_bytes())
        info = zipfile.ZipFile(path).getinfo(name)
        true_size = info.file_size.to_bytes(4, "little")
        # The size sits at byte 22 of the local header and byte 24 of the central directory entry.
        for signature, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            start = data.index(signature)
            while data[start + at : start + at + 4] != true_size:
                start = data.index(signature, start + 1)
            data[start + at : start + at + 4] = declare.to_bytes(4, "little")
        path.write_bytes(bytes(data))
    return path


def peak_rss_of_extract(path: Path, content_type: str) -> tuple[str, float, float]:
    """Read `path` in a fresh interpreter: (error code or "ok", seconds, peak RSS in MB)."""
    if not Path("/proc/self/status").exists():
        pytest.skip("peak RSS is read from /proc (Linux)")
    script = f"""
import json, time
from pathlib import Path
from core.errors import NightowlError
from worker.documents import DocumentLimits, extract_document
started = time.perf_counter()
try:
    extract_document(Path({str(path)!r}), {content_type!r}, DocumentLimits())
    code = "ok"
except NightowlError as exc:
    code = exc.code
seconds = time.perf_counter() - started
# VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts at its forking parent's peak.
status = Path("/proc/self/status").read_text()
peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
print(json.dumps([code, seconds, peak / 1024]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    code, seconds, rss = json.loads(done.stdout.strip().splitlines()[-1])
    return str(code), float(seconds), float(rss)


def test_a_claimed_page_count_is_not_believed(tmp_path: Path) -> None:
    """A /Count of a billion over one real page is read as the one page it is."""
    path = tmp_path / "claims.pdf"
    path.write_bytes(page_tree_pdf(1, 1, count=10**9))
    document = extract_document(path, PDF, LIMITS)
    assert [(page.number, page.text) for page in document.pages] == [(1, "Hello")]


def test_a_page_tree_of_a_million_pages_is_too_large_before_any_page_is_read(
    tmp_path: Path,
) -> None:
    """A 13 KB PDF whose shared page-tree nodes make 10**6 pages is refused at once, in bounded
    memory (measured in a child process)."""
    path = tmp_path / "million.pdf"
    path.write_bytes(page_tree_pdf(2, 1000))
    assert path.stat().st_size < 20_000
    with pytest.raises(TooLarge, match=r"^document has 1000000 pages; the limit is 500$"):
        extract_document(path, PDF, LIMITS)
    code, seconds, rss = peak_rss_of_extract(path, PDF)
    assert code == "too_large"
    assert seconds < 2
    assert rss < _RSS_CEILING_MB


def test_a_page_tree_of_a_billion_pages_is_unreadable(tmp_path: Path) -> None:
    """Three levels of 1000 shared kids (10**9 pages): PDFium refuses the tree, we say so."""
    path = tmp_path / "billion.pdf"
    path.write_bytes(page_tree_pdf(3, 1000))
    started = time.perf_counter()
    with pytest.raises(InvalidInput, match="could not be read"):
        extract_document(path, PDF, LIMITS)
    assert time.perf_counter() - started < 2


def test_a_page_tree_that_contains_itself_fails_cleanly(tmp_path: Path) -> None:
    """A /Pages node listing itself as a kid does not loop: the bad kid is a damaged page."""
    path = tmp_path / "loop.pdf"
    path.write_bytes(page_tree_pdf(1, 1, count=2, loop=True))
    started = time.perf_counter()
    with pytest.raises(InvalidInput, match="page 2 is damaged"):
        extract_document(path, PDF, LIMITS)
    assert time.perf_counter() - started < 2


def test_many_real_pages_stop_at_the_page_limit(tmp_path: Path) -> None:
    """A PDF of 2000 real pages is refused under a limit of 100 without reading their text."""
    path = tmp_path / "pages.pdf"
    path.write_bytes(page_tree_pdf(1, 2000))
    with pytest.raises(TooLarge, match=r"^document has 2000 pages; the limit is 100$"):
        extract_document(path, PDF, DocumentLimits(max_pages=100))


def test_a_docx_inflating_to_gigabytes_is_refused_before_inflating(tmp_path: Path) -> None:
    """A 3 MB zip whose member inflates to 3 GiB ends too_large at once, in bounded memory."""
    path = zip_member(tmp_path / "bomb.docx", "word/document.xml", 3 * 2**30)
    assert path.stat().st_size < 5_000_000
    assert sniff_content_type(path.read_bytes()[:8192], "bomb.docx") == DOCX
    with pytest.raises(TooLarge, match=r"^document expands to 3221225480 bytes"):
        extract_document(path, DOCX, LIMITS)
    code, seconds, rss = peak_rss_of_extract(path, DOCX)
    assert (code, seconds < 2, rss < _RSS_CEILING_MB) == ("too_large", True, True)


def test_a_highly_compressed_member_is_refused_by_its_ratio(tmp_path: Path) -> None:
    """A member of 50 MB of zeros (about 1000:1) is under the total limit but refused as a bomb."""
    path = zip_member(tmp_path / "ratio.docx", "word/document.xml", 50 * 2**20)
    with pytest.raises(TooLarge, match=r"expands 52428800 bytes from \d+: more than 200 times"):
        extract_document(path, DOCX, LIMITS)


def test_a_member_lying_about_its_size_is_refused_without_inflating_it(tmp_path: Path) -> None:
    """A member declaring 1000 bytes whose data inflates to 1 GiB is caught by inflating it in
    small pieces (zipfile itself would inflate it whole into memory, then cut it)."""
    path = zip_member(tmp_path / "liar.docx", "word/document.xml", 2**30, declare=1000)
    assert zipfile.ZipFile(path).getinfo("word/document.xml").file_size == 1000
    with pytest.raises(TooLarge, match="inflates past its declared 1000 bytes"):
        extract_document(path, DOCX, LIMITS)
    code, seconds, rss = peak_rss_of_extract(path, DOCX)
    assert (code, seconds < 2, rss < _RSS_CEILING_MB) == ("too_large", True, True)


def test_a_member_with_unknown_compression_is_not_a_docx(tmp_path: Path) -> None:
    """Word writes stored or deflated members only; a bzip2 member is refused before opening."""
    path = tmp_path / "bz.docx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(InvalidInput, match=r"^document is not a valid DOCX file$"):
        extract_document(path, DOCX, LIMITS)


def test_a_truncated_member_is_not_a_docx(tmp_path: Path) -> None:
    """A zip cut inside its member's data is refused as not a DOCX."""
    path = zip_member(tmp_path / "cut.docx", "word/document.xml", 2**20)
    data = path.read_bytes()
    directory = data.index(b"PK\x01\x02")
    path.write_bytes(data[: directory - 200] + data[directory:])
    with pytest.raises(InvalidInput, match=r"^document is not a valid DOCX file$"):
        extract_document(path, DOCX, LIMITS)


@pytest.mark.parametrize("bomb", ["pdf-pages", "docx-liar"])
def test_bomb_jobs_end_failed_too_large(service: Service, tmp_path: Path, bomb: str) -> None:
    """Uploaded through the API, a page-tree bomb and a lying DOCX each end `failed` too_large."""
    if bomb == "pdf-pages":
        name, data = "bomb.pdf", page_tree_pdf(2, 1000)
    else:
        name = "bomb.docx"
        data = zip_member(tmp_path / name, "word/document.xml", 2**28, declare=1000).read_bytes()
    key = service.new_key("acme")
    upload = service.client.post(
        "/v1/files", files={"file": (name, data)}, headers=service.headers(key)
    )
    assert upload.status_code == 201, upload.text
    job = {"kind": "document.qa", "input": {"file_id": upload.json()["id"]}}
    job["params"] = {"questions": ["What is it?"]}
    created = service.client.post("/v1/jobs", json=job, headers=service.headers(key))
    started = time.perf_counter()
    service.dispatcher.drain()
    assert time.perf_counter() - started < 10
    shown = service.client.get(f"/v1/jobs/{created.json()['id']}", headers=service.headers(key))
    assert (shown.json()["status"], shown.json()["error"]["code"]) == ("failed", "too_large")
