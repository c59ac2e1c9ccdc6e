"""The benchmark's peer methods as core scoring methods: DDA (debias, denoise, both) and confident learning."""

import numpy as np
import pytest
import torch
from cleanlab.filter import find_label_issues

from conftest import LABELS, tiny_classifier
from gbair.core.backend import LocalBackend
from gbair.core.config import GbairConfig
from gbair.core.confident_learning import OutOfSampleFit, out_of_sample_fit, stratified_folds
from gbair.core.influence import suspicion_scores
from test_influence import _stats
from test_recovery import _config, _recovery, _splits
from test_training import separable

# Two checkpoints (rates 0.5, 0.25), three training examples, two misclassified validation examples.
DOTS = [[[1.0, 2.0], [-4.0, 1.0], [0.5, 0.5]], [[3.0, -1.0], [2.0, 2.0], [-6.0, 0.0]]]
INITIAL_DOTS = [[[1.0, 1.0], [0.0, -1.0], [2.0, 0.0]]]
RATES = (0.5, 0.25)


def _standardise(row):
    row = np.asarray(row, dtype=float)
    return (row - row.mean()) / row.std(ddof=1)


def test_dda_debias_subtracts_the_initial_state_opposition_at_every_checkpoint():
    stats = _stats(DOTS, train_labels=[0, 1, 0], query_labels=[1, 0], rates=RATES)
    initial = _stats(INITIAL_DOTS, train_labels=[0, 1, 0], query_labels=[1, 0])
    # Per-checkpoint opposition -sum_v: c0 [-3, 3, -1], c1 [-2, -4, 6]; at the initial state [-2, 1, -2].
    debiased = [[-1, 2, 1], [0, -5, 8]]
    expected = 0.5 * np.array(debiased[0]) + 0.25 * np.array(debiased[1])
    np.testing.assert_allclose(suspicion_scores(stats, "dda-debias", initial=initial), expected)
    both = 0.5 * _standardise(debiased[0]) + 0.25 * _standardise(debiased[1])
    np.testing.assert_allclose(suspicion_scores(stats, "dda", initial=initial), both)


def test_dda_denoise_standardises_each_checkpoint_before_the_weighted_sum():
    stats = _stats(DOTS, train_labels=[0, 1, 0], query_labels=[1, 0], rates=RATES)
    expected = 0.5 * _standardise([-3, 3, -1]) + 0.25 * _standardise([-2, -4, 6])
    np.testing.assert_allclose(suspicion_scores(stats, "dda-denoise"), expected)


def test_debiasing_needs_matching_initial_statistics():
    stats = _stats(DOTS, train_labels=[0, 1, 0], query_labels=[1, 0], rates=RATES)
    with pytest.raises(ValueError, match="initial PET state"):
        suspicion_scores(stats, "dda")
    with pytest.raises(ValueError, match="one checkpoint"):
        suspicion_scores(stats, "dda-debias", initial=stats)
    with pytest.raises(ValueError, match="not scored from influence statistics"):
        suspicion_scores(stats, "confident-learning")


def test_confident_learning_ranks_cleanlab_issues_first_by_self_confidence():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    probabilities = rng.dirichlet([1.0, 1.0, 1.0], size=60)
    probabilities[np.arange(60), labels] += 2.0 * (rng.random(60) < 0.7)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    scores = OutOfSampleFit(labels, probabilities, probabilities).suspicion_scores()
    issues = find_label_issues(labels, probabilities, return_indices_ranked_by="self_confidence", n_jobs=1)
    assert 0 < len(issues) < 60
    ranking = np.argsort(-scores, kind="stable")
    np.testing.assert_array_equal(ranking[: len(issues)], issues)
    rest = ranking[len(issues):]
    self_confidence = probabilities[rest, labels[rest]]
    assert np.all(np.diff(self_confidence) >= 0)


def test_confident_learning_suggests_the_most_probable_other_label():
    fit = OutOfSampleFit(
        np.array([0, 2]), np.array([[0.5, 0.2, 0.3], [0.1, 0.2, 0.7]]), np.array([[0.5, 0.4, 0.1], [0.6, 0.1, 0.3]])
    )
    assert fit.suggested_labels([0, 1]) == [2, 1]
    assert fit.suggested_labels([0, 1], ensemble=True) == [1, 0]
    np.testing.assert_allclose(fit.ensemble_suspicion_scores(), [0.5, 0.7])


def test_stratified_folds_deal_every_class_over_every_fold():
    labels = np.array([0] * 10 + [1] * 7)
    folds = stratified_folds(labels, 3, seed=0)
    for label, size in ((0, 10), (1, 7)):
        counts = np.bincount(folds[labels == label], minlength=3)
        assert counts.sum() == size and counts.max() - counts.min() <= 1
    with pytest.raises(ValueError, match="at least 8 examples"):
        stratified_folds(labels, 8, seed=0)


def test_out_of_sample_probabilities_come_from_models_that_did_not_see_the_example(minilm_tokenizer):
    seen: list[set[str]] = []

    class Watched(LocalBackend):
        def train(self, start, subset, progress, seed=None):
            torch.testing.assert_close(start["prompt"], self.initial_state["prompt"])
            assert seed is None  # every fold model at the config's seed
            seen.append(set(subset.ids))
            return super().train(start, subset, progress, seed)

    config = GbairConfig(train={"epochs": 1, "batch_size": 6, "learning_rate": 0.05})
    backend = Watched(config, LABELS, tiny_classifier("encoder", minilm_tokenizer, dtype=torch.float32))
    train = backend.encode(separable(18, "t"))
    fit = out_of_sample_fit(backend, train, folds=3, seed=0)
    assert len(seen) == 3 and all(len(ids) == 12 for ids in seen)
    held_out = [set(train.ids) - ids for ids in seen]
    assert set().union(*held_out) == set(train.ids)
    np.testing.assert_allclose(fit.probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(fit.labels, train.labels.numpy())


@pytest.mark.parametrize(
    ("method", "action"), [("dda", "remove"), ("confident-learning", "relabel"), ("ensemble", "relabel")]
)
def test_recovery_runs_the_peer_methods(minilm_tokenizer, method, action):
    splits, flipped = _splits()
    config = _config(method=method, action=action, rounds=1)
    report = _recovery(splits, config, minilm_tokenizer).run(flipped).report
    first = report.rounds[0]
    assert report.method == method and len(first.flagged_ids) == 4
    assert first.flagged_scores == sorted(first.flagged_scores, reverse=True)
    if action == "relabel":
        given = dict(zip(splits.train.ids, splits.train.labels))
        assert all(name != splits.label_names[given[i]] for i, name in first.relabels.items())
