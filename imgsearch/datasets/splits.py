"""The train / val / test split by style family, and the held-out-subject rule (issue 19).

The split unit is the *family*: one design lineage. Two styles that derive from one another (Obsidian
from Faenza, the seven GNOME-Colors recolourings, Papirus from Paper) are one family, so no derivative
of a test style is ever trained on. The table is the lead's decision, written down exactly as::

  icons  train: adwaita, breeze, gnome (gnome-icon-theme), gnome-colors (brave, dust, human,
                illustrious, noble, wine, wise: one family), oxygen, tango, sugar, faenza+obsidian
                (obsidian derives from faenza: one family), nuovo (gnome-icon-theme-nuovo)
         val:   elementary, yaru
         test:  papirus, moka, paper, suru   (one lineage: Paper/Moka/Suru by one designer, Papirus
                derives from Paper; kept together so no derivative leaks into training)
  emoji  train: google (emoji-datasource-google PNGs; Noto is the same design — do not add a second
                copy), blob (@svgmoji/blob)   [blob forks Noto: same split as google]
         val:   facebook (emoji-datasource-facebook)
         test:  twitter (emoji-datasource-twitter; @svgmoji/twemoji is the same design: not a second
                family), openmoji (npm openmoji)
  openclipart-png: train only (extra (image, text) pairs).
  Tux Paint stamp captions: never trained on (held-out caption benchmark).
  Excluded entirely (kept for outside re-measurement): numix, mint-y, mate, deepin, lxde nuoveXT,
  elementary-xfce, any other icon/emoji package.

papirus, moka, paper and suru are separate styles *and* separate families (each is its own design,
by one designer or derived from one), all four in split ``test``.

Held-out subjects: independently of the style split, a fixed fifth of the subjects
(``sha1(subject) % 5 == 0``) is never trained on in any style, so a benchmark can measure retrieval of
subjects the model has not seen (zero-shot by content) as well as of styles it has not seen.
"""

from __future__ import annotations

import hashlib

SPLITS: tuple[str, ...] = ("train", "val", "test")

# family -> split
FAMILY_SPLIT: dict[str, str] = {
    # icons
    "adwaita": "train",
    "breeze": "train",
    "gnome": "train",
    "gnome-colors": "train",
    "oxygen": "train",
    "tango": "train",
    "sugar": "train",
    "faenza": "train",
    "nuovo": "train",
    "elementary": "val",
    "yaru": "val",
    "papirus": "test",
    "moka": "test",
    "paper": "test",
    "suru": "test",
    # emoji
    "google": "train",
    "blob": "train",
    "facebook": "val",
    "twitter": "test",
    "openmoji": "test",
    # clip-art
    "openclipart": "train",
}

# style -> family, for every style whose family is not the style itself
_STYLE_FAMILY_EXCEPTIONS: dict[str, str] = {
    "obsidian": "faenza",
    "gnome-colors": "gnome-colors",  # gnome-colors-common: the base the seven recolourings inherit from
    **{f"gnome-colors-{c}": "gnome-colors" for c in ("brave", "dust", "human", "illustrious", "noble", "wine", "wise")},
}

# Families that must never be used for anything (excluded entirely, see the module docstring).
EXCLUDED_FAMILIES: frozenset[str] = frozenset(
    {"numix", "mint-y", "mate", "deepin", "nuovext", "elementary-xfce", "twemoji", "noto"}
)

HELD_OUT_MODULUS = 5


class UnknownStyleError(KeyError):
    pass


def family_of(style: str) -> str:
    """The family (split unit) of a style; raises UnknownStyleError for styles not in the table."""
    family = _STYLE_FAMILY_EXCEPTIONS.get(style, style)
    if family not in FAMILY_SPLIT:
        raise UnknownStyleError(style)
    return family


def split_of_family(family: str) -> str:
    try:
        return FAMILY_SPLIT[family]
    except KeyError:
        raise UnknownStyleError(family) from None


def split_of_style(style: str) -> str:
    return split_of_family(family_of(style))


def families(split: str | None = None) -> list[str]:
    """All families (sorted), or those of one split."""
    return sorted(f for f, s in FAMILY_SPLIT.items() if split is None or s == split)


def subject_bucket(subject: str, modulus: int = HELD_OUT_MODULUS) -> int:
    """``int(sha1(subject)) % modulus``: a stable bucket that does not depend on Python's hash seed."""
    return int(hashlib.sha1(subject.encode("utf-8")).hexdigest(), 16) % modulus


def is_held_out_subject(subject: str) -> bool:
    """True for the fixed fifth of subjects that is never trained on (in any style)."""
    return subject_bucket(subject) == 0


def trainable(style: str, subject: str) -> bool:
    """True if an image of ``subject`` in ``style`` may be used for training."""
    return split_of_style(style) == "train" and not is_held_out_subject(subject)
