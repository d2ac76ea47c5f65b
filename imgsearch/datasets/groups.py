"""Evaluation groups: which images answer which natural query, across styles.

* icons: the curated subject (``printer`` <- ``printer``, ``printer-network``, ``document-print`` ...),
  queried by its natural text ("a printer");
* emoji: one subject per emoji, but a query such as "a cat" has many relevant emoji per vendor
  (cat, cat face, grinning cat ...): a group is a query and the words any of which, in an emoji's name,
  short names or tags, makes it relevant. Concrete, drawable subjects only.

Groups are also the unit of the held-out subjects: a held-out group is never trained on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

EMOJI_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "cat": ("a cat", ("cat", "kitten")),
    "dog": ("a dog", ("dog", "puppy", "poodle")),
    "heart": ("a heart", ("heart",)),
    "car": ("a car", ("car", "automobile", "taxi")),
    "tree": ("a tree", ("tree",)),
    "flower": ("a flower", ("flower", "blossom", "rose", "tulip", "sunflower", "hibiscus")),
    "fish": ("a fish", ("fish",)),
    "bird": ("a bird", ("bird", "chicken", "penguin", "dove", "eagle", "owl", "parrot", "duck", "chick")),
    "moon": ("the moon", ("moon",)),
    "sun": ("the sun", ("sun", "sunny")),
    "star": ("a star", ("star",)),
    "monkey": ("a monkey", ("monkey",)),
    "clock": ("a clock", ("clock", "oclock", "o’clock")),
    "phone": ("a telephone", ("phone", "telephone")),
    "book": ("a book", ("book", "books", "notebook")),
    "ball": ("a ball", ("ball", "football", "soccer", "basketball", "baseball", "volleyball")),
    "train": ("a train", ("train", "locomotive", "railway", "tram")),
    "house": ("a house", ("house", "home")),
    "hand": ("a hand", ("hand", "hands")),
    "fruit": ("a piece of fruit", ("apple", "pear", "banana", "grapes", "cherries", "strawberry", "peach", "lemon")),
    "music": ("music", ("music", "musical", "guitar", "violin", "trumpet", "saxophone", "piano")),
    "money": ("money", ("money", "dollar", "euro", "yen", "pound", "banknote", "coin")),
    "key": ("a key", ("key",)),
    "mail": ("an envelope, e-mail", ("envelope", "mail", "mailbox", "e-mail", "email")),
    "camera": ("a camera", ("camera",)),
    "cloud": ("a cloud", ("cloud",)),
    "snow": ("snow", ("snow", "snowflake", "snowman")),
    "fire": ("fire", ("fire", "flame")),
    "bug": ("an insect", ("bug", "bee", "beetle", "ant", "butterfly", "ladybug", "ladybird", "cricket", "honeybee")),
    "boat": ("a boat", ("boat", "ship", "sailboat", "canoe", "speedboat", "ferry")),
    "plane": ("an airplane", ("airplane", "aeroplane", "plane")),
    "bike": ("a bicycle", ("bicycle", "bike")),
}


@dataclass(frozen=True)
class EvalGroup:
    """One evaluation query and which images are relevant to it."""

    name: str  # e.g. "icon:printer", "emoji:cat"
    query: str
    kind: str


def _words(text: str) -> set[str]:
    return {w.strip(".,:;()'\"").lower() for w in text.replace("-", " ").replace("_", " ").split()}


def eval_group_of(label: Mapping[str, Any]) -> str | None:
    """The evaluation group of an image: its curated subject (icons), its keyword group (emoji)."""
    if label.get("kind") == "icon":
        cur = label.get("curated_subject")
        return f"icon:{cur}" if cur else None
    if label.get("kind") == "emoji":
        words = _words(label.get("text", ""))
        for kw in label.get("keywords", []):
            words |= _words(str(kw))
        for group, (_, keys) in EMOJI_GROUPS.items():
            if words & set(keys):
                return f"emoji:{group}"
    return None


def eval_groups(labels: Sequence[Mapping[str, Any]]) -> list[EvalGroup]:
    seen: dict[str, EvalGroup] = {}
    for lab in labels:
        g = eval_group_of(lab)
        if g is None or g in seen:
            continue
        if g.startswith("icon:"):
            seen[g] = EvalGroup(g, str(lab.get("query") or g[5:]), "icon")
        else:
            seen[g] = EvalGroup(g, EMOJI_GROUPS[g[6:]][0], "emoji")
    return [seen[k] for k in sorted(seen)]


def held_out_group(group: str) -> bool:
    """Evaluation groups never trained on (one in five, by a hash of the name): "held-out subjects"."""
    return int(hashlib.sha1(group.encode()).hexdigest(), 16) % 5 == 0
