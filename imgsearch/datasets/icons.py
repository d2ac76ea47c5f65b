"""A real, human-made "subject x style" image set built from Debian icon themes.

Several desktop icon themes draw the same things (a printer, a camera, a folder, ...) in their own
style. Taking one subject from many themes gives images whose *content* is fixed and whose *style*
varies, which is what personalised search needs: a user who likes Oxygen should get the Oxygen
printer when searching "printer".

* style label  = the theme (``tango``, ``oxygen``, ``papirus``, ...)
* subject      = a small explicit synonym table from freedesktop icon names (``printer``,
  ``printer-network``, ``document-print`` -> ``printer``), each with a natural-language query text.

Output (under ``${IMGSEARCH_CACHE:-~/.cache/imgsearch}/datasets/icons-v1/``)::

    images/<theme>/<subject>/<icon-name>.png    128x128 RGB, alpha composited on white
    labels.json                                   [{image_id, path, subject, style, source_package, ...}]
    manifest.json                                 builder version, packages + versions + licences, counts
    licenses/<package>.copyright                  the Debian copyright file of each theme package

Everything is deterministic: sorted directory walks, a fixed preference order for sources and
variants, no randomness. Re-running with an up-to-date manifest is a fast no-op.

CLI::

    python -m imgsearch.datasets.icons build [--out DIR] [--force]
    python -m imgsearch.datasets.icons sheet [--out docs/img/icons-dataset.png]
    python -m imgsearch.datasets.icons coverage     # which subject names each theme has (no rendering)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from imgsearch.datasets import debian

DATASET_NAME = "icons-v1"
# Bump when anything that changes the output (tables, selection rules, rendering) changes.
BUILDER_VERSION = "1.1.0"
IMAGE_SIZE = 128
MAX_VARIANTS = 3  # per (theme, subject) cell, so no cell dominates
MIN_THEMES = 3  # a subject is kept only if at least this many themes draw it
MIN_PNG_SIZE = 48  # sources drawn for smaller sizes (PNG or SVG) are never used
BLANK_FRACTION = 0.01  # a render with fewer non-white pixels than this is considered empty


# --------------------------------------------------------------------------------------- themes
@dataclass(frozen=True)
class Theme:
    style: str  # the style label used in labels.json and as directory name
    package: str  # Debian package
    theme_dir: str  # directory under usr/share/icons/ inside the package
    note: str = ""


THEMES: tuple[Theme, ...] = (
    Theme("tango", "tango-icon-theme", "Tango", "Tango Desktop Project (2005), gradients, thin outlines"),
    Theme("gnome", "gnome-icon-theme", "gnome", "GNOME 2/3 classic, photo-realistic shading"),
    Theme("oxygen", "oxygen-icon-theme", "oxygen", "KDE 4 Oxygen, glossy and realistic"),
    Theme("breeze", "breeze-icon-theme", "breeze", "KDE Plasma 5 Breeze, flat"),
    Theme("papirus", "papirus-icon-theme", "Papirus", "Papirus, flat material-like"),
    Theme("elementary", "elementary-icon-theme", "elementary", "elementary OS, soft gradients"),
    Theme("faenza", "faenza-icon-theme", "Faenza", "Faenza, glossy dark-framed"),
    Theme("moka", "moka-icon-theme", "Moka", "Moka, flat with long shadows"),
    Theme("paper", "paper-icon-theme", "Paper", "Paper, flat with paper shadows"),
    Theme("yaru", "yaru-theme-icon", "Yaru", "Ubuntu Yaru, rounded with soft shading"),
)

# Also in Debian bookworm and checked with `coverage --all`, but not built by default: some are close to a
# theme above (mate/adwaita/gnome-colors ~ gnome/tango, elementary-xfce ~ elementary, mint-y/numix ~ the
# flat themes), some draw too few of the subjects (nuovext, suru), deepin has SVGs rsvg-convert rejects.
EXTRA_THEMES: tuple[Theme, ...] = (
    Theme("numix", "numix-icon-theme", "Numix", "Numix, flat"),
    Theme("mint-y", "mint-y-icons", "Mint-Y", "Linux Mint Mint-Y, flat"),
    Theme("nuovext", "lxde-icon-theme", "nuoveXT2", "LXDE nuoveXT 2, glossy"),
    Theme("mate", "mate-icon-theme", "mate", "MATE, GNOME 2 lineage"),
    Theme("suru", "suru-icon-theme", "suru", "Ubuntu Touch Suru, line art"),
    Theme("deepin", "deepin-icon-theme", "bloom", "Deepin bloom"),
    Theme("adwaita", "adwaita-icon-theme", "Adwaita", "GNOME Adwaita 43"),
    Theme("elementary-xfce", "elementary-xfce-icon-theme", "elementary-xfce", "elementary for Xfce"),
    Theme("gnome-colors", "gnome-colors-common", "gnome-colors-common", "GNOME Colors (Tango-based)"),
)


# ------------------------------------------------------------------------------------- subjects
@dataclass(frozen=True)
class Subject:
    name: str
    query: str  # natural-language query text
    icon_names: tuple[str, ...]  # freedesktop / application icon names, in order of preference


# fmt: off
ALL_SUBJECTS: tuple[Subject, ...] = (
    Subject("printer", "a printer", (
        "printer", "printer-network", "document-print", "printer-remote", "printer-printing",
        "system-config-printer", "printer-local", "xfce-printer", "gnome-dev-printer")),
    Subject("camera", "a photo camera", (
        "camera-photo", "accessories-camera", "camera", "gnome-dev-camera", "digikam")),
    Subject("folder", "a folder", ("folder", "inode-directory", "folder-open")),
    Subject("trash", "a trash can", (
        "user-trash", "user-trash-full", "trashcan_empty", "trashcan_full", "emptytrash")),
    Subject("calculator", "a calculator", (
        "accessories-calculator", "calc", "gnome-calculator", "org.gnome.Calculator", "kcalc",
        "galculator", "calculator", "mate-calc", "xcalc")),
    Subject("music", "music, a musical note", (
        "audio-x-generic", "multimedia-audio-player", "music", "rhythmbox", "org.gnome.Rhythmbox",
        "audio-player", "sound")),
    Subject("mail", "an envelope, e-mail", (
        "internet-mail", "email", "mail-unread", "mail-read", "evolution", "kmail", "mail-message-new",
        "mail-client", "emblem-mail", "mail_generic")),
    Subject("terminal", "a command-line terminal window", (
        "utilities-terminal", "terminal", "gnome-terminal", "org.gnome.Terminal", "konsole", "xterm",
        "Terminal", "xfce-terminal", "mate-terminal", "lxterminal")),
    Subject("calendar", "a calendar", (
        "x-office-calendar", "office-calendar", "calendar", "evolution-calendar", "org.gnome.Calendar",
        "korganizer", "gnome-calendar", "date", "stock_calendar")),
    Subject("clock", "a clock", (
        "clock", "alarm-clock", "org.gnome.clocks", "gnome-clocks", "preferences-system-time",
        "time-admin", "appointment-soon", "xclock")),
    Subject("globe", "a globe or a compass, a web browser", (
        "web-browser", "internet-web-browser", "emblem-web", "globe",
        "gnome-globe", "earth")),
    Subject("picture", "a picture, a photo of a landscape", (
        "image-x-generic", "image-viewer", "eog", "org.gnome.eog", "gthumb", "gwenview", "shotwell",
        "applications-graphics", "ristretto", "gpicview", "image")),
    Subject("text-editor", "a text editor, a sheet of paper with a pen", (
        "accessories-text-editor", "text-editor", "gedit", "org.gnome.gedit", "kate", "kwrite",
        "mousepad", "pluma", "leafpad", "kedit")),
    Subject("document", "a text document", (
        "text-x-generic", "x-office-document", "text-plain", "document", "gnome-mime-text",
        "application-x-office-document", "txt")),
    Subject("video", "a video, a film reel or a video camera", (
        "video-x-generic", "camera-video", "multimedia-video-player", "totem", "org.gnome.Totem",
        "video-player", "video", "parole")),
    Subject("settings", "settings, gears and tools", (
        "preferences-system", "preferences-desktop", "systemsettings", "configure", "emblem-system",
        "applications-system", "gnome-settings", "org.gnome.Settings", "gnome-control-center",
        "preferences-other", "system-settings", "preferences-desktop-default-applications")),
    Subject("keyboard", "a computer keyboard", (
        "input-keyboard", "preferences-desktop-keyboard", "keyboard", "gnome-dev-keyboard",
        "preferences-desktop-keyboard-shortcuts")),
    Subject("mouse", "a computer mouse", (
        "input-mouse", "preferences-desktop-peripherals", "mouse", "gnome-dev-mouse-optical",
        "preferences-desktop-mouse", "gnome-dev-mouse-ball")),
    Subject("battery", "a battery", (
        "battery", "battery-full", "battery-good", "battery-full-charged", "gnome-power-manager",
        "xfce4-power-manager-settings", "preferences-system-power", "ac-adapter", "battery-100")),
    Subject("computer", "a desktop computer", (
        "computer", "system", "user-desktop", "gnome-fs-client", "computer-desktop", "my-computer")),
    Subject("laptop", "a laptop", ("computer-laptop", "laptop", "gnome-dev-computer")),
    Subject("user", "a person, a user avatar", (
        "avatar-default", "user-info", "system-users", "stock_person", "user-identity",
        "preferences-desktop-personal", "user", "im-user", "user-available")),
    Subject("home", "a house, the home folder", ("user-home", "folder-home", "go-home", "gohome", "home")),
    Subject("harddisk", "a hard disk drive", (
        "drive-harddisk", "harddrive", "gnome-dev-harddisk", "drive-harddisk-system", "hdd",
        "drive-harddisk-ieee1394")),
    Subject("disc", "an optical disc, a CD or DVD", (
        "media-optical", "drive-optical", "media-cdrom", "gnome-dev-cdrom", "cdrom", "media-optical-cd",
        "media-optical-dvd", "gnome-dev-dvd", "brasero", "media-optical-audio")),
    Subject("usb-drive", "a USB flash drive", (
        "drive-removable-media-usb", "drive-removable-media-usb-pendrive", "media-removable",
        "drive-removable-media", "media-flash", "gnome-dev-removable-usb")),
    Subject("phone", "a mobile phone", (
        "phone", "smartphone", "phone-apple-iphone", "gnome-dev-phone", "phone-openmoko-freerunner")),
    Subject("speaker", "a loudspeaker", (
        "audio-speakers", "speaker", "multimedia-volume-control", "audio-volume-high",
        "gnome-volume-control")),
    Subject("microphone", "a microphone", ("audio-input-microphone", "microphone", "audio-recorder",
                                           "gnome-sound-recorder", "org.gnome.SoundRecorder")),
    Subject("headphones", "headphones", ("audio-headphones", "audio-headset", "headphones", "headset")),
    Subject("scanner", "a flatbed scanner", ("scanner", "xsane", "simple-scan", "org.gnome.SimpleScan",
                                             "gnome-dev-scanner", "skanlite")),
    Subject("monitor", "a computer monitor, a display screen", (
        "video-display", "display", "preferences-desktop-display", "monitor", "gnome-display-properties",
        "xfce-display")),
    Subject("help", "help, a lifebuoy or question mark", (
        "help-browser", "system-help", "help", "help-contents", "gnome-help", "khelpcenter", "help-about",
        "yelp", "org.gnome.Yelp")),
    Subject("search", "a magnifying glass, search", (
        "system-search", "edit-find", "search", "gnome-searchtool", "kfind", "catfish", "find")),
    Subject("lock", "a padlock", (
        "system-lock-screen", "changes-prevent", "lock", "emblem-readonly", "object-locked",
        "gnome-lockscreen", "xfce-system-lock")),
    Subject("package", "a cardboard box, a software package", (
        "package-x-generic", "package", "system-software-install", "application-x-deb", "package-install",
        "synaptic", "gnome-package")),
    Subject("archive", "a compressed archive file", (
        "application-x-archive", "ark", "file-roller", "org.gnome.FileRoller", "package-x-compressed",
        "application-x-compressed-tar", "application-zip", "xarchiver", "engrampa")),
    Subject("font", "a font, letters and typography", (
        "font-x-generic", "preferences-desktop-font", "font", "fonts", "gnome-font-viewer",
        "org.gnome.font-viewer", "kfontview", "application-x-font-ttf")),
    Subject("chat", "speech bubbles, chat", (
        "internet-chat", "empathy", "pidgin", "chat", "kopete", "im-message-new", "xchat", "hexchat",
        "konversation")),
    Subject("gamepad", "a game controller", (
        "input-gaming", "applications-games", "joystick", "gamepad", "input-gamepad",
        "preferences-desktop-gaming")),
    Subject("network", "a network cable, a wired network", (
        "network-wired", "preferences-system-network", "network", "nm-device-wired", "network-server",
        "gnome-dev-ethernet", "network-card")),
    Subject("book", "a book, a dictionary", (
        "accessories-dictionary", "book", "dictionary", "x-office-address-book", "bookcase",
        "accessories-ebook-reader", "help-contents-book", "calibre-gui")),
    Subject("spreadsheet", "a spreadsheet", (
        "x-office-spreadsheet", "libreoffice-calc", "gnumeric", "application-vnd.ms-excel",
        "office-spreadsheet", "spreadsheet")),
    Subject("presentation", "a presentation slide", (
        "x-office-presentation", "libreoffice-impress", "application-vnd.ms-powerpoint",
        "office-presentation")),
    Subject("paint", "painting, a brush and palette", (
        "applications-graphics", "gimp", "kolourpaint", "mypaint", "krita", "tuxpaint", "pinta",
        "preferences-desktop-color", "color-picker", "applications-painting")),
    Subject("wifi", "a wireless signal", (
        "network-wireless", "nm-device-wireless", "network-wireless-signal-excellent", "wifi-radar",
        "preferences-system-network-wireless")),
    Subject("weather", "the weather, sun and clouds", (
        "weather-few-clouds", "weather-clear", "org.gnome.Weather", "gnome-weather", "weather",
        "weather-overcast", "weather-showers")),
    Subject("map", "a map", ("maps", "org.gnome.Maps", "gnome-maps", "marble", "map", "applications-maps")),
    Subject("bluetooth", "the bluetooth symbol", (
        "bluetooth", "preferences-system-bluetooth", "blueman", "bluetooth-active", "bluedevil")),
    Subject("notes", "notes, a notepad", (
        "accessories-notes", "notes", "tomboy", "gnote", "knotes", "xpad", "org.gnome.Notes",
        "stock_notes", "x-office-notes", "xfce4-notes-plugin")),
    Subject("screenshot", "a screenshot tool", (
        "applications-screenshot", "gnome-screenshot", "org.gnome.Screenshot", "accessories-screenshot",
        "ksnapshot", "spectacle", "xfce4-screenshooter", "screenshot")),
    Subject("download", "a download arrow", (
        "folder-download", "download", "transmission", "emblem-downloads", "go-down", "ktorrent")),
    Subject("key", "a key, passwords", (
        "dialog-password", "seahorse", "org.gnome.seahorse.Application", "password", "gnome-keyring",
        "keyring", "application-pgp-keys", "kwalletmanager", "key", "preferences-desktop-cryptography")),
    Subject("bookmark", "a bookmark", ("bookmark-new", "user-bookmarks", "bookmarks", "bookmark",
                                       "bookmarks-organize")),
    Subject("star", "a star", ("starred", "star", "rating", "emblem-star", "non-starred")),
    Subject("bell", "a bell, notifications", (
        "preferences-system-notifications", "notification", "notifications", "bell", "preferences-desktop-notification",
        "preferences-desktop-notification-bell")),
    Subject("webcam", "a webcam", ("camera-web", "webcam", "cheese", "org.gnome.Cheese", "guvcview", "kamoso")),
    Subject("television", "a television set", ("video-television", "tv", "television", "totem-tv", "kaffeine",
                                               "me-tv", "tvtime")),
    Subject("power", "a power button, shut down", (
        "system-shutdown", "gnome-shutdown", "system-log-out", "application-exit", "system-shutdown-panel")),
    Subject("flag", "a flag", ("flag", "emblem-flag", "mail-mark-important", "flag-red")),
)

# The subjects built by default: concrete objects that at least ~8 of the 10 themes draw, with the
# ambiguous names removed after looking at the picks. The rest stay available to `coverage --all`.
DEFAULT_SUBJECT_NAMES: tuple[str, ...] = (
    "printer", "camera", "folder", "trash", "calculator", "music", "mail", "terminal", "calendar", "clock",
    "globe", "picture", "text-editor", "video", "settings", "keyboard", "mouse", "battery", "computer",
    "harddisk", "disc", "phone", "speaker", "search", "gamepad",
)
# fmt: on
SUBJECTS: tuple[Subject, ...] = tuple(s for s in ALL_SUBJECTS if s.name in DEFAULT_SUBJECT_NAMES)
EXTRA_SUBJECTS: tuple[Subject, ...] = tuple(s for s in ALL_SUBJECTS if s.name not in DEFAULT_SUBJECT_NAMES)


def _name_table(subjects: Iterable[Subject]) -> dict[str, str]:
    table: dict[str, str] = {}
    for subject in subjects:
        for name in subject.icon_names:
            table.setdefault(name, subject.name)
    return table


NAME_TO_SUBJECT: dict[str, str] = _name_table(SUBJECTS)
# every curated subject (ALL_SUBJECTS), for datasets that map any icon name they keep to a curated subject
CURATED_NAME_TO_SUBJECT: dict[str, str] = _name_table(ALL_SUBJECTS)
SUBJECT_BY_NAME: dict[str, Subject] = {s.name: s for s in ALL_SUBJECTS}
THEME_BY_STYLE: dict[str, Theme] = {t.style: t for t in THEMES}


def subject_for_icon(icon_name: str) -> str | None:
    """Map a freedesktop icon name (or a file name such as ``printer.png``) to a subject, else None.

    Only the explicit synonym table is used (exact match, no fuzzy matching); ``-symbolic`` icons are
    monochrome glyphs and never map.
    """
    name = icon_name
    for ext in (".png", ".svg", ".svgz", ".xpm"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    if name.endswith("-symbolic"):
        return None
    return NAME_TO_SUBJECT.get(name)


_ID_BAD = re.compile(r"[^A-Za-z0-9._/-]+")


def sanitize_id(raw: str) -> str:
    """``<theme>/<subject>/<name>`` reduced to ``[A-Za-z0-9._/-]``: other runs become ``_``, empty,
    ``.`` and ``..`` segments are dropped (so an id is always a safe relative path)."""
    cleaned = _ID_BAD.sub("_", raw.replace("\\", "/"))
    parts = [p for p in cleaned.split("/") if p not in ("", ".", "..")]
    parts = [("_" + p) if p.startswith(".") else p for p in parts]  # no hidden files
    return "/".join(parts)


# ------------------------------------------------------------------------------- source lookup
_SIZE_RE = re.compile(r"^(\d+)(?:x(\d+))?(?:@(\d)x)?$")
_SKIP_DIRS = {"symbolic", "cursors", "animations", "animation", "emotes", "stock", "extras", "panel"}


@dataclass(frozen=True)
class Source:
    icon_name: str
    path: Path  # as listed in the theme (may be a symlink)
    real: Path  # the regular file it resolves to
    fmt: str  # "png" | "svg"
    size: int  # nominal size of the directory (scalable -> 1024)
    scale: int  # @2x -> 2

    @property
    def pixels(self) -> int:
        return self.size * self.scale


def parse_size_dir(parts: Sequence[str]) -> tuple[int, int] | None:
    """(size, scale) from the directory components of an icon path, None if no size component.

    Understands both layouts (``48x48/apps`` and ``apps/48``), ``@2x`` suffixes, and ``scalable``
    (-> 1024); ``scalable-up-to-32`` style directories count as their limit.
    """
    for part in reversed(parts):
        m = _SIZE_RE.match(part)
        if m:
            return int(m.group(1)), int(m.group(3) or 1)
        if part == "scalable":
            return 1024, 1
        m2 = re.match(r"^scalable-(?:up-to|max)-(\d+)$", part)
        if m2:
            return int(m2.group(1)), 1
    return None


def resolve_link(path: Path, pkg_root: Path, max_hops: int = 16) -> Path | None:
    """Follow symlinks inside an extracted package; absolute targets are re-rooted at ``pkg_root``.
    Returns None for broken links or links that leave the package tree."""
    p = path
    for _ in range(max_hops):
        if not p.is_symlink():
            break
        target = os.readlink(p)
        p = pkg_root / target.lstrip("/") if os.path.isabs(target) else p.parent / target
        p = Path(os.path.normpath(p))
    else:
        return None
    try:
        real = Path(os.path.realpath(p))
        real.relative_to(os.path.realpath(pkg_root))
    except ValueError:
        return None
    return real if real.is_file() else None


def scan_theme(theme_root: Path, pkg_root: Path, wanted: set[str] | None = None) -> dict[str, list[Source]]:
    """All usable PNG/SVG files of a theme, by icon name (restricted to ``wanted`` names if given).
    Walks in sorted order and does not follow directory symlinks (their targets are walked anyway)."""
    found: dict[str, list[Source]] = defaultdict(list)
    for dirpath, dirnames, filenames in os.walk(theme_root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        rel_parts = Path(dirpath).relative_to(theme_root).parts
        size = parse_size_dir(rel_parts)
        if size is None:
            continue
        for fname in sorted(filenames):
            stem, dot, ext = fname.rpartition(".")
            if not dot or ext not in ("png", "svg") or stem.endswith("-symbolic"):
                continue
            if wanted is not None and stem not in wanted:
                continue
            path = Path(dirpath) / fname
            real = resolve_link(path, pkg_root)
            if real is None:
                continue
            found[stem].append(Source(stem, path, real, ext, size[0], size[1]))
    return dict(found)


def source_rank(src: Source) -> tuple | None:
    """Sort key for picking one file per icon name (lower is better), None if unusable.

    1. a PNG drawn at >= 128 px (the smallest such: least resampling)
    2. an SVG (the largest nominal design: most detail; ``scalable`` first)
    3. a PNG at 48..127 px (the largest)

    Anything drawn for less than 48 px (PNG or SVG: small sizes are simplified toolbar glyphs) is unusable.
    """
    if src.fmt == "png":
        if src.pixels >= IMAGE_SIZE:
            return (0, src.pixels, src.scale, str(src.path))
        if src.pixels >= MIN_PNG_SIZE:
            return (2, -src.pixels, src.scale, str(src.path))
        return None
    if src.size < MIN_PNG_SIZE:
        return None
    return (1, -src.size, src.scale, str(src.path))


def best_source(sources: Iterable[Source]) -> Source | None:
    ranked = [(r, s) for s in sources if (r := source_rank(s)) is not None]
    return min(ranked, key=lambda rs: rs[0])[1] if ranked else None


@dataclass(frozen=True)
class PlannedImage:
    style: str
    subject: str
    icon_name: str
    source: Source
    package: str
    pkg_root: Path

    @property
    def image_id(self) -> str:
        return sanitize_id(f"{self.style}/{self.subject}/{self.icon_name}")


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plan_theme(
    style: str,
    package: str,
    pkg_root: Path,
    theme_root: Path,
    subjects: Sequence[Subject] = SUBJECTS,
    max_variants: int = MAX_VARIANTS,
) -> list[PlannedImage]:
    """Per subject, up to ``max_variants`` distinct drawings, taken in synonym-table order.
    Aliases (symlinks, or byte-identical copies) of an already-taken drawing are skipped."""
    wanted = {n for s in subjects for n in s.icon_names}
    by_name = scan_theme(theme_root, pkg_root, wanted)
    plan: list[PlannedImage] = []
    taken_names: set[str] = set()
    for subject in subjects:
        seen: set[str] = set()
        count = 0
        for name in subject.icon_names:
            if count >= max_variants:
                break
            if name in taken_names or name not in by_name:
                continue  # a name listed under two subjects belongs to the first
            src = best_source(by_name[name])
            if src is None:
                continue
            key = _file_digest(src.real)
            if key in seen:
                continue
            seen.add(key)
            taken_names.add(name)
            plan.append(PlannedImage(style, subject.name, name, src, package, pkg_root))
            count += 1
    return plan


# ------------------------------------------------------------------------------------ rendering
def _svg_to_rgba(svg: Path, size: int) -> Image.Image:
    exe = shutil.which("rsvg-convert")
    if exe:
        out = subprocess.run(
            [exe, "-w", str(size), "-h", str(size), "-a", "-f", "png", str(svg)],
            capture_output=True,
            check=True,
        ).stdout
        return Image.open(io.BytesIO(out)).convert("RGBA")
    try:
        import cairosvg
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "rasterizing SVG icons needs rsvg-convert (apt-get install librsvg2-bin) or cairosvg"
        ) from exc
    data = cairosvg.svg2png(url=str(svg), output_width=size, output_height=size)
    return Image.open(io.BytesIO(data)).convert("RGBA")


def _fit_on_white(img: Image.Image, size: int = IMAGE_SIZE) -> Image.Image:
    img = img.convert("RGBA")
    if img.size != (size, size):
        scale = size / max(img.size)
        new = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(new, Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    layer.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return Image.alpha_composite(canvas, layer).convert("RGB")


def render_file(path: Path, fmt: str, size: int = IMAGE_SIZE) -> Image.Image:
    """A PNG or SVG file as a ``size`` x ``size`` RGB image, aspect kept, centred, alpha composited on
    white (SVGs are rasterised at ``size``; PNGs resampled with Lanczos)."""
    if fmt == "svg":
        return _fit_on_white(_svg_to_rgba(path, size), size)
    with Image.open(path) as im:
        im.load()
        return _fit_on_white(im, size)


def render_source(src: Source, size: int = IMAGE_SIZE) -> Image.Image:
    """The source as a ``size`` x ``size`` RGB image, alpha composited on white."""
    return render_file(src.real, src.fmt, size)


def is_blank(img: Image.Image, fraction: float = BLANK_FRACTION) -> bool:
    """True if (almost) every pixel is white, or the image is one flat colour."""
    gray = img.convert("L")
    hist = gray.histogram()
    total = img.width * img.height
    nonwhite = total - sum(hist[250:])
    return nonwhite < fraction * total or max(hist) == total


# ----------------------------------------------------------------------------------------- build
def dataset_dir(out: Path | None = None) -> Path:
    return Path(out) if out else debian.cache_root() / "datasets" / DATASET_NAME


def config_fingerprint(themes: Sequence[Theme] = THEMES, subjects: Sequence[Subject] = SUBJECTS) -> str:
    payload = {
        "builder": BUILDER_VERSION,
        "size": IMAGE_SIZE,
        "max_variants": MAX_VARIANTS,
        "min_themes": MIN_THEMES,
        "themes": [[t.style, t.package, t.theme_dir] for t in themes],
        "subjects": [[s.name, s.query, list(s.icon_names)] for s in subjects],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def is_up_to_date(root: Path, themes: Sequence[Theme] = THEMES, subjects: Sequence[Subject] = SUBJECTS) -> bool:
    manifest = root / "manifest.json"
    if not manifest.is_file() or not (root / "labels.json").is_file():
        return False
    try:
        data = json.loads(manifest.read_text())
    except ValueError:
        return False
    return data.get("builder_version") == BUILDER_VERSION and data.get("config_fingerprint") == config_fingerprint(
        themes, subjects
    )


def build(
    out: Path | None = None,
    force: bool = False,
    quiet: bool = False,
    themes: Sequence[Theme] = THEMES,
    subjects: Sequence[Subject] = SUBJECTS,
    workers: int | None = None,
) -> Path:
    """Build the dataset (fetching the theme packages if needed) and return its directory.
    A no-op when the manifest matches this builder version and configuration."""
    root = dataset_dir(out)
    if not force and is_up_to_date(root, themes, subjects):
        _log(f"{root}: up to date (builder {BUILDER_VERSION})", quiet)
        return root
    t0 = time.monotonic()

    # 1. packages
    packages: dict[str, debian.ExtractedPackage] = {}
    for i, theme in enumerate(themes, 1):
        if theme.package not in packages:
            _log(f"[{i}/{len(themes)}] package {theme.package}", quiet)
            packages[theme.package] = debian.fetch_package(theme.package)

    # 2. plan: the best file per icon name, up to MAX_VARIANTS drawings per cell
    plan: list[PlannedImage] = []
    for theme in themes:
        pkg = packages[theme.package]
        theme_root = pkg.root / "usr" / "share" / "icons" / theme.theme_dir
        if not theme_root.is_dir():
            raise FileNotFoundError(f"{theme.package} has no usr/share/icons/{theme.theme_dir}")
        plan.extend(plan_theme(theme.style, theme.package, pkg.root, theme_root, subjects))
    _log(f"planned {len(plan)} candidate images from {len(themes)} themes", quiet)

    # 3. render into a staging directory (parallel; the result does not depend on the order)
    staging = root.with_name(root.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "images").mkdir(parents=True)

    def work(item: PlannedImage) -> tuple[PlannedImage, str | None]:
        try:
            img = render_source(item.source)
        except Exception as exc:  # a broken source file is skipped, and reported
            return item, f"render failed: {exc}"
        if is_blank(img):
            return item, "blank render"
        dest = staging / "images" / f"{item.image_id}.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        img.save(dest, format="PNG", optimize=True)
        return item, None

    rendered: list[PlannedImage] = []
    skipped: list[dict] = []
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        for n, (item, problem) in enumerate(pool.map(work, plan), 1):
            if problem is None:
                rendered.append(item)
            else:
                skipped.append({"image_id": item.image_id, "reason": problem})
            if n % 100 == 0 or n == len(plan):
                _log(f"  rendered {n}/{len(plan)}", quiet)

    # 4. keep subjects drawn by at least MIN_THEMES themes
    themes_per_subject: dict[str, set[str]] = defaultdict(set)
    for item in rendered:
        themes_per_subject[item.subject].add(item.style)
    kept_subjects = [s for s in subjects if len(themes_per_subject[s.name]) >= MIN_THEMES]
    kept_names = {s.name for s in kept_subjects}
    final = [it for it in rendered if it.subject in kept_names]
    for item in rendered:
        if item.subject not in kept_names:
            dest = staging / "images" / f"{item.image_id}.png"
            dest.unlink()
            if not any(dest.parent.iterdir()):
                dest.parent.rmdir()
    dropped_subjects = sorted({s.name for s in subjects} - kept_names)

    labels: list[dict[str, Any]] = []
    for item in sorted(final, key=lambda it: it.image_id):
        src_rel = "/" + str(item.source.path.relative_to(item.pkg_root))
        real_rel = "/" + str(item.source.real.relative_to(os.path.realpath(item.pkg_root)))
        labels.append(
            {
                "image_id": item.image_id,
                "path": f"images/{item.image_id}.png",
                "subject": item.subject,
                "style": item.style,
                "query": SUBJECT_BY_NAME[item.subject].query,
                "icon_name": item.icon_name,
                "source_package": item.package,
                "source_file": src_rel,
                "source_resolved": real_rel,
                "source_format": item.source.fmt,
                "source_size": "scalable" if item.source.size == 1024 else item.source.pixels,
            }
        )
    counts_theme = Counter(lab["style"] for lab in labels)
    counts_subject = Counter(lab["subject"] for lab in labels)
    cells: dict[str, dict[str, int]] = defaultdict(dict)
    cell_counts: Counter[tuple[str, str]] = Counter((lab["style"], lab["subject"]) for lab in labels)
    for (style, subject), n in sorted(cell_counts.items()):
        cells[style][subject] = n
    manifest = {
        "dataset": DATASET_NAME,
        "builder_version": BUILDER_VERSION,
        "config_fingerprint": config_fingerprint(themes, subjects),
        "image_size": IMAGE_SIZE,
        "max_variants_per_cell": MAX_VARIANTS,
        "min_themes_per_subject": MIN_THEMES,
        "num_images": len(labels),
        "packages": {
            p.name: {"version": p.version, "deb_sha256": p.sha256, "license": p.main_license()}
            for p in sorted(packages.values(), key=lambda p: p.name)
        },
        "themes": [
            {
                "style": t.style,
                "package": t.package,
                "theme_dir": t.theme_dir,
                "note": t.note,
                "images": counts_theme.get(t.style, 0),
            }
            for t in themes
        ],
        "subjects": [
            {
                "name": s.name,
                "query": s.query,
                "images": counts_subject[s.name],
                "themes": len(themes_per_subject[s.name]),
            }
            for s in kept_subjects
        ],
        "dropped_subjects": dropped_subjects,
        "cells": cells,
        "skipped": skipped,
    }
    (staging / "licenses").mkdir()
    for p in packages.values():  # the images are GPL / LGPL / CC-BY-SA works: ship their terms
        (staging / "licenses" / f"{p.name}.copyright").write_text(p.copyright())
    (staging / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")

    # 5. swap in atomically-ish: the old tree is removed only once the new one is complete
    if root.exists():
        old = root.with_name(root.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        root.rename(old)
        staging.rename(root)
        shutil.rmtree(old)
    else:
        root.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(root)
    _log(
        f"built {len(labels)} images, {len(counts_theme)} themes x {len(kept_subjects)} subjects "
        f"in {time.monotonic() - t0:.1f}s -> {root}",
        quiet,
    )
    return root


# ------------------------------------------------------------------------------- load / subset
def load_labels(root: Path | None = None) -> list[dict]:
    """The labels of a built dataset, sorted by image_id; each gets an absolute ``file`` path."""
    root = dataset_dir(root)
    labels = json.loads((root / "labels.json").read_text())
    for lab in labels:
        lab["file"] = str(root / lab["path"])
    return sorted(labels, key=lambda lab: lab["image_id"])


def open_images(labels: Sequence[dict]) -> list[Image.Image]:
    """The RGB images of ``load_labels`` rows, in the same order."""
    images = []
    for row in labels:
        with Image.open(row["file"]) as im:
            images.append(im.convert("RGB"))
    return images


def subset(
    labels: Sequence[dict] | None = None,
    max_per_cell: int = 1,
    themes: Iterable[str] | None = None,
    subjects: Iterable[str] | None = None,
    root: Path | None = None,
) -> list[dict]:
    """A deterministic small subset: at most ``max_per_cell`` images per (style, subject) cell.

    Within a cell images are taken in synonym-table order (the most canonical icon name first), ties
    by image_id. The result is sorted by image_id. ``themes`` / ``subjects`` restrict the cells.
    """
    if labels is None:
        labels = load_labels(root)
    theme_set = set(themes) if themes is not None else None
    subject_set = set(subjects) if subjects is not None else None

    def preference(lab: dict) -> tuple:
        subject = SUBJECT_BY_NAME.get(lab["subject"])
        names = subject.icon_names if subject else ()
        name = lab.get("icon_name") or lab["image_id"].rsplit("/", 1)[-1]
        return (names.index(name) if name in names else len(names), lab["image_id"])

    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for lab in labels:
        if theme_set is not None and lab["style"] not in theme_set:
            continue
        if subject_set is not None and lab["subject"] not in subject_set:
            continue
        cells[(lab["style"], lab["subject"])].append(lab)
    picked = [lab for cell in cells.values() for lab in sorted(cell, key=preference)[:max_per_cell]]
    return sorted(picked, key=lambda lab: lab["image_id"])


# ------------------------------------------------------------------------------- contact sheet
def contact_sheet(
    root: Path | None = None,
    out: Path | None = None,
    cell: int = 56,
    themes: Sequence[str] | None = None,
    subjects: Sequence[str] | None = None,
) -> Path:
    """A PNG grid: one row per theme, one column per subject, the first image of each cell."""
    from PIL import ImageDraw, ImageFont

    root = dataset_dir(root)
    manifest = json.loads((root / "manifest.json").read_text())
    row_names = list(themes or [t["style"] for t in manifest["themes"] if t["images"]])
    col_names = list(subjects or [s["name"] for s in manifest["subjects"]])
    picked = {(lab["style"], lab["subject"]): lab for lab in subset(load_labels(root), 1, row_names, col_names)}
    font = ImageFont.load_default(size=11)
    label_w, header_h, pad = 92, 74, 2
    width = label_w + len(col_names) * (cell + pad) + pad
    height = header_h + len(row_names) * (cell + pad) + pad
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, subject in enumerate(col_names):  # rotated column headers
        txt = Image.new("L", (header_h - 4, 14), 255)
        ImageDraw.Draw(txt).text((0, 0), subject, fill=0, font=font)
        txt = txt.rotate(90, expand=True)
        x = label_w + c * (cell + pad) + (cell - txt.width) // 2
        sheet.paste(Image.new("RGB", txt.size, (0, 0, 0)), (x, 2), Image.eval(txt, lambda v: 255 - v))
    for r, style in enumerate(row_names):
        y = header_h + r * (cell + pad)
        draw.text((4, y + cell // 2 - 6), style, fill=(0, 0, 0), font=font)
        for c, subject in enumerate(col_names):
            x = label_w + c * (cell + pad)
            lab = picked.get((style, subject))
            if lab is None:
                draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=(235, 235, 235))
                continue
            with Image.open(root / lab["path"]) as im:
                sheet.paste(im.convert("RGB").resize((cell, cell), Image.Resampling.LANCZOS), (x, y))
    out = Path(out) if out else Path(__file__).resolve().parents[2] / "docs" / "img" / "icons-dataset.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    # a 256-colour palette keeps it ~250 KB for the repo; icons are flat enough not to show banding
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
    return out


# ------------------------------------------------------------------------------------------ CLI
def coverage(themes: Sequence[Theme] = THEMES, subjects: Sequence[Subject] = SUBJECTS) -> dict:
    """{style: {subject: [icon names found]}} from the extracted packages (fetching them if needed)."""
    result: dict[str, dict[str, list[str]]] = {}
    for theme in themes:
        pkg = debian.fetch_package(theme.package)
        theme_root = pkg.root / "usr" / "share" / "icons" / theme.theme_dir
        plan = plan_theme(theme.style, theme.package, pkg.root, theme_root, subjects)
        cells: dict[str, list[str]] = defaultdict(list)
        for item in plan:
            cells[item.subject].append(f"{item.icon_name}:{item.source.fmt}{item.source.pixels}")
        result[theme.style] = dict(cells)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m imgsearch.datasets.icons", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="fetch the theme packages and build the dataset")
    b.add_argument("--out", type=Path, default=None, help=f"dataset dir (default <cache>/datasets/{DATASET_NAME})")
    b.add_argument("--force", action="store_true", help="rebuild even if the manifest is up to date")
    b.add_argument("--quiet", action="store_true")
    s = sub.add_parser("sheet", help="write the contact sheet PNG")
    s.add_argument("--dataset", type=Path, default=None)
    s.add_argument("--out", type=Path, default=None, help="default docs/img/icons-dataset.png")
    s.add_argument("--cell", type=int, default=56)
    c = sub.add_parser("coverage", help="print which subjects each theme draws (no rendering)")
    c.add_argument("--all", action="store_true", help="include EXTRA_THEMES and EXTRA_SUBJECTS")
    args = ap.parse_args(argv)
    if args.cmd == "build":
        print(build(args.out, force=args.force, quiet=args.quiet))
    elif args.cmd == "sheet":
        print(contact_sheet(args.dataset, args.out, cell=args.cell))
    elif args.cmd == "coverage":
        themes = THEMES + EXTRA_THEMES if args.all else THEMES
        subjects = ALL_SUBJECTS if args.all else SUBJECTS
        cov = coverage(themes, subjects)
        for style, cells in cov.items():
            print(f"{style:16s} {len(cells):3d} subjects  {sum(len(v) for v in cells.values()):4d} images")
        print()
        for subject in subjects:
            have = [st for st in cov if subject.name in cov[st]]
            print(f"{subject.name:13s} {len(have):2d}  missing: {' '.join(st for st in cov if st not in have)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
