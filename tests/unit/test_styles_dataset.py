"""styles-v2 dataset builder: splits, subject ids, texts, emoji parsing, icon planning and an end-to-end
build on tiny fake Debian / npm packages made here (no network, no apt, no npm)."""

import json
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from imgsearch.datasets import debian, icons, npm, splits, styles
from imgsearch.datasets.styles import (
    Fetchers,
    IconCandidate,
    canonical_icon_name,
    emoji_key,
    humanize_clipart,
    humanize_icon_name,
    icon_keywords,
    parse_emoji_meta,
    parse_openmoji,
    plan_icons,
    select_styles,
)


# ------------------------------------------------------------------------------------- splits
def test_split_table_is_the_leads_table():
    expected = {
        "train": [
            "adwaita",
            "blob",
            "breeze",
            "faenza",
            "gnome",
            "gnome-colors",
            "google",
            "nuovo",
            "openclipart",
            "oxygen",
            "sugar",
            "tango",
        ],
        "val": ["elementary", "facebook", "yaru"],
        "test": ["moka", "openmoji", "paper", "papirus", "suru", "twitter"],
    }
    assert {s: splits.families(s) for s in splits.SPLITS} == expected


@pytest.mark.parametrize(
    ("style", "family", "split"),
    [
        ("obsidian", "faenza", "train"),
        ("faenza", "faenza", "train"),
        ("gnome-colors-brave", "gnome-colors", "train"),
        ("gnome-colors-wise", "gnome-colors", "train"),
        ("gnome-colors", "gnome-colors", "train"),
        ("gnome", "gnome", "train"),
        ("papirus", "papirus", "test"),
        ("suru", "suru", "test"),
        ("yaru", "yaru", "val"),
        ("facebook", "facebook", "val"),
        ("twitter", "twitter", "test"),
        ("openclipart", "openclipart", "train"),
    ],
)
def test_family_and_split_of_style(style, family, split):
    assert splits.family_of(style) == family
    assert splits.split_of_style(style) == split


def test_every_built_style_has_a_family_and_excluded_ones_do_not():
    for style in styles.all_styles():
        assert splits.split_of_style(style) in splits.SPLITS
    for bad in ("numix", "mint-y", "mate", "deepin", "nuovext", "elementary-xfce"):
        assert bad in splits.EXCLUDED_FAMILIES
        with pytest.raises(splits.UnknownStyleError):
            splits.family_of(bad)


def test_held_out_subjects_are_a_stable_fifth():
    subjects = [f"subject-{i}" for i in range(2000)]
    held = [s for s in subjects if splits.is_held_out_subject(s)]
    assert 0.16 < len(held) / len(subjects) < 0.24
    # sha1-based, so it does not depend on PYTHONHASHSEED: pin two known values
    import hashlib

    for s in ("printer", "1F63A"):
        assert splits.is_held_out_subject(s) == (int(hashlib.sha1(s.encode()).hexdigest(), 16) % 5 == 0)
    assert splits.trainable("tango", next(s for s in subjects if s not in held))
    assert not splits.trainable("tango", held[0])
    assert not splits.trainable("papirus", next(s for s in subjects if s not in held))


# ------------------------------------------------------------------------------ subject ids and texts
@pytest.mark.parametrize(
    ("raw", "canon"),
    [
        ("printer-network", "printer-network"),
        ("printer-network.svg", "printer-network"),
        ("org.gnome.Calculator", "org.gnome.calculator"),
        ("trashcan_empty", "trashcan-empty"),
        ("printer-symbolic", None),
        ("go-next-rtl", None),
        ("", None),
    ],
)
def test_canonical_icon_name(raw, canon):
    assert canonical_icon_name(raw) == canon


def test_curated_emoji_table_is_consistent():
    assert set(styles.CURATED_EMOJI) <= {s.name for s in icons.ALL_SUBJECTS}
    codes = [c for cs in styles.CURATED_EMOJI.values() for c in cs]
    assert len(codes) == len(set(codes))  # no emoji under two subjects
    assert styles.EMOJI_TO_CURATED[emoji_key("1F5A8")] == ("printer", 0)
    assert styles.curated_rank("printer-network", "printer") == 1
    assert styles.curated_rank("printer", "printer") == 0


def test_curated_table_maps_canonical_names():
    assert styles.CURATED_BY_CANONICAL["printer-network"] == "printer"
    assert styles.CURATED_BY_CANONICAL["org.gnome.calculator"] == "calculator"
    assert styles.CURATED_BY_CANONICAL["trashcan-empty"] == "trash"
    assert len(icons.ALL_SUBJECTS) >= 60
    assert len({s.name for s in icons.ALL_SUBJECTS}) == len(icons.ALL_SUBJECTS)


@pytest.mark.parametrize(
    ("name", "context", "text"),
    [
        ("printer-network", "devices", "a network printer"),
        ("camera-photo", "devices", "a photo camera"),
        ("drive-harddisk", "devices", "a hard disk drive"),
        ("folder-music", "places", "a music folder"),
        ("user-trash-full", "places", "a full trash"),
        ("accessories-calculator", "apps", "a calculator"),
        ("org.gnome.Calculator", "apps", "a calculator"),
        ("audio-x-generic", "mimetypes", "an audio file"),
        ("application-pdf", "mimetypes", "a pdf file"),
        ("text-x-python", "mimetypes", "a python text file"),
        ("go-next", "actions", "go next icon"),
        ("headphones", "devices", "headphones"),
    ],
)
def test_humanize_icon_name(name, context, text):
    assert humanize_icon_name(name, context) == text


def test_icon_keywords_and_clipart_text():
    assert icon_keywords("drive-harddisk-usb") == ["drive", "hard", "disk", "usb"]
    assert icon_keywords("org.gnome.Calculator") == ["calculator"]
    assert humanize_clipart("animals/birds", "blue_parrot_01") == "blue parrot, a clip art drawing (animals, birds)"
    assert styles.clipart_keywords("animals/birds", "blue_parrot_01") == ["blue", "parrot", "animals", "birds"]


# ------------------------------------------------------------------------------------------ emoji
EMOJI_META_ROWS = [
    {
        "name": "GRINNING CAT FACE WITH SMILING EYES",
        "unified": "1F638",
        "image": "1f638.png",
        "short_names": ["smile_cat"],
        "category": "Smileys & Emotion",
        "subcategory": "cat-face",
        "has_img_twitter": True,
        "has_img_google": True,
    },
    {
        "name": "HEAVY BLACK HEART",
        "unified": "2764-FE0F",
        "non_qualified": "2764",
        "image": "2764-fe0f.png",
        "short_names": ["heart"],
        "category": "Smileys & Emotion",
        "subcategory": "heart",
        "has_img_twitter": True,
        "has_img_google": False,
    },
    {
        "name": "PRINTER",
        "unified": "1F5A8-FE0F",
        "image": "1f5a8-fe0f.png",
        "short_names": ["printer"],
        "category": "Objects",
        "subcategory": "computer",
        "has_img_twitter": True,
        "has_img_google": True,
    },
    {
        "name": "REGIONAL INDICATOR SYMBOL LETTERS DE",
        "unified": "1F1E9-1F1EA",
        "image": "1f1e9-1f1ea.png",
        "short_names": ["flag-de"],
        "category": "Flags",
        "subcategory": "country-flag",
        "has_img_twitter": True,
        "has_img_google": True,
    },
    {
        "name": "CHEQUERED FLAG",
        "unified": "1F3C1",
        "image": "1f3c1.png",
        "short_names": ["checkered_flag"],
        "category": "Flags",
        "subcategory": "flag",
        "has_img_twitter": True,
        "has_img_google": True,
    },
    {
        "name": "KEYCAP 0",
        "unified": "0030-FE0F-20E3",
        "image": "0030-fe0f-20e3.png",
        "short_names": ["zero"],
        "category": "Symbols",
        "subcategory": "keycap",
        "has_img_twitter": True,
        "has_img_google": True,
    },
    {
        "name": "EMOJI MODIFIER FITZPATRICK TYPE-1-2",
        "unified": "1F3FB",
        "image": "1f3fb.png",
        "short_names": ["skin-tone-2"],
        "category": "Component",
        "subcategory": "skin-tone",
        "has_img_twitter": True,
        "has_img_google": True,
    },
]
OPENMOJI_ROWS = [
    {
        "hexcode": "1F638",
        "group": "smileys-emotion",
        "annotation": "grinning cat with smiling eyes",
        "tags": "cat, face, grinning",
        "openmoji_tags": "happy",
        "skintone": "",
    },
    {
        "hexcode": "2764",
        "group": "smileys-emotion",
        "annotation": "red heart",
        "tags": "heart",
        "openmoji_tags": "",
        "skintone": "",
    },
    {
        "hexcode": "1F44D-1F3FB",
        "group": "people-body",
        "annotation": "thumbs up: light skin tone",
        "tags": "",
        "openmoji_tags": "",
        "skintone": "1",
    },
    {
        "hexcode": "E000",
        "group": "extras-openmoji",
        "annotation": "openmoji",
        "tags": "",
        "openmoji_tags": "",
        "skintone": "",
    },
]


def test_emoji_key_matches_qualified_and_unqualified():
    assert emoji_key("2764-FE0F") == emoji_key("2764") == "2764"
    assert emoji_key("00a9") == emoji_key("A9-fe0f") == "00A9"
    assert emoji_key("1F468-200D-1F3EB") == "1F468-200D-1F3EB"


def test_parse_emoji_meta_skips_flags_keycaps_components():
    meta = parse_emoji_meta(EMOJI_META_ROWS)
    assert sorted(meta) == ["1F3C1", "1F5A8", "1F638", "2764"]  # the chequered flag is no country flag
    cat = meta["1F638"]
    assert cat.subject == "1F638" and cat.name == "grinning cat face with smiling eyes" and cat.char == "\U0001f638"
    assert meta["2764"].subject == "2764-FE0F"  # the fully-qualified sequence is the subject id
    om = parse_openmoji(OPENMOJI_ROWS)
    assert sorted(om) == ["1F638", "2764"]
    assert styles.emoji_keywords(cat, styles.openmoji_tags(om["1F638"])) == [
        "smile",
        "cat",
        "face",
        "grinning",
        "happy",
    ]


# --------------------------------------------------------------------------------- icon planning
def _cand(style: str, name: str, digest: str) -> IconCandidate:
    src = icons.Source(name, Path(f"/x/{style}/{name}.png"), Path(f"/x/{style}/{name}.png"), "png", 128, 1)
    return IconCandidate(style, name, name, src, digest, "devices")


def test_plan_icons_counts_families_not_styles_and_dedupes_aliases():
    cands = {
        "tango": [
            _cand("tango", "printer", "t1"),
            _cand("tango", "printer-network", "t1"),
            _cand("tango", "calc", "t2"),
        ],
        "oxygen": [_cand("oxygen", "printer", "o1"), _cand("oxygen", "calc", "o2")],
        # two styles of one family count once
        "gnome-colors": [_cand("gnome-colors", "calc", "g1"), _cand("gnome-colors", "printer-network", "g2")],
        "gnome-colors-brave": [_cand("gnome-colors-brave", "calc", "b1")],
        "papirus": [_cand("papirus", "printer", "p1"), _cand("papirus", "printer-network", "p2")],
    }
    kept, aliases, nfam = plan_icons(cands, min_families=3)
    got = sorted((c.style, c.name) for c in kept)
    # printer: tango, oxygen, papirus; calc: tango, oxygen, gnome-colors(x2 styles) = 3 families.
    # printer-network is tango's alias of printer (same file) -> only gnome-colors + papirus draw it: dropped.
    assert got == [
        ("gnome-colors", "calc"),
        ("gnome-colors-brave", "calc"),
        ("oxygen", "calc"),
        ("oxygen", "printer"),
        ("papirus", "printer"),
        ("tango", "calc"),
        ("tango", "printer"),
    ]
    assert aliases["tango/printer"] == ["printer-network"]
    assert nfam == {"printer": 3, "calc": 3}


def test_select_styles_by_family_and_kind():
    assert select_styles(["faenza"], ["icon"]) == ["faenza", "obsidian"]
    assert select_styles(["gnome-colors"], ["icon"])[:2] == ["gnome-colors", "gnome-colors-brave"]
    assert len(select_styles(["gnome-colors"], ["icon"])) == 8
    assert select_styles(["papirus", "twitter"], ["emoji"]) == ["twitter"]
    assert select_styles(None, ["clipart"]) == ["openclipart"]
    with pytest.raises(ValueError):
        select_styles(["numix"])
    with pytest.raises(ValueError):
        select_styles(None, ["photo"])


# ----------------------------------------------------------------------------- npm extraction
def test_npm_extract_is_safe(tmp_path):
    src = tmp_path / "src"
    (src / "package" / "img").mkdir(parents=True)
    (src / "package" / "package.json").write_text('{"name": "x", "version": "1.0.0"}')
    (src / "package" / "img" / "a.png").write_bytes(b"png")
    (src / "evil.txt").write_text("outside")
    tgz = tmp_path / "x.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(src / "package", arcname="package")
        tar.add(src / "evil.txt", arcname="package/../evil.txt")
        link = tarfile.TarInfo("package/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    dest = tmp_path / "out"
    npm.extract_tgz(tgz, dest)
    assert (dest / "img" / "a.png").read_bytes() == b"png"
    assert not (dest / "link").exists() and not (tmp_path / "evil.txt").exists()
    assert sorted(p.name for p in dest.iterdir()) == ["img", "package.json"]


# --------------------------------------------------------------------------- end-to-end build
def _png(path: Path, size: int, color: tuple[int, int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))  # transparent background -> must become white
    for x in range(size // 4, 3 * size // 4):
        for y in range(size // 4, 3 * size // 4):
            img.putpixel((x, y), color)
    img.save(path)


def _fake_world(tmp: Path) -> Fetchers:
    deb_root = tmp / "deb"
    themes = {
        "tango-icon-theme": ("Tango", (200, 0, 0, 255)),
        "oxygen-icon-theme": ("oxygen", (0, 150, 0, 255)),
        "papirus-icon-theme": ("Papirus", (0, 0, 200, 255)),
        "gnome-colors-common": ("gnome-colors-common", (120, 60, 0, 255)),
    }
    for pkg, (theme, color) in themes.items():
        base = deb_root / pkg / "usr" / "share" / "icons" / theme
        for i, name in enumerate(("printer", "camera-photo", "folder")):
            _png(base / "64x64" / "devices" / f"{name}.png", 64, (color[0], color[1], (color[2] + 40 * i) % 256, 255))
        _png(base / "16x16" / "devices" / "scanner.png", 16, color)  # too small everywhere: never kept
        _png(base / "64x64" / "devices" / "printer-symbolic.png", 64, color)
        if pkg == "tango-icon-theme":
            (base / "64x64" / "devices" / "printer-network.png").symlink_to("printer.png")  # an alias
            _png(base / "64x64" / "apps" / "tango-only.png", 64, (1, 2, 3, 255))
    for c in ("brave", "dust", "human", "illustrious", "noble", "wine", "wise"):  # recolourings: folders only
        _png(
            deb_root
            / f"gnome-{c}-icon-theme"
            / "usr/share/icons"
            / f"gnome-{c}"
            / "scalable-up-to-64"
            / "places"
            / "folder.png",
            64,
            (len(c) * 20, 100, 100, 255),
        )
    clip = deb_root / "openclipart-png" / "usr" / "share" / "openclipart" / "png"
    _png(clip / "animals" / "birds" / "blue_parrot_01.png", 96, (0, 90, 200, 255))
    _png(clip / "food" / "apple_01.png", 96, (220, 0, 0, 255))
    _png(clip / "food" / "tiny_01.png", 20, (220, 0, 0, 255))

    def fake_debian(name: str) -> debian.ExtractedPackage:
        root = deb_root / name
        if not root.is_dir():
            raise AssertionError(f"unexpected package {name}")
        doc = root / "usr" / "share" / "doc" / name
        doc.mkdir(parents=True, exist_ok=True)
        (doc / "copyright").write_text("Files: *\nCopyright: someone\nLicense: GPL-3+\n")
        return debian.ExtractedPackage(name, "1.0-1", "0" * 64, root)

    npm_root = tmp / "npm"
    meta_dir = npm_root / "emoji-datasource"
    meta_dir.mkdir(parents=True)
    (meta_dir / "emoji.json").write_text(json.dumps(EMOJI_META_ROWS))
    (meta_dir / "package.json").write_text('{"name": "emoji-datasource", "version": "16.0.0", "license": "MIT"}')
    tw = npm_root / "emoji-datasource-twitter"
    for row in EMOJI_META_ROWS:
        _png(tw / "img" / "twitter" / "64" / row["image"], 64, (250, 200, 0, 255))
    (tw / "emoji.json").write_text(json.dumps(EMOJI_META_ROWS))
    (tw / "package.json").write_text('{"name": "emoji-datasource-twitter", "version": "16.0.0", "license": "MIT"}')
    (tw / "README.md").write_text("* Twitter images are available under the CC-BY 4.0 licence.\n")
    om = npm_root / "openmoji" / "data"
    om.mkdir(parents=True)
    (om / "openmoji.json").write_text(json.dumps(OPENMOJI_ROWS))
    (om.parent / "package.json").write_text('{"name": "openmoji", "version": "17.0.0", "license": "CC-BY-SA-4.0"}')

    def fake_npm(name: str, version: str) -> npm.NpmPackage:
        root = npm_root / name
        if not root.is_dir():
            raise AssertionError(f"unexpected npm package {name}")
        return npm.NpmPackage(name, version, "1" * 64, root)

    return Fetchers(debian=fake_debian, npm=fake_npm)


def test_build_end_to_end_on_fake_packages(tmp_path, monkeypatch):
    fetch = _fake_world(tmp_path)
    out = tmp_path / "ds"
    cache = tmp_path / "renders"
    root = styles.build(
        out,
        ["tango", "oxygen", "papirus", "gnome-colors", "twitter", "openclipart"],
        quiet=True,
        fetch=fetch,
        workers=2,
        render_cache=cache,
    )
    labels = json.loads((root / "labels.json").read_text())
    manifest = json.loads((root / "manifest.json").read_text())
    ids = [r["image_id"] for r in labels]
    assert ids == sorted(ids)
    icons_rows = [r for r in labels if r["kind"] == "icon"]
    colors = ("brave", "dust", "human", "illustrious", "noble", "wine", "wise")
    assert sorted(r["image_id"] for r in icons_rows) == sorted(
        [
            f"{s}/{n}/{n}"
            for s in ("tango", "oxygen", "papirus", "gnome-colors")
            for n in ("camera-photo", "folder", "printer")
        ]
        + [f"gnome-colors-{c}/folder/folder" for c in colors]
    )  # scanner is too small, tango-only is drawn by one family, printer-network is an alias, -symbolic skipped
    printer = next(r for r in labels if r["image_id"] == "papirus/printer/printer")
    assert printer["split"] == "test" and printer["family"] == "papirus"
    assert printer["curated_subject"] == "printer" and printer["query"] == "a printer"
    assert printer["curated_rank"] == 0
    assert printer["text"] == "a printer" and printer["keywords"] == ["printer"]
    assert printer["source_package"] == "papirus-icon-theme" and printer["license"] == "GPL-3+"
    tango_printer = next(r for r in labels if r["image_id"] == "tango/printer/printer")
    assert tango_printer["aliases"] == ["printer-network"] and tango_printer["split"] == "train"
    gc = next(r for r in labels if r["style"] == "gnome-colors")
    assert gc["family"] == "gnome-colors"
    emoji_rows = [r for r in labels if r["kind"] == "emoji"]
    assert sorted(r["subject"] for r in emoji_rows) == ["1F3C1", "1F5A8-FE0F", "1F638", "2764-FE0F"]
    emoji_printer = next(r for r in emoji_rows if r["subject"] == "1F5A8-FE0F")
    assert emoji_printer["curated_subject"] == "printer" and emoji_printer["query"] == "a printer"
    assert emoji_printer["text"] == "printer"
    assert "1F4F7" in manifest["curated_emoji_missing"]  # the tiny fake emoji.json has no camera
    cat = next(r for r in emoji_rows if r["subject"] == "1F638")
    assert cat["text"] == "grinning cat face with smiling eyes" and cat["split"] == "test"
    assert "happy" in cat["keywords"] and cat["emoji"] == "\U0001f638"
    assert cat["cldr_name"] == "grinning cat with smiling eyes"  # openmoji's CLDR annotation
    assert "curated_subject" not in cat
    clip = [r for r in labels if r["kind"] == "clipart"]
    assert sorted(r["subject"] for r in clip) == ["clipart/animals/birds/blue_parrot_01", "clipart/food/apple_01"]
    assert all(r["split"] == "train" for r in clip)
    for r in labels:
        for key in (
            "image_id",
            "path",
            "style",
            "family",
            "split",
            "kind",
            "subject",
            "text",
            "keywords",
            "source_package",
            "source_version",
            "license",
            "subject_held_out",
        ):
            assert key in r, (key, r["image_id"])
        with Image.open(root / r["path"]) as im:
            assert im.mode == "RGB" and im.size == (128, 128)
            assert im.getpixel((0, 0)) == (255, 255, 255)  # transparent corners composited on white
    assert manifest["num_images"] == len(labels)
    assert manifest["counts"]["kind"] == {"clipart": 2, "emoji": 4, "icon": 19}
    assert all(r["families_drawing"] == 4 for r in icons_rows)  # 8 gnome-colors styles count as one family
    assert manifest["packages"]["emoji-datasource-twitter@16.0.0"]["license_statement"].startswith("* Twitter")
    assert (root / "licenses").is_dir()

    # idempotent: a second build with the same config touches no package (the fetchers would fail)
    def boom(*_a):
        raise AssertionError("fetched although up to date")

    before = (root / "manifest.json").read_bytes()
    styles.build(
        out,
        ["tango", "oxygen", "papirus", "gnome-colors", "twitter", "openclipart"],
        quiet=True,
        fetch=Fetchers(debian=boom, npm=boom),
        render_cache=cache,
    )
    assert (root / "manifest.json").read_bytes() == before

    # deterministic: a forced rebuild with an empty render cache gives byte-identical labels and images
    labels_before = (root / "labels.json").read_bytes()
    img_before = (root / printer["path"]).read_bytes()
    styles.build(
        out,
        ["tango", "oxygen", "papirus", "gnome-colors", "twitter", "openclipart"],
        quiet=True,
        fetch=fetch,
        force=True,
        render_cache=tmp_path / "renders2",
    )
    assert (root / "labels.json").read_bytes() == labels_before
    assert (root / printer["path"]).read_bytes() == img_before

    # the render cache: a rebuild renders nothing it has seen (render_file would fail here)
    def no_render(*_a, **_k):
        raise AssertionError("rendered although cached")

    monkeypatch.setattr(icons, "render_file", no_render)
    styles.build(
        out,
        ["tango", "oxygen", "papirus", "gnome-colors", "twitter", "openclipart"],
        quiet=True,
        fetch=fetch,
        force=True,
        render_cache=cache,
    )
    assert (root / "labels.json").read_bytes() == labels_before
    assert (root / printer["path"]).read_bytes() == img_before


def test_build_subset_changes_the_fingerprint(tmp_path):
    fetch = _fake_world(tmp_path)
    a = styles.config_fingerprint(styles.config(select_styles(["tango"]), styles.KINDS, None, 3))
    b = styles.config_fingerprint(styles.config(select_styles(["tango", "oxygen"]), styles.KINDS, None, 3))
    assert a != b
    root = styles.build(
        tmp_path / "two",
        ["tango", "oxygen"],
        kinds=["icon"],
        quiet=True,
        fetch=fetch,
        min_families=2,
        render_cache=tmp_path / "renders",
    )
    labels = json.loads((root / "labels.json").read_text())
    assert {r["style"] for r in labels} == {"tango", "oxygen"}
    assert {r["subject"] for r in labels} == {"printer", "camera-photo", "folder"}


@pytest.mark.parametrize(
    ("folder", "stem", "reason"),
    [
        ("shapes/stars", "star_64pt23step", "generated star pattern"),
        ("shapes/stars", "star_of_david", None),
        ("computer/icons", "70a031", "no word in the file name"),
        ("computer/icons", "tv", None),
        ("animals", "blue_parrot_01", None),
    ],
)
def test_clipart_skip_reason(folder, stem, reason):
    assert styles.clipart_skip_reason(folder, stem) == reason


def test_clipart_size_limits(tmp_path, monkeypatch):
    fetch = _fake_world(tmp_path)
    packages: dict = {}
    got = styles.plan_clipart_items(fetch, packages, None, quiet=True)
    assert sorted(it.row["source_size"] for it in got) == [96, 96]  # the 20 px one is too small
    monkeypatch.setattr(styles.builder, "MAX_CLIPART_PIXELS", 95 * 95)
    assert styles.plan_clipart_items(fetch, packages, None, quiet=True) == []
    monkeypatch.undo()
    assert len(styles.plan_clipart_items(fetch, packages, 1, quiet=True)) == 1  # --clipart-limit
