"""evaluate: one confusion matrix per group and overall, through predict_tile."""

import csv
import json

import numpy as np
import pytest

from gdcld_zoo import build_model
from gdcld_zoo.cli import main
from gdcld_zoo.data import read_pair, tile_pairs, write_synthetic_dataset
from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.evaluation import evaluate, format_table
from gdcld_zoo.inference import predict_tile
from gdcld_zoo.metrics import confusion_matrix_metrics
from gdcld_zoo.weights import load_pretrained, write_run_record


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("eval")
    root = write_synthetic_dataset(base / "data", n_train=0, n_val=6, tile_size=64, seed=2)
    model = build_model("segformer_tiny")
    model.save_weights(base / "best.weights.h5")
    write_run_record(base, base / "best.weights.h5", "segformer_tiny", threshold=0.45)
    return root / "manifest.csv", base, load_pretrained(base)


def reference(model, pairs, threshold):
    masks, probs = [], []
    for pair in pairs:
        image, mask = read_pair(pair)
        masks.append(mask)
        probs.append(predict_tile(model, image[None])[0])
    return confusion_matrix_metrics(np.stack(masks), np.stack(probs), threshold=threshold, from_logits=False)


def test_overall_and_groups_match_reference(setup):
    manifest, _, model = setup
    report = evaluate(model, manifest, "val", by=("event",), batch_size=4)
    pairs = tile_pairs(manifest, "val")
    assert report["threshold"] == 0.45 and report["tiles"] == 6
    want = reference(model, pairs, 0.45)
    assert report["overall"]["confusion_matrix"] == want["confusion_matrix"]
    for key in ("precision", "recall", "f1", "iou", "miou"):
        assert report["overall"][key] == pytest.approx(want[key]), key
    assert sum(g["tiles"] for g in report["groups"]) == 6
    for group in report["groups"]:
        members = [p for p in pairs if p.event == group["event"]]
        assert group["confusion_matrix"] == reference(model, members, 0.45)["confusion_matrix"]
    table = format_table(report)
    assert "Precision (%)" in table and "mIoU (%)" in table and "Overall" in table


def test_bad_group_field(setup):
    manifest, _, model = setup
    with pytest.raises(InvalidInputError, match="Cannot group by"):
        evaluate(model, manifest, "val", by=("country",))


def test_cli_writes_json_and_csv(setup, tmp_path, capsys):
    manifest, run_dir, _ = setup
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    argv = ["evaluate", str(run_dir), "--data", str(manifest), "--split", "val", "--by", "event,sensor",
            "--json", str(out_json), "--csv", str(out_csv)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    data = json.loads(out_json.read_text())
    assert {"precision", "recall", "f1", "iou", "miou"} <= set(data["overall"])
    assert all({"event", "sensor", "miou"} <= set(g) for g in data["groups"])
    assert f"{100 * data['overall']['miou']:.2f}" in printed
    rows = list(csv.DictReader(out_csv.open()))
    assert rows[-1]["event"] == "Overall" and float(rows[-1]["miou"]) == pytest.approx(data["overall"]["miou"], abs=1e-6)
