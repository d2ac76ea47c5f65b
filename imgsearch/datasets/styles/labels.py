"""The text of styles-v2 label rows: canonical icon names, curated subjects, humanized names and
keywords for icons and clip art, and the emoji metadata (names, keywords, curated emoji)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from imgsearch.datasets import icons

# ------------------------------------------------------------------------------- text helpers
_ICON_EXT = (".png", ".svg", ".svgz", ".xpm")


def canonical_icon_name(name: str) -> str | None:
    """The subject id of an icon name: extension dropped, lower-cased, ``_`` -> ``-``.
    None for names never used: ``-symbolic`` glyphs and ``-rtl`` / ``-ltr`` mirror variants."""
    for ext in _ICON_EXT:
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    canon = name.strip().lower().replace("_", "-")
    canon = re.sub(r"-+", "-", canon).strip("-")
    if not canon or canon.endswith("-symbolic") or canon.endswith(("-rtl", "-ltr")):
        return None
    return canon


CURATED_BY_CANONICAL: dict[str, str] = {}
for _name, _subject in icons.CURATED_NAME_TO_SUBJECT.items():
    _c = canonical_icon_name(_name)
    if _c is not None:
        CURATED_BY_CANONICAL.setdefault(_c, _subject)


def curated_rank(canonical_name: str, subject: str) -> int:
    """Position of an icon name in its curated subject's synonym list (0 = the most canonical name;
    later names are looser synonyms, e.g. ``appointment-soon`` for clock)."""
    names = [canonical_icon_name(n) for n in icons.SUBJECT_BY_NAME[subject].icon_names]
    return names.index(canonical_name) if canonical_name in names else len(names)


# Words expanded in icon / clip-art texts
_WORD_EXPANSIONS: dict[str, str] = {
    "harddisk": "hard disk",
    "cdrom": "cd-rom",
    "im": "instant messaging",
    "nm": "network manager",
    "prefs": "preferences",
    "doc": "document",
    "pref": "preferences",
    "config": "configuration",
    "dev": "device",
    "fs": "file system",
    "btn": "button",
    "img": "image",
    "pic": "picture",
    "usb": "usb",
    "wifi": "wi-fi",
    "sys": "system",
    "app": "application",
    "apps": "applications",
    "calc": "calculator",
    "mic": "microphone",
    "vol": "volume",
    "info": "information",
    "msg": "message",
}
# Tokens that carry no meaning in a description
_DROP_TOKENS = {
    "x",
    "generic",
    "gnome",
    "stock",
    "org",
    "com",
    "net",
    "io",
    "kde",
    "symbolic",
    "xfce",
    "xfce4",
    "mate",
    "gtk",
    "ubuntu",
    "freedesktop",
    "github",
    "accessories",
    "utilities",
    "applications",
    "internet",
    "multimedia",
    "office",
    "system",
    "emblem",
    "categories",
}
# Icon names of the form <noun>-<qualifier...> read as "<qualifier...> <noun>": printer-network ->
# network printer, folder-music -> music folder, camera-photo -> photo camera.
_HEAD_NOUNS = {
    "printer",
    "drive",
    "folder",
    "network",
    "battery",
    "camera",
    "computer",
    "phone",
    "media",
    "input",
    "mail",
    "weather",
    "user",
    "audio",
    "video",
    "image",
    "document",
    "text",
    "font",
    "package",
    "dialog",
    "appointment",
    "contact",
    "address",
    "face",
    "avatar",
    "trash",
    "bookmark",
    "view",
    "window",
    "modem",
    "scanner",
    "display",
    "monitor",
    "keyboard",
    "mouse",
    "tablet",
    "speaker",
    "microphone",
    "headphones",
}
# Heads of action names (toolbar buttons): described as "<words> icon", in order
_ACTION_HEADS = {
    "go",
    "edit",
    "list",
    "zoom",
    "format",
    "object",
    "insert",
    "tools",
    "process",
    "call",
    "media-playback",
    "view",
    "window",
    "mail-send",
    "bookmark-new",
    "document-open",
    "draw",
}
_MIME_TOPS = {"application", "text", "image", "audio", "video", "font", "model", "message", "multipart", "inode"}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _tokens(name: str) -> list[str]:
    name = _CAMEL.sub("-", name)
    return [t for t in re.split(r"[-_.\s+]+", name.lower()) if t]


def _article(phrase: str) -> str:
    if not phrase:
        return phrase
    first = phrase.split()[0]
    if first.endswith("s") and not first.endswith("ss") and len(phrase.split()) == 1:
        return phrase  # a plural noun: "headphones"
    return ("an " if first[0] in "aeiou" else "a ") + phrase


def humanize_icon_name(name: str, context: str = "") -> str:
    """A natural-language description of a freedesktop-style icon name.

    ``printer-network`` -> "a network printer", ``audio-x-generic`` -> "an audio file" (mimetypes),
    ``accessories-calculator`` -> "a calculator", ``org.gnome.Calculator`` -> "a calculator",
    ``go-next`` -> "a go next". ``context`` is the theme directory (``devices``, ``mimetypes``, ...).
    """
    raw = name
    for ext in _ICON_EXT:
        if raw.endswith(ext):
            raw = raw[: -len(ext)]
            break
    if re.match(r"^(org|com|net|io)\.", raw.lower()):  # reverse-DNS application id: the last part
        raw = raw.split(".")[-1]
    toks = _tokens(raw)
    if not toks:
        return raw
    is_mime = (
        context == "mimetypes"
        or (toks[0] in _MIME_TOPS and len(toks) >= 2 and toks[1] == "x")
        or (
            toks[0] in _MIME_TOPS
            and context in ("", "mimes", "mimetypes")
            and len(toks) >= 2
            and toks[0] in ("application", "inode")
        )
    )
    words = [_WORD_EXPANSIONS.get(t, t) for t in toks if t not in _DROP_TOKENS or t in _MIME_TOPS]
    if is_mime and toks[0] in _MIME_TOPS:
        top = toks[0]
        rest = [_WORD_EXPANSIONS.get(t, t) for t in toks[1:] if t not in _DROP_TOKENS]
        if top == "inode":
            return _article(" ".join(rest) or "file")
        kind = {
            "application": "",
            "text": "text",
            "image": "image",
            "audio": "audio",
            "video": "video",
            "font": "font",
        }.get(top, top)
        phrase = " ".join([*rest, kind, "file"]).replace("  ", " ").strip()
        return _article(phrase)
    words = [w for w in words if w not in _MIME_TOPS or w in ("text", "image", "audio", "video", "font")]
    if not words:
        words = [_WORD_EXPANSIONS.get(t, t) for t in toks]
    if toks[0] == "user" and len(words) >= 2 and words[0] == "user":  # user-trash-full, user-home
        words, toks = words[1:], toks[1:]
    if toks[0] in _ACTION_HEADS or context == "actions":
        return " ".join([*words, "icon"])  # "go next icon", "edit copy icon", "document print icon"
    if len(words) >= 2 and words[0] in _HEAD_NOUNS and toks[0] == words[0]:
        words = [*words[1:], words[0]]
    return _article(" ".join(words))


def icon_keywords(name: str) -> list[str]:
    """Lower-case word tokens of an icon name (expanded, generic tokens dropped), in order, no repeats."""
    raw = name.split(".")[-1] if re.match(r"^(org|com|net|io)\.", name.lower()) else name
    out: list[str] = []
    for t in _tokens(raw):
        if t in _DROP_TOKENS:
            continue
        for w in _WORD_EXPANSIONS.get(t, t).split():
            if w not in out:
                out.append(w)
    return out


def humanize_clipart(folder: str, stem: str) -> str:
    """``animals/birds``, ``blue_parrot_01`` -> "blue parrot, a clip art drawing (animals, birds)"."""
    words = [t for t in _tokens(stem) if not t.isdigit()]
    subject = " ".join(words) or stem
    where = ", ".join(" ".join(_tokens(p)) for p in Path(folder).parts if p)
    return f"{subject}, a clip art drawing ({where})" if where else f"{subject}, a clip art drawing"


def clipart_keywords(folder: str, stem: str) -> list[str]:
    out: list[str] = []
    for t in [*_tokens(stem), *(w for p in Path(folder).parts for w in _tokens(p))]:
        if not t.isdigit() and len(t) > 1 and t not in out:
            out.append(t)
    return out


# ----------------------------------------------------------------------------------- emoji data
SKIN_TONES = frozenset({"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"})
# Component: skin-tone swatches and hair parts. Country and subdivision flags: the design is the flag's own,
# the same in every vendor (little style), and "flag: Germany" is no picture description; the
# "flag" subcategory (chequered, white, rainbow, pirate flag, ...) is kept.
SKIPPED_EMOJI_CATEGORIES = frozenset({"Component"})
SKIPPED_EMOJI_SUBCATEGORIES = frozenset({"country-flag", "subdivision-flag"})

# Emoji drawing a curated subject (icons.ALL_SUBJECTS), fully-qualified sequences in order of preference:
# the same natural query then finds icons and emoji. Only clear matches; most of the 60 have one.
CURATED_EMOJI: dict[str, tuple[str, ...]] = {
    "printer": ("1F5A8-FE0F",),
    "camera": ("1F4F7", "1F4F8"),
    "folder": ("1F4C1", "1F4C2"),
    "trash": ("1F5D1-FE0F",),
    "music": ("1F3B5", "1F3B6"),
    "mail": ("2709-FE0F", "1F4E7", "1F4E9"),
    "calendar": ("1F4C5", "1F4C6", "1F5D3-FE0F"),
    "clock": ("23F0", "1F570-FE0F"),
    "globe": ("1F310", "1F30D", "1F30E", "1F30F", "1F9ED"),
    "picture": ("1F5BC-FE0F",),
    "text-editor": ("1F4DD",),
    "document": ("1F4C4", "1F4C3"),
    "video": ("1F3A5", "1F4F9", "1F39E-FE0F"),
    "settings": ("2699-FE0F",),
    "keyboard": ("2328-FE0F",),
    "mouse": ("1F5B1-FE0F",),
    "battery": ("1F50B",),
    "computer": ("1F5A5-FE0F",),
    "laptop": ("1F4BB",),
    "user": ("1F464",),
    "home": ("1F3E0",),
    "disc": ("1F4BF", "1F4C0"),
    "phone": ("1F4F1",),
    "speaker": ("1F50A", "1F508"),
    "microphone": ("1F3A4", "1F399-FE0F"),
    "headphones": ("1F3A7",),
    "help": ("2753", "1F6DF"),
    "search": ("1F50D", "1F50E"),
    "lock": ("1F512", "1F510"),
    "package": ("1F4E6",),
    "chat": ("1F4AC", "1F5E8-FE0F"),
    "gamepad": ("1F3AE", "1F579-FE0F"),
    "book": ("1F4D6", "1F4D5", "1F4DA"),
    "paint": ("1F3A8", "1F58C-FE0F"),
    "wifi": ("1F6DC",),
    "weather": ("26C5", "1F324-FE0F", "1F326-FE0F"),
    "map": ("1F5FA-FE0F",),
    "notes": ("1F5D2-FE0F",),
    "key": ("1F511", "1F5DD-FE0F"),
    "bookmark": ("1F516", "1F4D1"),
    "star": ("2B50", "1F31F"),
    "bell": ("1F514",),
    "television": ("1F4FA",),
    "flag": ("1F6A9", "1F3F3-FE0F", "1F3C1"),
}


def emoji_key(seq: str) -> str:
    """A code point sequence with every FE0F (emoji presentation selector) dropped, upper-case, ``-``
    separated: ``2764-fe0f`` and ``2764`` -> ``2764``. Matches fully- and non-qualified spellings."""
    parts = [p.upper().lstrip("0") or "0" for p in re.split(r"[-_\s]+", seq.strip()) if p]
    return "-".join(p.zfill(4) for p in parts if p != "FE0F")


EMOJI_TO_CURATED: dict[str, tuple[str, int]] = {
    emoji_key(code): (subject, rank) for subject, codes in CURATED_EMOJI.items() for rank, code in enumerate(codes)
}


@dataclass(frozen=True)
class EmojiInfo:
    subject: str  # the fully-qualified unified sequence, e.g. "1F63A" or "2764-FE0F"
    name: str  # Unicode name, lower-case
    short_names: tuple[str, ...]
    category: str
    subcategory: str
    char: str


def emoji_skip_reason(entry: dict) -> str | None:
    """Why an emoji-datasource row is not used (None if it is): country / subdivision flags, components
    (skin-tone swatches, hair), keycaps, skin-tone variants."""
    unified = entry.get("unified", "")
    cps = set(unified.upper().split("-"))
    if entry.get("category") in SKIPPED_EMOJI_CATEGORIES:
        return f"category {entry.get('category')}"
    if entry.get("subcategory") in SKIPPED_EMOJI_SUBCATEGORIES:
        return f"subcategory {entry.get('subcategory')}"
    if len(cps) == 2 and all(0x1F1E6 <= int(cp, 16) <= 0x1F1FF for cp in cps if cp):  # regional indicators
        return "country flag"
    if "20E3" in cps:
        return "keycap"
    if cps & SKIN_TONES:
        return "skin tone"
    return None


def parse_emoji_meta(rows: Sequence[dict]) -> dict[str, EmojiInfo]:
    """emoji-datasource's emoji.json -> {emoji_key: EmojiInfo} for the emoji this dataset uses."""
    out: dict[str, EmojiInfo] = {}
    for row in rows:
        if emoji_skip_reason(row) is not None:
            continue
        unified = row["unified"].upper()
        name = (row.get("name") or "").strip().lower()
        shorts = tuple(row.get("short_names") or ([row["short_name"]] if row.get("short_name") else []))
        if not name:
            name = (shorts[0] if shorts else unified).replace("_", " ")
        char = "".join(chr(int(cp, 16)) for cp in unified.split("-"))
        out[emoji_key(unified)] = EmojiInfo(
            unified, name, shorts, row.get("category", ""), row.get("subcategory", ""), char
        )
    return out


def emoji_keywords(info: EmojiInfo, openmoji_tags: Sequence[str] = ()) -> list[str]:
    out: list[str] = []
    for short in info.short_names:
        for w in re.split(r"[_\-\s]+", short.lower()):
            if w and w not in out and w not in ("+1", "-1"):
                out.append(w)
    for tag in openmoji_tags:
        for w in tag.lower().split():
            if w and w not in out:
                out.append(w)
    return out


def parse_openmoji(rows: Sequence[dict]) -> dict[str, dict]:
    """openmoji.json -> {emoji_key: row} for Unicode emoji without skin tone (extras are dropped)."""
    out: dict[str, dict] = {}
    for row in rows:
        if row.get("skintone") or str(row.get("group", "")).startswith("extras"):
            continue
        hexcode = row.get("hexcode", "")
        if not hexcode or set(hexcode.upper().split("-")) & SKIN_TONES:
            continue
        out.setdefault(emoji_key(hexcode), row)
    return out


def openmoji_tags(row: dict) -> list[str]:
    tags = []
    for fieldname in ("tags", "openmoji_tags"):
        for t in str(row.get(fieldname) or "").split(","):
            t = t.strip().lower()
            if t and t not in tags:
                tags.append(t)
    return tags
