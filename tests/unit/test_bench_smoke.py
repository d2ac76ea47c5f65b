"""Smoke runs of the quality benchmarks, so they cannot rot: tiny inputs, the real code paths and
model artifacts, structure checked (the numbers themselves are in docs/benchmarks.md)."""

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from imgsearch.embedding.conse import default_artifact_dir

REPO = Path(__file__).resolve().parents[2]


def tiny_dataset(root: Path) -> Path:
    labels = []
    for s, (bg, fg) in enumerate([((255, 255, 255), (200, 0, 0)), ((10, 10, 40), (0, 255, 200))]):
        for subject in ("printer", "camera", "folder"):
            for v in range(2):
                im = Image.new("RGB", (64, 64), bg)
                d = ImageDraw.Draw(im)
                box = [8 + 4 * v, 8, 56, 40 + 8 * ("printer", "camera", "folder").index(subject)]
                (d.rectangle if subject != "camera" else d.ellipse)(box, fill=fg)
                rel = f"images/style{s}/{subject}/{v}.png"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                im.save(root / rel)
                labels.append(
                    {"image_id": f"style{s}/{subject}/{v}", "path": rel, "subject": subject, "style": f"style{s}"}
                )
    (root / "labels.json").write_text(json.dumps(labels))
    return root


def run(*args: str) -> None:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_cluster_and_personalization_eval_smoke(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    run(
        "bench/cluster_eval.py", "--dataset", str(data), "--k", "2,3", "--seeds", "1", "--out", str(tmp_path / "c.json")
    )
    c = json.loads((tmp_path / "c.json").read_text())
    assert c["images"] == 12 and {r["k"] for r in c["results"]} == {2, 3}
    assert all(0 <= r["purity_style"] <= 1 and 0 <= r["nmi_subject"] <= 1 for r in c["results"])
    # two drawn styles (light vs dark) are separated by the default style vector far better than chance (0.5)
    default = [r for r in c["results"] if r["vector"].startswith("style:") and "handcrafted" not in r["vector"]]
    assert {r["k"] for r in default} == {2, 3}
    assert next(r for r in default if r["k"] == 2)["purity_style"] >= 0.9
    run("bench/personalization_eval.py", "--dataset", str(data), "--k", "2", "--out", str(tmp_path / "p.json"))
    p = json.loads((tmp_path / "p.json").read_text())
    modes = {(r["vector"], r["mode"]) for r in p["results"]}
    assert ("style", "gated") in modes and ("oracle-theme", "linear") in modes
    assert all(len(r["curve"]) == 11 and r["curve"][0]["weight"] == 0.0 for r in p["results"])


def test_embeddings_eval_smoke(tmp_path):
    stamps = default_artifact_dir().parent.parent / "data/tuxpaint/usr/share/tuxpaint/stamps"
    assert stamps.is_dir(), "scripts/setup_models.sh fetches the Tux Paint stamps"
    run(
        "bench/embeddings_eval.py",
        "--variants",
        "lite0",
        "--norms",
        "tf",
        "--resize",
        "pad",
        "--limit",
        "40",
        # one prompt-template set, one synonym mode: 1 of the sweep's 12 class matrices (1,000 prompts
        # each through MiniLM) - the full sweep took ~280 of the 300 s timeout on a cold, busy machine
        "--templates",
        "photo",
        "--synonyms",
        "first",
        "--out",
        str(tmp_path / "e.json"),
    )
    assert json.loads((tmp_path / "e.json").read_text())


def test_styled_users_eval_smoke(tmp_path):
    run("bench/styled_users_eval.py", "--seeds", "1", "--k", "10", "--out", str(tmp_path / "s.json"))
    s = json.loads((tmp_path / "s.json").read_text())
    assert len(s["runs"]) == 1 and set(s["runs"][0]["tops"]) == {"sepia", "sketch", "pop"}
    assert all(len(t) == 10 for t in s["runs"][0]["tops"].values())
    assert set(s["summary"]) == {"subject", "lift", "distinct", "first", "all_of_the_issue"}
