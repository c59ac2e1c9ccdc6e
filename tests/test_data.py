"""Loading, corrupting and writing labeled text data."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import platformdirs
import pytest

from gbair.core.data.annotations import disputed_ids, majority_label, unanimous_label
from gbair.named_sets.catalog import CATALOG
from gbair.named_sets.locations import BUNDLED_DIR, locate
from gbair.core.data import (
    ColumnNames,
    DataError,
    TextDataset,
    corrupt_labels,
    load_splits,
    write_dataset,
)

NAMED_SETS = ["diasafety", "sst2", "olid", "convabuse", "banking77"]
BUNDLED_SETS = [name for name, named in CATALOG.items() if named.bundled]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(rows)
    return path


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def labeled_rows(count: int, labels: tuple[str, ...] = ("neg", "pos")) -> list[list[str]]:
    return [["text", "label"]] + [[f"text {i}", labels[i % len(labels)]] for i in range(count)]


def write_diasafety(directory: Path, train: list[dict], val: list[dict], test: list[dict]) -> Path:
    (directory / "diasafety").mkdir()
    for name, records in {"train": train, "val": val, "test": test}.items():
        (directory / "diasafety" / f"{name}.json").write_text(json.dumps(records), encoding="utf-8")
    return directory


def dialogue(label: str) -> dict[str, str]:
    return {"context": "hello", "response": "hi", "category": "Offending User", "label": label}


def assert_data_error(
    caught: pytest.ExceptionInfo, path: Path | str, row: int | None, *phrases: str
) -> None:
    error = caught.value
    assert error.path == str(path)
    assert error.row == row
    message = str(error)
    assert str(path) in message
    if row is not None:
        assert f"row {row}" in message
    for phrase in phrases:
        assert phrase in message


def named_set_dir(request: pytest.FixtureRequest, name: str) -> Path | None:
    """None for a bundled set, found without help; for SST-2 and OLID the `data_dir` fixture, which
    skips the test where they are absent."""
    return None if name in BUNDLED_SETS else request.getfixturevalue("data_dir")


def as_examples(dataset: TextDataset) -> list[tuple[str, str | None, str]]:
    pairs = dataset.text_pairs or [None] * len(dataset)
    names = [dataset.label_names[label] for label in dataset.labels]
    return list(zip(dataset.texts, pairs, names))


# --- named sets ----------------------------------------------------------------------------------


@pytest.fixture
def only_bundled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No GBAIR_DATA_DIR and an empty per-user data folder: what a fresh install sees."""
    monkeypatch.delenv("GBAIR_DATA_DIR", raising=False)
    monkeypatch.setattr(platformdirs, "user_data_path", lambda app: tmp_path / "user-data" / app)


@pytest.mark.parametrize("name", BUNDLED_SETS)
def test_bundled_sets_are_the_pinned_files(only_bundled: None, name: str) -> None:
    origin, folder = locate(CATALOG[name])
    assert origin == "bundled"
    for file in CATALOG[name].files.values():
        stored = folder / f"{file.name}.gz"
        assert hashlib.sha256(gzip.decompress(stored.read_bytes())).hexdigest() == file.sha256
    assert (folder / "LICENSE").is_file() and (folder / "README.md").is_file()


def test_the_package_ships_exactly_the_sets_whose_license_allows_it() -> None:
    shipped = sorted(path.name for path in BUNDLED_DIR.iterdir() if path.is_dir())
    assert shipped == sorted(BUNDLED_SETS) == ["banking77", "convabuse", "diasafety"]


def test_named_sets_are_looked_up_in_order(
    only_bundled: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    named = CATALOG["diasafety"]
    for root in ("given", "configured", "user-data/gbair/datasets"):
        folder = tmp_path / root / "diasafety"
        folder.mkdir(parents=True)
        for file in named.files.values():
            (folder / f"{file.name}.gz").touch()
    monkeypatch.setenv("GBAIR_DATA_DIR", str(tmp_path / "configured"))
    assert locate(named, tmp_path / "given") == ("--data-dir", tmp_path / "given" / "diasafety")
    assert locate(named) == ("GBAIR_DATA_DIR", tmp_path / "configured" / "diasafety")
    monkeypatch.delenv("GBAIR_DATA_DIR")
    user = tmp_path / "user-data" / "gbair" / "datasets" / "diasafety"
    assert locate(named, tmp_path / "elsewhere") == ("user data folder", user)
    (user / "test.json.gz").unlink()
    assert locate(named)[0] == "bundled"


def test_diasafety_pairs_context_with_response() -> None:
    splits = load_splits("diasafety", train_size=30, val_size=10)
    assert splits.format == "diasafety"
    assert splits.label_names == ["Safe", "Unsafe"]
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (30, 10, 1095)
    for dataset in (splits.train, splits.validation, splits.test):
        assert dataset.text_pairs is not None
        for text, pair, label, record in zip(
            dataset.texts, dataset.text_pairs, dataset.labels, dataset.records
        ):
            assert (text, pair) == (record["context"], record["response"])
            assert dataset.label_names[label] == record["label"]
    assert splits.train.ids[0].startswith("train-") and splits.test.ids[0] == "test-000000"


def test_sst2_names_labels_and_keeps_raw_ones(data_dir: Path) -> None:
    splits = load_splits("sst2", data_dir=data_dir, train_size=30, val_size=10)
    assert splits.format == "sst2"
    assert splits.label_names == ["negative", "positive"]
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (30, 10, 1821)
    assert splits.train.text_pairs is None
    for label, record in zip(splits.train.labels, splits.train.records):
        assert record["label"] == str(label)


def test_olid_uses_subtask_a_and_file_ids(data_dir: Path) -> None:
    splits = load_splits("olid", data_dir=data_dir, train_size=40, val_size=20)
    assert splits.format == "olid"
    assert splits.label_names == ["NOT", "OFF"]
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (40, 20, 860)
    assert splits.test.ids[:2] == ["15923", "27014"]
    assert [splits.label_names[y] for y in splits.test.labels[:2]] == ["OFF", "NOT"]
    for dataset in (splits.train, splits.test):
        assert all(record["id"] == i for i, record in zip(dataset.ids, dataset.records))


def test_olid_validation_is_carved_apart_from_training_and_ignores_train_size(
    data_dir: Path,
) -> None:
    small = load_splits("olid", data_dir=data_dir, train_size=50, val_size=30, seed=1)
    large = load_splits("olid", data_dir=data_dir, train_size=500, val_size=30, seed=1)
    assert small.validation.ids == large.validation.ids
    assert not set(large.train.ids) & set(large.validation.ids)
    assert len(set(large.train.ids)) == 500


@pytest.mark.parametrize("name", NAMED_SETS)
def test_ids_name_the_same_example_whatever_the_subsample(
    request: pytest.FixtureRequest, name: str
) -> None:
    data_dir = named_set_dir(request, name)
    full = load_splits(name, data_dir=data_dir, seed=5)
    # BANKING77's 77 classes all need a training example in the sample.
    size = 2000 if name == "banking77" else 40
    sample = load_splits(name, data_dir=data_dir, train_size=size, seed=5)
    text_of = dict(zip(full.train.ids, full.train.texts))
    assert [text_of[i] for i in sample.train.ids] == sample.train.texts
    assert sample.validation.ids == full.validation.ids


def test_subsamples_are_seeded() -> None:
    def train_ids(seed: int) -> list[str]:
        return load_splits("diasafety", train_size=20, val_size=5, seed=seed).train.ids

    assert train_ids(3) == train_ids(3)
    assert train_ids(3) != train_ids(4)


def test_convabuse_classifies_the_user_turn_by_annotator_vote() -> None:
    splits = load_splits("convabuse")
    assert splits.label_names == ["not_abusive", "abusive"]
    # Training keeps every row with a majority (86 ties dropped); validation and test only the unanimous.
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (2415, 640, 663)
    assert splits.train.ids[0] == "278.0"
    record = splits.train.records[0]
    assert (splits.train.texts[0], splits.train.text_pairs[0]) == (record["user"], record["agent"])
    assert disputed_ids(splits.validation) == disputed_ids(splits.test) == []
    disputed = set(disputed_ids(splits.train))
    assert 0.15 < len(disputed) / len(splits.train) < 0.25
    # The file's sixth example: two of three annotators found it not abusive.
    assert splits.train.ids[5] == "1876.0" and "1876.0" in disputed
    assert splits.train.label_names[splits.train.labels[5]] == "not_abusive"
    assert "278.0" not in disputed


def test_convabuse_annotator_votes() -> None:
    def answer(value: str) -> dict[str, str]:
        return {f"A_is_abuse.{v}": ("1" if v == value else "0") for v in ["1", "0", "-1", "-2", "-3"]}

    def row(example_id: str, *answers: str) -> dict[str, str]:
        cells = {"example_id": example_id, "user": "you are dumb", "agent": "hi"}
        for number, value in enumerate(answers, start=1):
            cells.update({k.replace("A_", f"Annotator{number}_"): v for k, v in answer(value).items()})
        return cells

    rows = [
        row("abusive-2-1", "-1", "-3", "1"),
        row("not-1-0", "1", "0"),
        row("tie", "-2", "1"),
        row("all-ambiguous", "0", "0"),
        row("unanimous", "-1", "-2"),
    ]
    # An annotator who answered twice, differently, counts as ambiguous.
    repeat = row("repeat", "1", "1")
    repeat.update({f"Annotator2_is_abuse.{v}": "0, 0" for v in ["0", "-2", "-3"]})
    repeat.update({"Annotator2_is_abuse.1": "1, 0", "Annotator2_is_abuse.-1": "0, 1"})
    rows.append(repeat)

    assert [majority_label(r) for r in rows] == [
        "abusive", "not_abusive", None, None, "abusive", "not_abusive"
    ]
    assert [unanimous_label(r) for r in rows] == [None, None, None, None, "abusive", None]


def test_banking77_has_77_intents_in_the_categories_files_order() -> None:
    splits = load_splits("banking77", val_size=770, seed=0)
    assert len(splits.label_names) == 77
    assert splits.label_names[:3] == ["card_arrival", "card_linking", "exchange_rate"]
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (10003 - 770, 770, 3080)
    assert not set(splits.train.ids) & set(splits.validation.ids)
    assert splits.test.texts[0] == splits.test.records[0]["text"]
    assert splits.label_names[splits.test.labels[0]] == splits.test.records[0]["category"]


def test_sizes_beyond_the_data_are_refused() -> None:
    with pytest.raises(ValueError, match="train_size=10000"):
        load_splits("diasafety", train_size=10000)


# --- user files ----------------------------------------------------------------------------------


def test_csv_files_with_pairs_validation_and_test(tmp_path: Path) -> None:
    header = ["premise", "hypothesis", "label"]
    train = write_csv(
        tmp_path / "train.csv", [header, ["a", "b", "yes"], ["c", "", "no"], ["e", "f", "yes"]]
    )
    val = write_csv(tmp_path / "val.csv", [header, ["g", "h", "no"]])
    test = write_csv(tmp_path / "test.csv", [header, ["i", "j", "yes"]])
    splits = load_splits(
        str(train),
        validation_path=val,
        test_path=test,
        columns=ColumnNames(text="premise", text_pair="hypothesis"),
    )
    assert (splits.name, splits.format) == ("train", "csv")
    assert splits.label_names == ["no", "yes"]
    assert splits.train.ids == ["train-000000", "train-000001", "train-000002"]
    assert as_examples(splits.train) == [("a", "b", "yes"), ("c", "", "no"), ("e", "f", "yes")]
    assert as_examples(splits.validation) == [("g", "h", "no")]
    assert splits.test is not None and splits.test.ids == ["test-000000"]
    assert splits.train.records[0] == {"premise": "a", "hypothesis": "b", "label": "yes"}


def test_jsonl_files_with_custom_columns(tmp_path: Path) -> None:
    records = [{"uid": f"u{i}", "body": f"text {i}", "stars": i % 3} for i in range(12)]
    train = write_jsonl(tmp_path / "reviews.jsonl", records)
    splits = load_splits(
        str(train), val_size=3, columns=ColumnNames(text="body", label="stars", id="uid")
    )
    assert (splits.name, splits.format, splits.test) == ("reviews", "jsonl", None)
    assert splits.label_names == ["0", "1", "2"]
    assert splits.train.label_column == "stars"
    text_of = {record["uid"]: record["body"] for record in records}
    for dataset in (splits.train, splits.validation):
        assert [text_of[i] for i in dataset.ids] == dataset.texts


def test_an_id_column_is_used_when_present(tmp_path: Path) -> None:
    rows = [["id", "text", "label"], ["b7", "x", "0"], ["a3", "y", "1"], ["c1", "z", "1"]]
    splits = load_splits(str(write_csv(tmp_path / "t.csv", rows)), test_path=tmp_path / "t.csv")
    assert splits.test is not None and splits.test.ids == ["b7", "a3", "c1"]


def test_user_validation_is_carved_apart_from_training(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", labeled_rows(40))
    small = load_splits(str(train), train_size=10, val_size=8, seed=2)
    large = load_splits(str(train), train_size=25, val_size=8, seed=2)
    assert small.validation.ids == large.validation.ids
    assert len(large.validation) == 8 and len(large.train) == 25
    assert not set(large.train.ids) & set(large.validation.ids)
    assert len(load_splits(str(train)).validation) == 4


# --- corruption ----------------------------------------------------------------------------------


def three_class_dataset(size: int) -> TextDataset:
    return TextDataset(
        ids=[f"e{i}" for i in range(size)],
        texts=[f"text {i}" for i in range(size)],
        labels=[i % 3 for i in range(size)],
        label_names=["a", "b", "c"],
    )


def test_corruption_flips_exactly_the_fraction_to_other_classes() -> None:
    clean = three_class_dataset(200)
    noisy, flipped = corrupt_labels(clean, 0.15, seed=7)
    assert len(flipped) == 30 and len(set(flipped)) == 30
    assert flipped == [i for i in clean.ids if i in set(flipped)]
    changed = [i for i, old, new in zip(clean.ids, clean.labels, noisy.labels) if old != new]
    assert changed == flipped
    assert clean.labels == [i % 3 for i in range(200)]
    shifts = {(new - old) % 3 for old, new in zip(clean.labels, noisy.labels) if old != new}
    assert shifts == {1, 2}


def test_corruption_is_reproducible_by_seed() -> None:
    clean = three_class_dataset(100)
    assert corrupt_labels(clean, 0.2, seed=1) == corrupt_labels(clean, 0.2, seed=1)
    assert corrupt_labels(clean, 0.2, seed=1)[1] != corrupt_labels(clean, 0.2, seed=2)[1]


def test_corruption_of_nothing_changes_nothing() -> None:
    clean = three_class_dataset(10)
    assert corrupt_labels(clean, 0.0, seed=0) == (clean, [])


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_corruption_fraction_must_be_below_one(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        corrupt_labels(three_class_dataset(10), fraction, seed=0)


# --- writing -------------------------------------------------------------------------------------


def cleaned(dataset: TextDataset) -> TextDataset:
    """A relabeled, shortened copy, as a cleaning step would produce."""
    noisy, _ = corrupt_labels(dataset, 0.3, seed=11)
    return noisy.without_ids(noisy.ids[:2])


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("diasafety", {"train": "train.json", "validation": "val.json", "test": "test.json"}),
        (
            "sst2",
            {
                "train": "stsa.binary.train",
                "validation": "stsa.binary.dev",
                "test": "stsa.binary.test",
            },
        ),
    ],
)
def test_named_sets_round_trip(
    request: pytest.FixtureRequest, tmp_path: Path, name: str, files: dict[str, str]
) -> None:
    original = load_splits(name, data_dir=named_set_dir(request, name), train_size=25, val_size=10)
    written = {
        "train": cleaned(original.train),
        "validation": original.validation,
        "test": original.test,
    }
    for split, dataset in written.items():
        write_dataset(dataset, original.format, tmp_path / name / files[split])
    reloaded = load_splits(name, data_dir=tmp_path)
    for split, dataset in written.items():
        assert as_examples(getattr(reloaded, split)) == as_examples(dataset)
        assert [record.keys() for record in getattr(reloaded, split).records] == [
            record.keys() for record in dataset.records
        ]


def test_olid_round_trip(data_dir: Path, tmp_path: Path) -> None:
    original = load_splits("olid", data_dir=data_dir, train_size=30, val_size=10)
    train = cleaned(original.train)
    (tmp_path / "olid").mkdir()
    assert (
        write_dataset(train, "olid", tmp_path / "olid")
        == tmp_path / "olid" / "olid-training-v1.0.tsv"
    )
    for test_file in ("testset-levela.tsv", "labels-levela.csv"):
        (tmp_path / "olid" / test_file).symlink_to(data_dir / "olid" / test_file)
    reloaded = load_splits("olid", data_dir=tmp_path, val_size=5)
    example_of = dict(zip(train.ids, as_examples(train)))
    for dataset in (reloaded.train, reloaded.validation):
        assert [example_of[i] for i in dataset.ids] == as_examples(dataset)
    assert len(reloaded.train) + len(reloaded.validation) == len(train)
    written = (tmp_path / "olid" / "olid-training-v1.0.tsv").read_bytes()
    assert written.startswith(b"id\ttweet\tsubtask_a\tsubtask_b\tsubtask_c\r\n")


@pytest.mark.parametrize("extension", ["csv", "jsonl"])
def test_user_files_round_trip(tmp_path: Path, extension: str) -> None:
    records = [
        {"id": f"r{i}", "review": f'said "{i}", then\nleft', "score": ["bad", "good"][i % 2]}
        for i in range(20)
    ]
    source = tmp_path / f"in.{extension}"
    if extension == "csv":
        write_csv(source, [list(records[0])] + [list(record.values()) for record in records])
    else:
        write_jsonl(source, records)
    columns = ColumnNames(text="review", label="score")
    original = load_splits(str(source), val_size=4, columns=columns)
    train = cleaned(original.train)
    target = write_dataset(train, original.format, tmp_path / f"out.{extension}")
    reloaded = load_splits(str(target), val_size=1, columns=columns)
    example_of = dict(zip(train.ids, as_examples(train)))
    for dataset in (reloaded.train, reloaded.validation):
        assert [example_of[i] for i in dataset.ids] == as_examples(dataset)
    assert len(reloaded.train) + len(reloaded.validation) == len(train)


def test_writing_into_a_directory_uses_the_formats_training_file_name(tmp_path: Path) -> None:
    dataset = load_splits(str(write_csv(tmp_path / "in.csv", labeled_rows(6))), val_size=1).train
    (tmp_path / "out").mkdir()
    assert write_dataset(dataset, "jsonl", tmp_path / "out") == tmp_path / "out" / "train.jsonl"
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        write_dataset(dataset, "xml", tmp_path / "out")


# --- bad input -----------------------------------------------------------------------------------


def test_missing_column(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", [["text", "category"], ["a", "x"]])
    with pytest.raises(DataError) as caught:
        load_splits(str(train))
    assert_data_error(caught, train, 2, "missing column 'label'", "columns present: text, category")


def test_a_data_error_survives_pickling_whole(tmp_path: Path) -> None:
    # How a worker process (the benchmarks' pool) sends it back; unpickling used to fail on __init__'s arguments.
    train = write_csv(tmp_path / "train.csv", [["text", "category"], ["a", "x"]])
    with pytest.raises(DataError) as caught:
        load_splits(str(train))
    sent_back = pickle.loads(pickle.dumps(caught.value))
    assert type(sent_back) is DataError
    assert (sent_back.path, sent_back.row, sent_back.problem, str(sent_back)) == (
        caught.value.path, caught.value.row, caught.value.problem, str(caught.value))


def test_missing_column_in_a_json_list_names_the_element(tmp_path: Path) -> None:
    write_diasafety(tmp_path, [dialogue("Safe"), {"context": "x", "label": "Safe"}], [], [])
    with pytest.raises(DataError) as caught:
        load_splits("diasafety", data_dir=tmp_path)
    assert_data_error(caught, tmp_path / "diasafety" / "train.json", 2, "missing column 'response'")


def test_empty_text_is_reported_at_its_line(tmp_path: Path) -> None:
    rows = [["text", "label"], ["two\nlines", "x"], ["  ", "y"]]
    train = write_csv(tmp_path / "train.csv", rows)
    with pytest.raises(DataError) as caught:
        load_splits(str(train))
    assert_data_error(caught, train, 4, "empty text in column 'text'")


@pytest.mark.parametrize("split", ["validation_path", "test_path"])
def test_evaluation_label_unseen_in_training(tmp_path: Path, split: str) -> None:
    train = write_csv(tmp_path / "train.csv", labeled_rows(4))
    other = write_csv(tmp_path / "other.csv", [["text", "label"], ["a", "pos"], ["b", "maybe"]])
    with pytest.raises(DataError) as caught:
        load_splits(str(train), **{split: other})
    assert_data_error(
        caught, other, 3, "unknown label 'maybe'", "the training data has labels neg, pos"
    )


def test_named_set_label_outside_its_label_set(tmp_path: Path) -> None:
    train = [dialogue("Safe"), dialogue("Unsafe")]
    write_diasafety(tmp_path, train, train, [dialogue("Safe"), dialogue("Maybe")])
    with pytest.raises(DataError) as caught:
        load_splits("diasafety", data_dir=tmp_path)
    assert_data_error(
        caught, tmp_path / "diasafety" / "test.json", 2, "unknown label 'Maybe'", "Safe, Unsafe"
    )


def test_duplicate_ids(tmp_path: Path) -> None:
    rows = [["id", "text", "label"], ["7", "a", "x"], ["8", "b", "y"], ["7", "c", "y"]]
    train = write_csv(tmp_path / "train.csv", rows)
    with pytest.raises(DataError) as caught:
        load_splits(str(train))
    assert_data_error(caught, train, 4, "duplicate id '7' (first at row 2)")


def test_undecodable_bytes(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_bytes(b"text,label\r\nfine,a\r\nbad \xff byte,b\r\n")
    with pytest.raises(DataError) as caught:
        load_splits(str(train))
    assert_data_error(caught, train, 3, "not valid UTF-8")


def test_declared_class_without_training_example(tmp_path: Path) -> None:
    write_diasafety(
        tmp_path, [dialogue("Safe"), dialogue("Safe")], [dialogue("Unsafe")], [dialogue("Safe")]
    )
    with pytest.raises(DataError) as caught:
        load_splits("diasafety", data_dir=tmp_path)
    assert_data_error(
        caught,
        tmp_path / "diasafety" / "train.json",
        None,
        "class 'Unsafe' has no training example",
    )


def test_class_lost_by_subsampling(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", labeled_rows(30) + [["rare text", "rare"]])
    with pytest.raises(DataError) as caught:
        load_splits(str(train), train_size=5, val_size=3)
    assert_data_error(
        caught, train, None, "class 'rare' has no training example among the 5 sampled"
    )


def test_single_training_class(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", labeled_rows(5, labels=("only",)))
    with pytest.raises(DataError) as caught:
        load_splits(str(train))
    assert_data_error(caught, train, None, "only one class ('only')", "at least 2")


def test_unknown_named_set() -> None:
    with pytest.raises(DataError) as caught:
        load_splits("imdb")
    assert_data_error(
        caught, "imdb", None, "unknown data set", "diasafety, sst2, olid, convabuse, banking77"
    )


def test_a_named_set_found_nowhere_says_how_to_fetch_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GBAIR_DATA_DIR", str(tmp_path / "configured"))
    monkeypatch.setattr(platformdirs, "user_data_path", lambda app: tmp_path / "user" / app)
    # A folder missing one of the set's files does not hold the set.
    (tmp_path / "given" / "sst2").mkdir(parents=True)
    (tmp_path / "given" / "sst2" / "stsa.binary.train").write_text("1 good\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_splits("sst2", data_dir=tmp_path / "given")
    assert_data_error(caught, "sst2", None, "run 'gbair data fetch sst2'", "--data-dir")
    message = str(caught.value)
    assert "\n" not in message
    for folder in ("given", "configured", "user"):
        assert str(tmp_path / folder) in message


def test_missing_user_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_splits(str(tmp_path / "absent.jsonl"))
    assert_data_error(caught, tmp_path / "absent.jsonl", None, "file not found")


def test_unsupported_extension(tmp_path: Path) -> None:
    train = tmp_path / "train.txt"
    train.write_text("text,label\na,b\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_splits(str(train))
    assert_data_error(caught, train, None, "unsupported file extension '.txt'")


@pytest.mark.parametrize(
    ("content", "problem"), [(b"", "empty file"), (b"text,label\r\n", "no examples")]
)
def test_empty_file(tmp_path: Path, content: bytes, problem: str) -> None:
    train = tmp_path / "train.csv"
    train.write_bytes(content)
    with pytest.raises(DataError) as caught:
        load_splits(str(train))
    assert_data_error(caught, train, None, problem)


def test_malformed_json_line(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "a", "label": "x"}\n{"text": "b", \n', encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_splits(str(train))
    assert_data_error(caught, train, 2, "malformed JSON line")


def test_csv_row_with_the_wrong_number_of_fields(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", [["text", "label"], ["a", "x"], ["b", "y", "extra"]])
    with pytest.raises(DataError) as caught:
        load_splits(str(train))
    assert_data_error(caught, train, 3, "3 fields, but the header has 2")


def test_user_file_options_do_not_apply_to_named_sets() -> None:
    with pytest.raises(ValueError, match="user files"):
        load_splits("sst2", columns=ColumnNames())
