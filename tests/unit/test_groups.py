from pathlib import Path

from PIL import Image

from imgsearch.datasets.curated import export_curated
from imgsearch.datasets.groups import eval_group_of, eval_groups, held_out_group


def _row(style: str, kind: str, image_id: str, **kw: object) -> dict:
    return {"style": style, "kind": kind, "image_id": image_id, "path": f"images/{image_id}.png", **kw}


def test_groups_of_icons_and_emoji() -> None:
    icon = _row(
        "papirus",
        "icon",
        "papirus/printer-network/printer-network",
        curated_subject="printer",
        query="a printer",
        text="a network printer",
    )
    other_icon = _row("papirus", "icon", "papirus/0ad/0ad", text="0ad")
    cat = _row(
        "twitter", "emoji", "twitter/1F63A/1F63A", text="smiling cat face with open mouth", keywords=["smiley_cat"]
    )
    kitten = _row("openmoji", "emoji", "openmoji/1F408/1F408", text="cat", keywords=["kitten", "pet"])
    car_word_inside = _row("twitter", "emoji", "twitter/1F3CE/1F3CE", text="racing car", keywords=[])
    scarf = _row("twitter", "emoji", "twitter/1F9E3/1F9E3", text="scarf", keywords=["neck"])
    assert eval_group_of(icon) == "icon:printer"
    assert eval_group_of(other_icon) is None
    assert eval_group_of(cat) == "emoji:cat" == eval_group_of(kitten)
    assert eval_group_of(car_word_inside) == "emoji:car"
    assert eval_group_of(scarf) is None  # "car" inside a word does not count
    groups = eval_groups([icon, other_icon, cat, kitten])
    assert [(g.name, g.query) for g in groups] == [("emoji:cat", "a cat"), ("icon:printer", "a printer")]
    assert sum(held_out_group(f"icon:s{i}") for i in range(1000)) in range(150, 250)  # about a fifth


def test_export_curated_is_idempotent(tmp_path: Path) -> None:
    src = tmp_path / "src"
    rows = []
    for style in ("papirus", "moka"):
        for name in ("printer", "printer-network", "0ad"):
            f = src / style / name / f"{name}.png"
            f.parent.mkdir(parents=True)
            Image.new("RGB", (8, 8), "white").save(f)
            row = _row(style, "icon", f"{style}/{name}/{name}", file=str(f), text=name)
            if name != "0ad":
                row.update(curated_subject="printer", query="a printer")
            rows.append(row)
    out = tmp_path / "demo"
    plan = export_curated(rows, ["papirus"], out)
    assert sorted(plan) == ["papirus/printer/printer", "papirus/printer/printer-network"]
    assert (out / "papirus/printer/printer-network.png").is_file() and not (out / "moka").exists()
    stamp = (out / "papirus/printer/printer.png").stat().st_mtime_ns
    assert export_curated(rows, ["papirus"], out) == plan
    assert (out / "papirus/printer/printer.png").stat().st_mtime_ns == stamp  # untouched the second time
