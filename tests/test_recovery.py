"""The G-BAIR round loop on a tiny backbone: what is flagged leaves (or changes in) the next round."""

import dataclasses

import pytest
import torch

from conftest import LABELS, tiny_classifier
from gbair.coordinator.messages import round_metrics
from gbair.core.backend import LocalBackend
from gbair.core.config import GbairConfig
from gbair.core.data import DataSplits, TextDataset, corrupt_labels
from gbair.core.evaluation import accuracy, paired_change_p_value
from gbair.core.recovery import Recovery
from gbair.core.recovery_state import TrainedRound
from test_training import separable


def _splits(train_size=40) -> tuple[DataSplits, list[str]]:
    train, flipped = corrupt_labels(separable(train_size, "t"), 0.25, seed=0)
    return DataSplits("toy", train, separable(20, "v"), separable(10, "x"), "csv"), flipped


def _config(**recovery) -> GbairConfig:
    return GbairConfig(
        model={"kind": "encoder", "num_virtual_tokens": 4},
        train={"epochs": 3, "batch_size": 8, "learning_rate": 0.03},
        influence={"method": recovery.pop("method", "fused")},
        # One training a round unless a test asks for more: the checks read one model's trusted-set errors.
        recovery={"rounds": 2, "budget": 4, "patience": 5, "round_trainings": 1, **recovery},
    )


def _recovery(splits, config, tokenizer, labels=LABELS) -> Recovery:
    classifier = tiny_classifier("encoder", tokenizer, dtype=torch.float32, labels=labels)
    return Recovery(splits, config, backend=LocalBackend(config, splits.label_names, classifier))


def test_remove_drops_flagged_examples_round_by_round(minilm_tokenizer):
    splits, flipped = _splits()
    outcome = _recovery(splits, _config(), minilm_tokenizer).run(flipped)
    report = outcome.report
    assert [r.round for r in report.rounds] == [0, 1, 2]
    assert [r.train_size for r in report.rounds] == [40, 36, 32]
    assert [len(r.flagged_ids) for r in report.rounds] == [4, 4, 0]
    flagged_everywhere = report.rounds[0].flagged_ids + report.rounds[1].flagged_ids
    assert len(set(flagged_everywhere)) == 8
    assert report.rounds[0].flagged_corrupted == len(set(flipped) & set(report.rounds[0].flagged_ids))
    assert report.corrupted_ids == flipped
    best = max(report.rounds, key=lambda r: (r.val_accuracy, -r.round))
    assert report.best_round == best.round
    assert len(outcome.best_train_set) == best.train_size
    assert not set(outcome.best_train_set.ids) & set(flagged_everywhere[: 4 * best.round])
    assert all(r.relabels == {} for r in report.rounds)
    assert report.rounds[0].flagged_scores == sorted(report.rounds[0].flagged_scores, reverse=True)
    # Every round keeps which trusted examples it gets wrong, and is tested against round 0 on them.
    first = report.rounds[0]
    assert first.val_change_p_value is None
    for row in report.rounds:
        assert len(row.val_wrong_ids) == row.misclassified_val == round((1 - row.val_accuracy) * 20)
    for row in report.rounds[1:]:
        assert row.val_change_p_value == paired_change_p_value(set(first.val_wrong_ids), set(row.val_wrong_ids))
    # A remove run still says which label each flagged example most likely has instead, and how sure the
    # round's model was of each class.
    given = dict(zip(splits.train.ids, splits.train.labels))
    for row in report.rounds:
        assert set(row.suggested_labels) == set(row.flagged_ids)
        assert all(name != splits.label_names[given[i]] for i, name in row.suggested_labels.items())
        assert len(row.flagged_probabilities) == len(row.flagged_ids)
        for probabilities in row.flagged_probabilities:
            assert len(probabilities) == 2 and sum(probabilities) == pytest.approx(1, abs=1e-5)


def test_relabel_flips_flagged_examples_and_keeps_the_set_size(minilm_tokenizer):
    splits, flipped = _splits()
    outcome = _recovery(splits, _config(action="relabel", rounds=1), minilm_tokenizer).run(flipped)
    first = outcome.report.rounds[0]
    assert [r.train_size for r in outcome.report.rounds] == [40, 40]
    assert set(first.relabels) == set(first.flagged_ids)
    assert first.suggested_labels == first.relabels
    given = dict(zip(splits.train.ids, splits.train.labels))
    for example_id, label_name in first.relabels.items():
        assert label_name != splits.label_names[given[example_id]]
    if outcome.report.best_round == 1:
        relabeled = dict(zip(outcome.best_train_set.ids, outcome.best_train_set.labels))
        assert all(splits.label_names[relabeled[i]] == name for i, name in first.relabels.items())


def test_patience_stops_after_rounds_without_gain(minilm_tokenizer):
    splits, flipped = _splits()
    report = _recovery(splits, _config(method="random", rounds=6, patience=1), minilm_tokenizer).run(flipped).report
    accuracies = [r.val_accuracy for r in report.rounds]
    # Every round but the last improved on all before it; the last did not (or the round budget ran out).
    assert all(accuracies[i] > max(accuracies[:i]) for i in range(1, len(accuracies) - 1))
    assert len(report.rounds) == 7 or accuracies[-1] <= max(accuracies[:-1])
    assert report.rounds[-1].flagged_ids == []


def test_several_trainings_of_a_round_choose_it_by_their_mean_and_the_first_is_scored(minilm_tokenizer):
    splits, flipped = _splits()
    once = _recovery(splits, _config(rounds=1), minilm_tokenizer).run(flipped).report
    recovery = _recovery(splits, _config(rounds=1, round_trainings=3), minilm_tokenizer)
    thrice = recovery.run(flipped).report
    assert list(recovery.other_trainings) == [1000, 2000]
    for seed, start in recovery.other_trainings.items():
        assert all(torch.equal(start[name], value) for name, value in recovery.backend.seeded_state(seed).items())
        assert not torch.equal(start["prompt"], recovery.initial_state["prompt"])
    assert all(row.val_accuracies is None and row.test_accuracies is None for row in once.rounds)
    for one, three in zip(once.rounds, thrice.rounds, strict=True):
        # The first training is the one-training run's own: the same errors, the same scores and flags.
        assert three.val_accuracies[0] == one.val_accuracy
        assert (three.val_wrong_ids, three.flagged_ids, three.flagged_scores) == (
            one.val_wrong_ids, one.flagged_ids, one.flagged_scores
        )
        assert three.test_accuracies[0] == one.test_accuracy
        assert three.test_accuracy == three.test_accuracies[three.model_training]
        assert len(three.val_accuracies) == 3
        assert three.val_accuracy == pytest.approx(sum(three.val_accuracies) / 3)
    assert thrice.best_round == max(thrice.rounds, key=lambda r: (r.val_accuracy, -r.round)).round


def test_the_other_trainings_of_a_round_are_the_trainings_their_seeds_give(minilm_tokenizer):
    splits, _ = _splits()
    config = _config(round_trainings=2)
    recovery = _recovery(splits, config, minilm_tokenizer)
    trained = recovery.train_round(recovery.start())
    backend = recovery.backend
    train = backend.encode(splits.train)
    other = backend.train(backend.seeded_state(1000), train, lambda *a: None, seed=1000)
    # The seed draws the batch order too, not only the start.
    in_the_first_order = backend.train(backend.seeded_state(1000), train, lambda *a: None)
    assert not torch.equal(in_the_first_order.final_state["prompt"], other.final_state["prompt"])
    validation = backend.encode(splits.validation)
    expected = (backend.probabilities(other.final_state, validation).argmax(dim=1) == validation.labels).float().mean()
    assert trained.val_accuracies[1] == pytest.approx(float(expected))


def test_a_rounds_model_is_its_training_most_accurate_on_the_trusted_set(minilm_tokenizer, tmp_path):
    splits, flipped = _splits()
    config = _config(rounds=0, round_trainings=3)
    # A high learning rate and two epochs make the three trainings differ on the trusted set.
    config = config.model_copy(update={"train": config.train.model_copy(update={"epochs": 2, "learning_rate": 1.0})})
    recovery = _recovery(splits, config, minilm_tokenizer)
    trained = recovery.train_round(recovery.start(flipped))
    backend = recovery.backend
    train, validation, test = (backend.encode(s) for s in (splits.train, splits.validation, splits.test))
    states = [trained.training.final_state] + [
        backend.train(start, train, lambda *a: None, seed=seed).final_state
        for seed, start in recovery.other_trainings.items()
    ]
    accuracies = [accuracy(backend.probabilities(state, validation), validation.labels) for state in states]
    assert trained.val_accuracies == pytest.approx(accuracies)
    best = accuracies.index(max(accuracies))
    assert best > 0, "these settings were chosen for a further training to win; the test checks nothing otherwise"
    assert trained.model_training == best
    assert all(torch.equal(trained.model_state[name], value) for name, value in states[best].items())
    tests = [accuracy(backend.probabilities(state, test), test.labels) for state in states]
    assert trained.test_accuracies == pytest.approx(tests) and trained.test_accuracy == pytest.approx(tests[best])
    trained.save_to(tmp_path / "round.pt")
    loaded = TrainedRound.load(tmp_path / "round.pt")
    assert (loaded.model_training, loaded.test_accuracies) == (best, trained.test_accuracies)
    assert all(torch.equal(loaded.model_state[name], value) for name, value in states[best].items())
    # The first training is still the one scored; the report names the model, and the run exports it.
    assert torch.equal(loaded.training.final_state["prompt"], states[0]["prompt"])
    outcome = recovery.run(flipped)
    assert outcome.report.rounds[0].model_training == best
    assert outcome.report.rounds[0].test_accuracy == trained.test_accuracy
    assert all(torch.equal(outcome.best_state[name], value) for name, value in states[best].items())


def test_round_zero_only_when_no_cleaning_rounds(minilm_tokenizer):
    splits, flipped = _splits()
    report = _recovery(splits, _config(rounds=0), minilm_tokenizer).run(flipped).report
    assert len(report.rounds) == 1 and report.rounds[0].flagged_ids == [] and report.best_round == 0


@pytest.mark.parametrize(("budget", "size", "count"), [(0.1, 1000, 100), (0.1, 5, 1), (25, 1000, 25), (50, 20, 19)])
def test_budget_is_a_fraction_or_a_count(budget, size, count):
    assert GbairConfig(recovery={"budget": budget}).recovery.flag_count(size) == count


def test_fractional_count_budget_is_rejected():
    with pytest.raises(ValueError, match="whole number"):
        GbairConfig(recovery={"budget": 2.5})


def test_resuming_from_saved_steps_gives_the_uninterrupted_result(minilm_tokenizer, tmp_path):
    """Each step's output goes through its saved form (state JSON, trained-round file) and a fresh
    Recovery, as after a restart; the report matches `run` apart from timings."""
    from gbair.core.recovery_state import RecoveryState

    splits, flipped = _splits()
    config = _config(method="tracin", action="relabel")
    expected = _recovery(splits, config, minilm_tokenizer).run(flipped)
    state = _recovery(splits, config, minilm_tokenizer).start(flipped)
    while not state.finished:
        recovery = _recovery(splits, config, minilm_tokenizer)
        path = tmp_path / f"round-{state.next_round}.pt"
        recovery.train_round(state).save_to(path)
        state = recovery.finish_round(RecoveryState.model_validate_json(state.model_dump_json()), TrainedRound.load(path))
    best = TrainedRound.load(tmp_path / f"round-{state.best_round}.pt").model_state
    resumed = recovery.outcome(state, best)
    drop = {"rounds": {"__all__": {"timings"}}}
    # Probabilities included: a fresh Recovery scores with the round's trained model, not its initial prompt.
    assert resumed.report.model_dump(exclude=drop) == expected.report.model_dump(exclude=drop)
    assert any(r.flagged_probabilities for r in resumed.report.rounds)
    assert resumed.best_train_set.ids == expected.best_train_set.ids
    assert resumed.best_train_set.labels == expected.best_train_set.labels
    assert all(torch.equal(resumed.best_state[k], expected.best_state[k]) for k in expected.best_state)


def test_states_saved_before_suggestions_and_probabilities_still_load():
    from gbair.core.recovery_state import RecoveryState

    old_round = {
        "round": 0, "train_size": 4, "val_accuracy": 0.5, "test_accuracy": None, "misclassified_val": 1,
        "flagged_ids": ["a"], "flagged_scores": [1.0], "relabels": {"a": "pos"},
        "timings": {"train_s": 1.0, "influence_s": 1.0, "epochs": 1, "checkpoints": 1},
    }
    (report,) = RecoveryState.model_validate({"rounds": [old_round]}).rounds
    assert report.suggested_labels == {} and report.flagged_probabilities == []
    assert report.val_wrong_ids is None and report.val_change_p_value is None


def test_the_paired_test_counts_only_the_examples_one_round_alone_gets_wrong():
    assert paired_change_p_value({"a", "b"}, {"a", "b"}) == 1.0
    # 10 fixed, none broken: two-sided, 2 * 0.5 ** 10.
    assert paired_change_p_value({f"x{i}" for i in range(10)} | {"a"}, {"a"}) == pytest.approx(2 * 0.5**10)
    # Three fixed and three broken cancel, however many both get wrong.
    assert paired_change_p_value({"a", "b", "c", "s"}, {"d", "e", "f", "s"}) == 1.0
    assert paired_change_p_value(set(), {"a"}) == 1.0


def test_wrong_labels_count_against_the_label_in_force():
    from gbair.core.recovery_state import RecoveryState

    given = TextDataset(["a", "b", "c", "d"], ["w"] * 4, [0, 0, 1, 1], ["neg", "pos"])
    # a and c were corrupted (truly pos and neg); a was relabelled back to its true label, d (clean) away from it.
    state = RecoveryState(corrupted_ids=["a", "c"], true_labels={"a": "pos", "c": "neg"})
    in_force = given.relabeled({"a": 1, "d": 0})
    assert state.wrong_labels(given, in_force, ["a", "b", "c", "d"]) == 2
    assert state.wrong_labels(given, in_force, ["a", "b"]) == 0
    assert state.wrong_labels(given, given, ["a", "c", "d"]) == 2


def test_relabelled_examples_are_not_flagged_again_and_hits_count_the_label_in_force(minilm_tokenizer):
    splits, flipped = _splits()
    # `random` gives every round the same scores (same seed, same set size), so without the rule round 1
    # would flag round 0's examples again and flip them back.
    report = _recovery(splits, _config(method="random", action="relabel", rounds=2), minilm_tokenizer).run(flipped).report
    flagged = [i for r in report.rounds for i in r.flagged_ids]
    assert len(report.rounds) == 3 and len(flagged) == 8 and len(set(flagged)) == 8
    true = {i: splits.label_names[y] for i, y in zip(splits.train.ids, splits.train.labels)} | report.true_labels
    for row in report.rounds[:-1]:
        given = dict(zip(splits.train.ids, splits.train.labels))
        assert row.flagged_corrupted == sum(splits.label_names[given[i]] != true[i] for i in row.flagged_ids)


def test_true_labels_of_corrupted_ids(minilm_tokenizer):
    splits, flipped = _splits()
    recovery = _recovery(splits, _config(), minilm_tokenizer)
    given = dict(zip(splits.train.ids, splits.train.labels))
    assert recovery.start(flipped).true_labels == {i: splits.label_names[1 - given[i]] for i in flipped}
    with pytest.raises(ValueError, match="no true label"):
        recovery.start(flipped, {flipped[0]: "pos"})
    three = dataclasses.replace(splits, train=dataclasses.replace(splits.train, label_names=["a", "b", "c"]))
    with pytest.raises(ValueError, match="more than two classes"):
        _recovery(three, _config(), minilm_tokenizer, labels=three.label_names).start(flipped)


def test_a_split_trusted_set_scores_with_one_part_and_selects_with_the_other(minilm_tokenizer):
    from gbair.core.evaluation import accuracy

    splits, flipped = _splits()
    recovery = _recovery(splits, _config(selection_fraction=0.25), minilm_tokenizer)
    scoring, selection = recovery.scoring_positions, recovery.selection_positions
    assert len(selection) == 5 and sorted(scoring + selection) == list(range(20))
    trained = recovery.train_round(recovery.start(flipped))
    probabilities = recovery.backend.probabilities(trained.training.final_state, recovery.validation)
    wrong = (probabilities.argmax(dim=1) != recovery.validation.labels).nonzero().flatten().tolist()
    assert trained.errors == [p for p in wrong if p in scoring]
    assert trained.val_wrong_ids == [recovery.validation.ids[p] for p in wrong if p in selection]
    assert trained.val_accuracy == accuracy(probabilities[selection], recovery.validation.labels[selection])
    expected_loss = torch.nn.functional.nll_loss(probabilities[selection].double().log(), recovery.validation.labels[selection])
    assert trained.val_loss == pytest.approx(expected_loss.item())
    whole = _recovery(splits, _config(), minilm_tokenizer)
    assert whole.scoring_positions == whole.selection_positions == list(range(20))
    with pytest.raises(ValueError, match="empty part"):
        _recovery(splits, _config(selection_fraction=0.01), minilm_tokenizer)


def _three_classes(size: int, prefix: str) -> TextDataset:
    words = [["good", "great", "superb"], ["bad", "awful", "poor"], ["table", "chair", "door"]]
    texts = [" ".join(words[i % 3][(i + k) % 3] for k in range(1 + i % 2)) for i in range(size)]
    return TextDataset([f"{prefix}{i}" for i in range(size)], texts, [i % 3 for i in range(size)], ["pos", "neg", "thing"])


@pytest.mark.parametrize(("method", "by_model"), [("tracin-class-loss", True), ("tracin", False)])
def test_the_default_relabels_to_the_models_most_probable_other_class(minilm_tokenizer, method, by_model):
    train = _three_classes(45, "t")
    # Every fifth example moves to the next class.
    flipped = train.ids[::5]
    moved = [(y + 1) % 3 if i % 5 == 0 else y for i, y in enumerate(train.labels)]
    noisy = dataclasses.replace(train, labels=moved)
    splits = DataSplits("three", noisy, _three_classes(15, "v"), None, "csv")
    config = _config(method=method, action="relabel", rounds=1)
    true = {i: train.label_names[train.labels[k]] for k, i in enumerate(train.ids) if i in flipped}
    report = _recovery(splits, config, minilm_tokenizer, labels=train.label_names).run(flipped, true_labels=true).report
    first = report.rounds[0]
    given = dict(zip(noisy.ids, noisy.labels))
    by_probabilities = {}
    for example_id, probabilities in zip(first.flagged_ids, first.flagged_probabilities):
        others = [p if k != given[example_id] else -1.0 for k, p in enumerate(probabilities)]
        by_probabilities[example_id] = train.label_names[others.index(max(others))]
    assert set(first.relabels) == set(first.flagged_ids)
    assert (first.relabels == by_probabilities) == by_model


@pytest.mark.parametrize(("method", "noise", "named"), [
    ("tracin-class-loss", "class-conditional", "positive"),
    ("tracin-class-loss", "uniform", None),
    ("loss", "class-conditional", None),  # a method that does not read the marks names no class
])
def test_a_round_names_the_class_whose_labels_look_taken_out_where_the_method_reads_it(
    minilm_tokenizer, method, noise, named
):
    if noise == "uniform":
        splits, flipped = _splits(60)
    else:
        # Most positive labels turned negative: the training labels hold far fewer positives than the
        # trusted set, and the model trained on them misses the trusted positives.
        train, flipped = corrupt_labels(separable(60, "t"), 0.7, seed=0, flips={"positive": "negative"})
        splits = DataSplits("toy", train, separable(40, "v"), None, "csv")
    report = _recovery(splits, _config(method=method, rounds=1), minilm_tokenizer).run(flipped).report
    first = report.rounds[0]
    assert first.class_short_of_labels == named
    assert round_metrics(first).HasField("class_short_of_labels") == (named is not None)
