"""`gbair recover` end to end with the real bundled MiniLM: the report schema, the adapter, the cleaned set."""

import csv
import io
import json

import pytest
from rich.console import Console

from gbair.cli import main
from gbair.cli.display import ProgressLines, progress_display, validation_accuracy
from gbair.core.model import PetClassifier
from labeled_files import rows as example_rows, write_csv


@pytest.fixture(scope="module")
def recovered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recover")
    train = write_csv(folder / "train.csv", example_rows("t", 48))
    val = write_csv(folder / "val.csv", example_rows("v", 16))
    test = write_csv(folder / "test.csv", example_rows("x", 12))
    out = folder / "out"
    code = main([
        "recover", "--data", str(train), "--val-data", str(val), "--test-data", str(test),
        "--corrupt", "0.25", "--rounds", "1", "--budget", "6",
        "--epochs", "2", "--virtual-tokens", "4", "--seed", "1", "--out", str(out),
    ])
    assert code == 0
    return out


def test_report_has_the_promised_schema(recovered):
    report = json.loads((recovered / "report.json").read_text())
    assert {"dataset", "method", "action", "seed", "corrupted_ids", "rounds", "best_round"} <= set(report)
    assert report["dataset"] == "train" and report["method"] == "tracin-class-loss" and report["action"] == "remove"
    assert report["seed"] == 1 and len(report["corrupted_ids"]) == 12
    first, second = report["rounds"]
    assert first["round"] == 0 and first["train_size"] == 48 and len(first["flagged_ids"]) == 6
    assert second["train_size"] == 42 and second["flagged_ids"] == []
    assert first["val_change_p_value"] is None and 0 < second["val_change_p_value"] <= 1
    for row in report["rounds"]:
        assert 0 <= row["val_accuracy"] <= 1 and 0 <= row["test_accuracy"] <= 1
        assert row["relabels"] == {}
        assert set(row["timings"]) == {"train_s", "influence_s", "epochs", "checkpoints"}
        assert row["timings"]["epochs"] == 2 and row["timings"]["checkpoints"] == 2
    assert report["best_round"] in (0, 1)


def test_a_rounds_validation_accuracy_shows_the_range_of_its_trainings():
    assert validation_accuracy(0.75, None) == validation_accuracy(0.75, [0.75]) == "0.7500"
    assert validation_accuracy(0.75, [0.8, 0.7]) == "0.7500 (mean of 2: 0.7000-0.8000; model: training 1)"
    assert validation_accuracy(0.75, [0.7, 0.8], 1) == "0.7500 (mean of 2: 0.7000-0.8000; model: training 2)"


def test_output_that_is_not_a_terminal_gets_a_line_per_quarter_of_each_phase():
    log = io.StringIO()
    progress = progress_display(Console(file=log, width=200))
    assert isinstance(progress, ProgressLines)
    with progress:
        for done in range(11):
            progress("train", done, 10)
        for done in range(3):  # a phase that starts over is shown again
            progress("train", done, 2)
        progress("end-to-end runs", 0, 0)
    lines = [line.split(" ", 1)[1] for line in log.getvalue().splitlines()]
    assert lines == ["training 0/10", "training 3/10", "training 5/10", "training 8/10", "training 10/10",
                     "training 0/2", "training 1/2", "training 2/2", "end-to-end runs 0/0"]


def test_cleaned_set_is_the_best_rounds_training_set_in_the_input_format(recovered):
    report = json.loads((recovered / "report.json").read_text())
    with (recovered / "cleaned" / "train.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert set(rows[0]) == {"id", "text", "label"}
    removed = set(report["rounds"][0]["flagged_ids"]) if report["best_round"] == 1 else set()
    assert len(rows) == 48 - len(removed)
    assert not removed & {row["id"] for row in rows}
    flipped = set(report["corrupted_ids"])
    # The cleaned set carries the labels trained on: the corrupted ones where they were not removed.
    by_id = {row["id"]: row for row in rows}
    for example in example_rows("t", 48):
        if example["id"] in by_id:
            changed = by_id[example["id"]]["label"] != example["label"]
            assert changed == (example["id"] in flipped)


def test_best_adapter_loads(recovered):
    classifier = PetClassifier.load_adapter(recovered / "adapter")
    assert classifier.label_names == ["neg", "pos"] and classifier.config.num_virtual_tokens == 4
    assert (recovered / "accuracy.png").stat().st_size > 0


def test_bad_input_exits_with_a_message_naming_file_and_row(tmp_path, capsys):
    rows = example_rows("t", 6)
    rows[3]["text"] = ""
    train = write_csv(tmp_path / "broken.csv", rows)
    code = main(["recover", "--data", str(train), "--out", str(tmp_path / "out")])
    assert code == 2
    message = capsys.readouterr().err
    assert "broken.csv" in message and "row 5" in message and "empty" in message
    assert not (tmp_path / "out").exists()


def test_bad_setting_is_rejected_before_any_work(tmp_path, capsys):
    code = main(["recover", "--data", "diasafety", "--epochs", "0", "--out", str(tmp_path / "out")])
    assert code == 2
    assert "epochs" in capsys.readouterr().err


def test_suspects_file_lists_flagged_examples_with_their_text(recovered):
    report = json.loads((recovered / "report.json").read_text())
    with (recovered / "suspects.csv").open() as handle:
        suspects = list(csv.DictReader(handle))
    assert [s["id"] for s in suspects] == report["rounds"][0]["flagged_ids"]
    texts = {row["id"]: row["text"] for row in example_rows("t", 48)}
    flipped = set(report["corrupted_ids"])
    for rank, suspect in enumerate(suspects, start=1):
        assert suspect["round"] == "0" and int(suspect["rank"]) == rank
        assert suspect["text"] == texts[suspect["id"]]
        assert suspect["label_was_flipped"] == str(suspect["id"] in flipped)
