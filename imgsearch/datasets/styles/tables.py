"""The styles-v2 data tables: the icon, emoji and clip-art styles (designs) with their families and
packages, the licence lines, and choosing styles by name, family or kind."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from imgsearch.datasets import splits

KINDS: tuple[str, ...] = ("icon", "emoji", "clipart")


# --------------------------------------------------------------------------------------- styles
@dataclass(frozen=True)
class IconStyle:
    style: str
    package: str  # Debian package
    theme_dir: str  # under usr/share/icons/
    note: str = ""

    @property
    def family(self) -> str:
        return splits.family_of(self.style)


ICON_STYLES: tuple[IconStyle, ...] = (
    IconStyle("adwaita", "adwaita-icon-theme", "Adwaita", "GNOME 3 Adwaita (43): legacy full-colour + symbolic"),
    IconStyle("breeze", "breeze-icon-theme", "breeze", "KDE Plasma 5 Breeze, flat"),
    IconStyle("gnome", "gnome-icon-theme", "gnome", "GNOME 2 classic, Tango-like shading"),
    IconStyle("gnome-colors", "gnome-colors-common", "gnome-colors-common", "GNOME Colors base (Tango-based)"),
    *(
        IconStyle(f"gnome-colors-{c}", f"gnome-{c}-icon-theme", f"gnome-{c}", f"GNOME Colors {c} recolouring")
        for c in ("brave", "dust", "human", "illustrious", "noble", "wine", "wise")
    ),
    IconStyle("oxygen", "oxygen-icon-theme", "oxygen", "KDE 4 Oxygen, glossy and realistic"),
    IconStyle("tango", "tango-icon-theme", "Tango", "Tango Desktop Project, gradients, thin outlines"),
    IconStyle("sugar", "sugar-icon-theme", "sugar", "Sugar (OLPC), two-colour line art"),
    IconStyle("faenza", "faenza-icon-theme", "Faenza", "Faenza, glossy dark-framed"),
    IconStyle("obsidian", "obsidian-icon-theme", "Obsidian", "Obsidian, derived from Faenza"),
    IconStyle("nuovo", "gnome-icon-theme-nuovo", "Nuovo", "Dropline Nuovo (GNOME 2), glossy"),
    IconStyle("elementary", "elementary-icon-theme", "elementary", "elementary OS, soft gradients"),
    IconStyle("yaru", "yaru-theme-icon", "Yaru", "Ubuntu Yaru, rounded with soft shading"),
    IconStyle("papirus", "papirus-icon-theme", "Papirus", "Papirus, flat material-like (derives from Paper)"),
    IconStyle("moka", "moka-icon-theme", "Moka", "Moka, flat with long shadows"),
    IconStyle("paper", "paper-icon-theme", "Paper", "Paper, flat with paper shadows"),
    IconStyle("suru", "suru-icon-theme", "suru", "Ubuntu Touch Suru, line art"),
)


@dataclass(frozen=True)
class EmojiStyle:
    style: str
    package: str  # npm package
    version: str  # pinned
    image_dir: str  # inside the package; "" for openmoji (color/svg by hexcode)
    vendor: str  # emoji-datasource vendor key (has_img_<vendor>), "" for openmoji
    license: str
    note: str = ""

    @property
    def family(self) -> str:
        return splits.family_of(self.style)


# emoji metadata (names, short names, categories); its own images are not used
EMOJI_META = ("emoji-datasource", "16.0.0")

EMOJI_STYLES: tuple[EmojiStyle, ...] = (
    EmojiStyle(
        "google",
        "emoji-datasource-google",
        "16.0.0",
        "img/google/64",
        "google",
        "Apache-2.0",
        "Noto Color Emoji v2.048 (64 px PNGs, the largest the package ships)",
    ),
    # @svgmoji/blob ships no SVGs (its sprites are fetched from a CDN at run time); emoji-datasource-google
    # 3.0.0 ships the Android 7 (Nougat) blob design as 64 px PNGs: the same blob lineage, same split.
    EmojiStyle(
        "blob",
        "emoji-datasource-google",
        "3.0.0",
        "img/google/64",
        "google",
        "Apache-2.0",
        "Android 7.1 Nougat blob emoji (AOSP 2017-04-10), 64 px PNGs",
    ),
    EmojiStyle(
        "facebook",
        "emoji-datasource-facebook",
        "16.0.0",
        "img/facebook/64",
        "facebook",
        "no clear licensing (images (c) Facebook, Inc.)",
        "Facebook v9 (2024-02-05), 64 px PNGs",
    ),
    EmojiStyle(
        "twitter",
        "emoji-datasource-twitter",
        "16.0.0",
        "img/twitter/64",
        "twitter",
        "CC-BY-4.0",
        "Twemoji (jdecked fork) v16.0.1, 64 px PNGs",
    ),
    EmojiStyle("openmoji", "openmoji", "17.0.0", "color/svg", "", "CC-BY-SA-4.0", "OpenMoji 17, colour SVGs"),
)

# The README line of each emoji-datasource package that states the image licence, kept verbatim in the
# manifest (``license_statement``); the build fails loudly if the pinned package no longer says it.
_LICENSE_LINE_RE: dict[str, str] = {
    "google": r"^\* Android/Google/Noto images.*$",
    "facebook": r"^\* Facebook images.*$",
    "twitter": r"^\* Twitter images.*$",
    "blob": r"^\* Android Emoji: Copyright.*$",
}


@dataclass(frozen=True)
class ClipartStyle:
    style: str = "openclipart"
    package: str = "openclipart-png"
    png_dir: str = "usr/share/openclipart/png"
    license: str = "public-domain (Creative Commons Public Domain Dedication, per the Debian copyright file)"

    @property
    def family(self) -> str:
        return splits.family_of(self.style)


CLIPART = ClipartStyle()

# Debian packages whose copyright file is not machine-readable (or has no ``Files: *`` stanza): the
# licence as the file states it, read by hand.
DEBIAN_LICENSE_OVERRIDES: dict[str, str] = {
    "gnome-icon-theme-nuovo": "GPL-2+",
    "suru-icon-theme": "CC-BY-SA-3.0",  # "Files: suru/*"
    "openclipart-png": CLIPART.license,
}


def all_styles() -> list[str]:
    return [s.style for s in ICON_STYLES] + [s.style for s in EMOJI_STYLES] + [CLIPART.style]


def select_styles(names: Iterable[str] | None = None, kinds: Iterable[str] = KINDS) -> list[str]:
    """Styles matching ``names`` (each a style or a family name; None = all) and ``kinds``, in table order."""
    kinds = set(kinds)
    unknown_kinds = kinds - set(KINDS)
    if unknown_kinds:
        raise ValueError(f"unknown kinds {sorted(unknown_kinds)} (choose from {KINDS})")
    by_kind = {
        "icon": [s.style for s in ICON_STYLES],
        "emoji": [s.style for s in EMOJI_STYLES],
        "clipart": [CLIPART.style],
    }
    wanted = None if names is None else set(names)
    if wanted is not None:
        known = set(all_styles()) | {splits.family_of(s) for s in all_styles()}
        bad = wanted - known
        if bad:
            raise ValueError(f"unknown styles/families {sorted(bad)}")
    out = []
    for kind in KINDS:
        if kind not in kinds:
            continue
        for style in by_kind[kind]:
            if wanted is None or style in wanted or splits.family_of(style) in wanted:
                out.append(style)
    return out
