"""Guess an upload's MIME type from its first bytes, trusting the file name only between texts.

The API calls this on the head of every upload (up to about 8 KiB) so that a job kind is chosen
by what the bytes are, not by what the client claims. Unknown or unsupported content gives None.
"""

from __future__ import annotations

import codecs
import re

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML = "text/html"
MARKDOWN = "text/markdown"
PLAIN_TEXT = "text/plain"

WAV = "audio/wav"
FLAC = "audio/flac"
OGG = "audio/ogg"
MP3 = "audio/mpeg"
M4A = "audio/mp4"
MP4 = "video/mp4"
QUICKTIME = "video/quicktime"
WEBM = "video/webm"
MATROSKA = "video/x-matroska"

DOCUMENT_TYPES: frozenset[str] = frozenset({PDF, DOCX, HTML, MARKDOWN, PLAIN_TEXT})
# Audio files and videos, whose audio track the audio kinds read.
MEDIA_TYPES: frozenset[str] = frozenset({WAV, FLAC, OGG, MP3, M4A, MP4, QUICKTIME, WEBM, MATROSKA})
# Containers that carry video.
VIDEO_TYPES: frozenset[str] = frozenset({MP4, QUICKTIME, WEBM, MATROSKA})

# How many leading bytes callers should pass; more is accepted and ignored past this point.
SNIFF_BYTES = 8192

_MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
_HTML_SUFFIXES = frozenset({".html", ".htm"})
_AUDIO_MP4_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "})
# ISO BMFF brands of still images (HEIF, AVIF): an ftyp box, but nothing our job kinds play.
_IMAGE_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"})
# Bitrates in kbit/s by (MPEG-1?, layer) and bitrate index 1-14; MPEG-2 layers 2 and 3 share one.
_MPEG_BITRATES: dict[tuple[bool, int], tuple[int, ...]] = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_SAMPLE_RATES = (44100, 48000, 32000)  # MPEG-1; halved for MPEG-2, quartered for MPEG-2.5
# Only the entry names in local file headers are stored uncompressed, so they are what we read.
_ZIP_ENTRY = re.compile(rb"PK\x03\x04.{22}(..)(..)", re.DOTALL)
_HTML_START = re.compile(rb"<(?:!doctype\s+html|html|head|body)[\s>/]", re.IGNORECASE)
_HTML_PREAMBLE = re.compile(rb"(?:\s+|<!--.*?-->|<\?xml.*?\?>)", re.DOTALL)
# C0 controls other than tab, newlines, form feed, escape; DEL. Text has almost none of these.
_BINARY_CONTROLS = re.compile(r"[\x01-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def sniff_content_type(head: bytes, filename: str | None = None) -> str | None:
    """Return the MIME type the first bytes of a file show, or None if unknown or unsupported."""
    head = head[:SNIFF_BYTES]
    binary = _sniff_binary(head)
    if binary is not None:
        return binary
    if head.startswith(b"PK\x03\x04") or b"\x00" in head:
        return None  # a zip that is not a docx, or other binary data: never text
    if _looks_like_html(head):
        return HTML
    if not _is_text(head):
        return None
    suffix = _suffix(filename)
    if suffix in _MARKDOWN_SUFFIXES:
        return MARKDOWN
    if suffix in _HTML_SUFFIXES:
        return HTML
    return PLAIN_TEXT


def _sniff_binary(head: bytes) -> str | None:
    """Return the type of a file with a binary signature, or None when there is none we know."""
    if b"%PDF-" in head[:1024]:
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return DOCX if _is_docx_zip(head) else None
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAV
    if head.startswith(b"fLaC"):
        return FLAC
    if head.startswith(b"OggS"):
        return OGG
    if head[4:8] == b"ftyp":
        return _iso_media_type(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _matroska_type(head)
    if head.startswith(b"ID3"):
        return _after_id3(head)
    if _is_mpeg_audio_frame(head):
        return MP3
    return None


def _is_docx_zip(head: bytes) -> bool:
    """Tell a Word document from other zips by the entry names in its first local headers."""
    names = []
    for match in _ZIP_ENTRY.finditer(head):
        name_length = int.from_bytes(match.group(1), "little")
        start = match.end()
        names.append(head[start : start + name_length])
    if any(name.startswith(b"word/") for name in names):
        return True
    # Excel and PowerPoint files also open with [Content_Types].xml.
    if any(name.startswith((b"xl/", b"ppt/")) for name in names):
        return False
    return b"[Content_Types].xml" in names


def _iso_media_type(head: bytes) -> str | None:
    """Classify an ISO base media file (MP4, M4A, QuickTime) by the brands of its ftyp box."""
    major = head[8:12]
    box_size = int.from_bytes(head[0:4], "big")
    compatible = [head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)]
    if major == b"qt  ":
        return QUICKTIME
    if major in _AUDIO_MP4_BRANDS:
        return M4A
    if major in _IMAGE_BRANDS or any(brand in _IMAGE_BRANDS for brand in compatible):
        return None
    return MP4


def _matroska_type(head: bytes) -> str:
    """Tell WebM from other Matroska files by the DocType element of the EBML header."""
    at = head.find(b"\x42\x82", 4, 64)
    if at != -1 and at + 3 <= len(head):
        size_byte = head[at + 2]
        # The DocType is short, so its size is a one-byte EBML vint: a set top bit, 7 bits of size.
        if size_byte & 0x80:
            size = size_byte & 0x7F
            doc_type = head[at + 3 : at + 3 + size].rstrip(b"\x00")
            if doc_type == b"webm":
                return WEBM
    return MATROSKA


def _after_id3(head: bytes) -> str:
    """Return FLAC for an ID3-tagged FLAC stream, else MPEG audio, which is what ID3 mostly tags."""
    if len(head) >= 10:
        size = 0
        for byte in head[6:10]:
            size = (size << 7) | (byte & 0x7F)  # syncsafe integer: 7 bits per byte
        footer = 10 if head[5] & 0x10 else 0
        if head[10 + size + footer :].startswith(b"fLaC"):
            return FLAC
    return MP3


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """Return whether the head starts with two consecutive MPEG audio frames.

    One 4-byte frame header is too easy to meet by chance (a UTF-16 byte order mark is one), so
    the next frame must start exactly where the first one's header says it ends.
    """
    length = _mpeg_frame_length(head[:4])
    return length is not None and _mpeg_frame_length(head[length : length + 4]) is not None


def _mpeg_frame_length(header: bytes) -> int | None:
    """Return the byte length of the MPEG audio frame this header starts, or None if invalid."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version = (header[1] >> 3) & 0b11  # 0: MPEG 2.5, 1: reserved, 2: MPEG 2, 3: MPEG 1
    layer = 4 - ((header[1] >> 1) & 0b11)  # the field counts down; 4 means reserved
    bitrate_index = header[2] >> 4
    rate_index = (header[2] >> 2) & 0b11
    padding = (header[2] >> 1) & 1
    # Layer "4" is AAC's ADTS, not MPEG audio; free-format (0) bitrates cannot be measured.
    if version == 1 or layer == 4 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1 = version == 3
    table = _MPEG_BITRATES[(True, layer) if mpeg1 else (False, min(layer, 2))]
    bitrate = 1000 * table[bitrate_index]
    sample_rate = _MPEG_SAMPLE_RATES[rate_index] >> {3: 0, 2: 1, 0: 2}[version]
    if layer == 1:
        return (12 * bitrate // sample_rate + padding) * 4
    per_frame = 144 if mpeg1 or layer == 2 else 72
    return per_frame * bitrate // sample_rate + padding


def _looks_like_html(head: bytes) -> bool:
    """Return whether the text opens, after a BOM, blanks and comments, with an HTML tag."""
    position = 3 if head.startswith(codecs.BOM_UTF8) else 0
    while match := _HTML_PREAMBLE.match(head, position):
        position = match.end()
    return _HTML_START.match(head, position) is not None


def _is_text(head: bytes) -> bool:
    """Return whether the bytes are UTF-8 text, allowing a character cut off at the end."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        # final=False keeps an incomplete trailing sequence buffered instead of failing on it.
        text = decoder.decode(head, final=False)
    except UnicodeDecodeError:
        return False
    if "\x00" in text:
        return False
    return len(_BINARY_CONTROLS.findall(text)) * 100 <= len(text)


def _suffix(filename: str | None) -> str:
    """Return the lower-case extension of a file name that may carry a POSIX or Windows path."""
    if not filename:
        return ""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""
