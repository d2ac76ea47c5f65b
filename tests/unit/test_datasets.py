"""The pure parts of the icon-theme dataset builder, on tiny fake extracted packages (no network, no apt)."""

import json
import os
import random
import shutil
from pathlib import Path

import pytest
from PIL import Image

from imgsearch.datasets import debian, icons
from imgsearch.datasets.icons import (
    SUBJECTS,
    Source,
    Subject,
    Theme,
    parse_size_dir,
    sanitize_id,
    source_rank,
    subject_for_icon,
    subset,
)

HAVE_SVG = bool(shutil.which("rsvg-convert"))
try:  # pragma: no cover - depends on the machine
    import cairosvg  # noqa: F401

    HAVE_SVG = True
except Exception:
    pass

SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="48" height="48" viewBox="0 0 48 48">'
    '<rect x="6" y="10" width="36" height="28" rx="3" fill="{color}"/></svg>'
)


# ------------------------------------------------------------------------------------ mapping
@pytest.mark.parametrize(
    ("name", "subject"),
    [
        ("printer", "printer"),
        ("printer-network", "printer"),
        ("printer-network.png", "printer"),
        ("document-print.svg", "printer"),
        ("camera-photo", "camera"),
        ("accessories-camera", "camera"),
        ("inode-directory", "folder"),
        ("user-trash-full", "trash"),
        ("accessories-calculator", "calculator"),
        ("audio-x-generic", "music"),
        ("internet-mail", "mail"),
        ("utilities-terminal", "terminal"),
        ("x-office-calendar", "calendar"),
        ("web-browser", "globe"),
        ("input-gaming", "gamepad"),
        ("printer-symbolic", None),
        ("printer-symbolic.svg", None),
        ("printerx", None),
        ("Printer", None),  # exact names only
        ("multimedia-player", None),  # an mp3 player, deliberately not a phone
        ("", None),
    ],
)
def test_subject_for_icon(name, subject):
    assert subject_for_icon(name) == subject


def test_subject_table_is_consistent():
    names = [s.name for s in SUBJECTS]
    assert len(names) == len(set(names))
    assert 15 <= len(SUBJECTS) <= 30
    for s in SUBJECTS:
        assert s.query and s.icon_names
        assert len(s.icon_names) == len(set(s.icon_names))
        assert sanitize_id(s.name) == s.name
        assert subject_for_icon(s.icon_names[0]) == s.name
    styles = [t.style for t in icons.THEMES + icons.EXTRA_THEMES]
    assert len(styles) == len(set(styles))
    assert all(sanitize_id(st) == st for st in styles)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("tango/printer/printer-network", "tango/printer/printer-network"),
        ("mint-y/camera/org.gnome.Cheese", "mint-y/camera/org.gnome.Cheese"),
        ("a b/c:d/e", "a_b/c_d/e"),
        ("x/ünï cødé/y", "x/_n_c_d_/y"),
        ("../../etc/passwd", "etc/passwd"),
        ("/abs//path/./x/", "abs/path/x"),
        ("t/s/.hidden", "t/s/_.hidden"),
        ("t\\s\\n", "t/s/n"),
    ],
)
def test_sanitize_id(raw, clean):
    assert sanitize_id(raw) == clean
    assert sanitize_id(clean) == clean  # idempotent


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("48x48", "apps"), (48, 1)),
        (("apps", "48"), (48, 1)),
        (("base", "256x256", "devices"), (256, 1)),
        (("32x32@2x", "places"), (32, 2)),
        (("devices", "64@2x"), (64, 2)),
        (("scalable", "devices"), (1024, 1)),
        (("scalable-up-to-32", "status"), (32, 1)),
        (("places",), None),
        ((), None),
    ],
)
def test_parse_size_dir(parts, expected):
    assert parse_size_dir(parts) == expected


def _src(fmt, size, scale=1, path="x"):
    return Source("printer", Path(path), Path(path), fmt, size, scale)


def test_source_rank_prefers_big_png_then_svg_then_medium_png():
    png128, png256, svg_s, svg64, png96, png48 = (
        _src("png", 128),
        _src("png", 256),
        _src("svg", 1024),
        _src("svg", 64),
        _src("png", 96),
        _src("png", 48),
    )
    order = sorted([png48, svg64, png256, png96, svg_s, png128], key=source_rank)
    assert order == [png128, png256, svg_s, svg64, png96, png48]
    assert source_rank(_src("png", 32)) is None
    assert source_rank(_src("svg", 24)) is None  # small toolbar designs are not used
    assert source_rank(_src("png", 64, scale=2))[0] == 0  # 64@2x is 128 px


# ----------------------------------------------------------------------------- fake packages
def _png(path: Path, size: int, color) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    img.paste(Image.new("RGBA", (size // 2, size // 2), color), (size // 4, size // 4))
    img.save(path)


def make_fake_package(base: Path, pkg: str, theme_dir: str, color, extra: bool = True) -> debian.ExtractedPackage:
    """A fake extracted icon-theme package with aliases, duplicates, links and small sizes."""
    root = base / pkg / "root"
    icons_dir = root / "usr" / "share" / "icons" / theme_dir
    for size in (16, 48, 256):
        _png(icons_dir / f"{size}x{size}" / "devices" / "printer.png", size, color)
    _png(icons_dir / "256x256" / "devices" / "camera-photo.png", 256, (color[0], 255 - color[1], 90, 255))
    _png(icons_dir / "48x48" / "places" / "folder.png", 48, (250, 200, 60, 255))
    _png(icons_dir / "48x48" / "places" / "user-trash.png", 48, (90, 90, 90, 255))
    # aliases of the printer: a relative symlink, an absolute one (re-rooted), a byte copy
    dev = icons_dir / "256x256" / "devices"
    os.symlink("printer.png", dev / "printer-remote.png")
    os.symlink(f"/usr/share/icons/{theme_dir}/256x256/devices/printer.png", dev / "gnome-dev-printer.png")
    shutil.copy(dev / "printer.png", dev / "printer-local.png")
    _png(dev / "printer-network.png", 256, (10, 10, 200, 255))  # a distinct drawing
    _png(dev / "printer-printing.png", 256, (10, 200, 10, 255))
    _png(dev / "system-config-printer.png", 256, (200, 10, 200, 255))  # 4th distinct: over the cap
    os.symlink("does-not-exist.png", dev / "xfce-printer.png")  # broken
    os.symlink("/../../../../etc/hostname", dev / "document-print.png")  # leaves the package
    _png(icons_dir / "symbolic" / "devices" / "camera-photo.png", 256, (0, 0, 0, 255))  # skipped dir
    _png(icons_dir / "256x256" / "devices" / "camera-photo-symbolic.png", 256, (0, 0, 0, 255))
    if extra:
        _png(icons_dir / "64x64@2x" / "apps" / "utilities-terminal.png", 128, (0, 0, 0, 255))
    (root / "usr" / "share" / "doc" / pkg).mkdir(parents=True)
    (root / "usr" / "share" / "doc" / pkg / "copyright").write_text(
        "License: see below\n\nFiles: debian/*\nLicense: GPL-2+\n\n"
        "Files: *\nCopyright: someone\nLicense: public-domain\n"
    )
    return debian.ExtractedPackage(name=pkg, version="1.0-1", sha256="0" * 64, root=root)


def test_resolve_link_stays_inside_package(tmp_path):
    pkg = make_fake_package(tmp_path, "fake-icons", "Fake", (200, 30, 30, 255))
    dev = pkg.root / "usr/share/icons/Fake/256x256/devices"
    real = (dev / "printer.png").resolve()
    assert icons.resolve_link(dev / "printer-remote.png", pkg.root) == real
    assert icons.resolve_link(dev / "gnome-dev-printer.png", pkg.root) == real
    assert icons.resolve_link(dev / "xfce-printer.png", pkg.root) is None
    assert icons.resolve_link(dev / "document-print.png", pkg.root) is None
    assert pkg.main_license() == "public-domain"
    assert debian.main_license("Format: x\n\nFiles: a/*\nLicense: MIT\n") == ""


def test_plan_theme_dedupes_aliases_and_caps_variants(tmp_path):
    pkg = make_fake_package(tmp_path, "fake-icons", "Fake", (200, 30, 30, 255))
    theme_root = pkg.root / "usr/share/icons/Fake"
    plan = icons.plan_theme("fake", pkg.name, pkg.root, theme_root, SUBJECTS, max_variants=3)
    by_subject: dict[str, list] = {}
    for item in plan:
        by_subject.setdefault(item.subject, []).append(item)
    printers = by_subject["printer"]
    # printer (256 px beats 48/16), then the distinct drawings in table order; aliases and the
    # byte-identical copy are skipped, and the 4th distinct drawing is over the cap
    assert [p.icon_name for p in printers] == ["printer", "printer-network", "printer-printing"]
    assert printers[0].source.size == 256
    assert by_subject["camera"][0].source.path.parts[-3] == "256x256"  # not the symbolic one
    assert [p.icon_name for p in by_subject["terminal"]] == ["utilities-terminal"]
    assert by_subject["terminal"][0].source.pixels == 128
    assert by_subject["folder"][0].source.size == 48
    assert {p.image_id for p in plan} == {f"fake/{p.subject}/{p.icon_name}" for p in plan}
    # deterministic
    again = icons.plan_theme("fake", pkg.name, pkg.root, theme_root, SUBJECTS, max_variants=3)
    assert [(p.image_id, p.source.path) for p in again] == [(p.image_id, p.source.path) for p in plan]


def test_render_fits_on_white_and_blank_detection(tmp_path):
    _png(tmp_path / "a.png", 48, (200, 0, 0, 255))
    img = icons.render_source(Source("a", tmp_path / "a.png", tmp_path / "a.png", "png", 48, 1))
    assert img.mode == "RGB" and img.size == (icons.IMAGE_SIZE, icons.IMAGE_SIZE)
    assert img.getpixel((0, 0)) == (255, 255, 255)  # transparent -> white
    r, g, b = img.getpixel((64, 64))
    assert r > 150 and g < 60 and b < 60
    assert not icons.is_blank(img)
    assert icons.is_blank(Image.new("RGB", (128, 128), "white"))
    assert icons.is_blank(Image.new("RGB", (128, 128), "black"))  # a flat box is not an icon


@pytest.mark.skipif(not HAVE_SVG, reason="needs rsvg-convert or cairosvg")
def test_render_svg(tmp_path):
    svg = tmp_path / "x.svg"
    svg.write_text(SVG.format(color="#0000ff"))
    img = icons.render_source(Source("x", svg, svg, "svg", 1024, 1))
    assert img.size == (128, 128) and img.getpixel((0, 0)) == (255, 255, 255)
    assert img.getpixel((64, 64))[2] > 200 and img.getpixel((64, 64))[0] < 50


# ---------------------------------------------------------------------------------------- build
@pytest.fixture
def fake_build(tmp_path, monkeypatch):
    """Three fake themes; "terminal" is drawn by two of them only, so it must be dropped."""
    monkeypatch.setenv("IMGSEARCH_CACHE", str(tmp_path / "cache"))
    pkgs = {
        "fake-a": make_fake_package(tmp_path / "debs", "fake-a", "A", (220, 40, 40, 255)),
        "fake-b": make_fake_package(tmp_path / "debs", "fake-b", "B", (40, 160, 40, 255)),
        "fake-c": make_fake_package(tmp_path / "debs", "fake-c", "C", (40, 40, 220, 255), extra=False),
    }
    calls = []

    def fake_fetch(name, cache=None, keep_deb=False):
        calls.append(name)
        return pkgs[name]

    monkeypatch.setattr(icons.debian, "fetch_package", fake_fetch)
    themes = (Theme("alpha", "fake-a", "A"), Theme("beta", "fake-b", "B"), Theme("gamma", "fake-c", "C"))
    return themes, calls, tmp_path


def test_build_outputs_labels_manifest_and_is_idempotent(fake_build):
    themes, calls, tmp_path = fake_build
    out = tmp_path / "ds"
    root = icons.build(out, themes=themes, quiet=True)
    assert root == out
    labels = json.loads((root / "labels.json").read_text())
    manifest = json.loads((root / "manifest.json").read_text())
    subjects = {lab["subject"] for lab in labels}
    assert subjects == {"printer", "camera", "folder", "trash"}
    assert "terminal" in manifest["dropped_subjects"]
    assert manifest["num_images"] == len(labels) == 3 * (3 + 1 + 1 + 1)
    assert manifest["packages"]["fake-a"] == {"version": "1.0-1", "deb_sha256": "0" * 64, "license": "public-domain"}
    assert "Files: *" in (root / "licenses" / "fake-a.copyright").read_text()
    assert manifest["cells"]["alpha"]["printer"] == 3
    assert [lab["image_id"] for lab in labels] == sorted(lab["image_id"] for lab in labels)
    for lab in labels:
        assert set(lab) >= {"image_id", "path", "subject", "style", "source_package", "source_file"}
        assert lab["path"] == f"images/{lab['image_id']}.png"
        with Image.open(root / lab["path"]) as im:
            assert im.size == (128, 128) and im.mode == "RGB"
        assert lab["source_file"].startswith("/usr/share/icons/")
    assert not list((root / "images").rglob("terminal"))  # dropped subject's files removed
    assert not (tmp_path / "ds.partial").exists()

    # a second call is a no-op: nothing fetched, nothing rewritten
    mtime = (root / "manifest.json").stat().st_mtime_ns
    n_calls = len(calls)
    assert icons.build(out, themes=themes, quiet=True) == root
    assert len(calls) == n_calls and (root / "manifest.json").stat().st_mtime_ns == mtime

    # a forced rebuild produces byte-identical output
    before = {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    icons.build(out, themes=themes, quiet=True, force=True)
    after = {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    assert before == after

    # a different configuration is not "up to date"
    assert not icons.is_up_to_date(root, themes=themes[:2])

    sheet = icons.contact_sheet(root, tmp_path / "sheet.png", cell=32)
    with Image.open(sheet) as im:
        assert im.width > 4 * 32 and im.height > 3 * 32


def test_load_labels_and_subset(fake_build):
    themes, _, tmp_path = fake_build
    root = icons.build(tmp_path / "ds", themes=themes, quiet=True)
    labels = icons.load_labels(root)
    assert all(Path(lab["file"]).is_file() for lab in labels)

    one = subset(labels, max_per_cell=1)
    assert len(one) == 3 * 4
    assert {lab["image_id"] for lab in one if lab["subject"] == "printer"} == {
        "alpha/printer/printer",
        "beta/printer/printer",
        "gamma/printer/printer",
    }
    shuffled = list(labels)
    random.Random(7).shuffle(shuffled)
    assert subset(shuffled, max_per_cell=2) == subset(labels, max_per_cell=2)
    two = subset(labels, max_per_cell=2, themes=["beta"], subjects=["printer", "camera"])
    assert [lab["image_id"] for lab in two] == [
        "beta/camera/camera-photo",
        "beta/printer/printer",
        "beta/printer/printer-network",
    ]
    assert subset(labels, themes=["nope"]) == []
    assert subset(root=root) == one


def test_subset_on_plain_dicts():
    subj = Subject("printer", "a printer", ("printer", "printer-network"))
    assert subj.icon_names[0] == "printer"
    labels = [
        {"image_id": "t/printer/printer-network", "subject": "printer", "style": "t", "icon_name": "printer-network"},
        {"image_id": "t/printer/printer", "subject": "printer", "style": "t", "icon_name": "printer"},
        {"image_id": "u/printer/zzz", "subject": "printer", "style": "u"},
    ]
    assert [lab["image_id"] for lab in subset(labels)] == ["t/printer/printer", "u/printer/zzz"]
