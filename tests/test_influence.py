"""TracIn statistics and the suspicion scores built from them."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_classifier
from gbair.core.config import TrainConfig
from gbair.core.data import TextDataset
from gbair.core.influence import (
    InfluenceStatistics,
    explain_example,
    per_example_gradients,
    query_gradients,
    suggest_labels,
    suspicion_scores,
    training_statistics,
)
from gbair.core.influence.methods import _percentiles, class_conditional_marks, opposition_and_loss
from gbair.core.model import encode
from gbair.core.training import train_classifier

WORDS = ["good", "great", "fine", "bad", "awful", "poor", "nice", "worse", "superb", "dull"]


def _dataset(prefix: str, size: int, seed: int) -> TextDataset:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(2, 7))) for _ in range(size)]
    return TextDataset(
        ids=[f"{prefix}{i}" for i in range(size)],
        texts=texts,
        labels=rng.integers(0, 2, size).tolist(),
        label_names=["negative", "positive"],
    )


@pytest.fixture
def trained(minilm_tokenizer):
    classifier = tiny_classifier("encoder", minilm_tokenizer)
    train = encode(classifier, _dataset("t", 12, seed=1))
    result = train_classifier(classifier, train, TrainConfig(epochs=2, batch_size=5, learning_rate=0.1, checkpoints_per_epoch=2))
    return classifier, train, result.checkpoints


def _gradients(classifier, encoded, checkpoint) -> torch.Tensor:
    classifier.load_pet_state(checkpoint.state)
    rows = []
    for i in range(len(encoded)):
        rows.append(per_example_gradients(classifier, next(encoded.subset([i]).batches(1)))[0][0])
    return torch.stack(rows)


def test_statistics_equal_tracin_from_explicit_gradients(trained):
    classifier, train, checkpoints = trained
    queries_set = encode(classifier, _dataset("v", 5, seed=2))
    assert len(checkpoints) == 4
    queries = query_gradients(classifier, checkpoints, queries_set, batch_size=3)
    stats = training_statistics(classifier, checkpoints, train, queries, batch_size=5)
    expected_tracin = torch.zeros(len(train), dtype=torch.float64)
    expected_self = torch.zeros(len(train), dtype=torch.float64)
    for c, checkpoint in enumerate(checkpoints):
        train_grads = _gradients(classifier, train, checkpoint)
        query_grads = _gradients(classifier, queries_set, checkpoint)
        torch.testing.assert_close(stats.dots[c], train_grads @ query_grads.T, rtol=1e-6, atol=1e-12)
        expected_tracin += checkpoint.learning_rate * train_grads @ query_grads.sum(0)
        expected_self += checkpoint.learning_rate * train_grads.pow(2).sum(1)
    np.testing.assert_allclose(suspicion_scores(stats, "tracin"), -expected_tracin.numpy(), rtol=1e-6)
    np.testing.assert_allclose(suspicion_scores(stats, "self-influence"), expected_self.numpy(), rtol=1e-6)
    classifier.load_pet_state(checkpoints[-1].state)
    batch = next(train.batches(len(train)))
    trained_logits = classifier(batch.input_ids, batch.attention_mask).logits.detach()
    torch.testing.assert_close(stats.final_logits[batch.positions], trained_logits.to(stats.final_logits.dtype), rtol=1e-5, atol=1e-6)
    given = F.one_hot(batch.labels, trained_logits.shape[1]).bool()
    for c, checkpoint in enumerate(checkpoints):
        classifier.load_pet_state(checkpoint.state)
        logits = classifier(batch.input_ids, batch.attention_mask).logits.detach()
        expected_margins = logits[given] - logits.masked_fill(given, -torch.inf).max(dim=1).values
        torch.testing.assert_close(stats.train_margins[c, batch.positions], expected_margins.to(stats.train_margins.dtype),
                                   rtol=1e-5, atol=1e-6)


def _stats(dots, train_labels, query_labels, rates=(1.0,), train_sq=None, query_sq=None, losses=None, logits=None,
           margins=None):
    """Without `logits` the trained model is indifferent: each example's suspected class is the lowest other one."""
    dots = torch.tensor(dots, dtype=torch.float64)
    num_checkpoints, num_train, num_queries = dots.shape
    num_classes = max(train_labels + query_labels) + 1
    return InfluenceStatistics(
        train_ids=[f"z{i}" for i in range(num_train)],
        train_labels=torch.tensor(train_labels),
        query_labels=torch.tensor(query_labels),
        learning_rates=torch.tensor(rates, dtype=torch.float64),
        dots=dots,
        train_sq_norms=torch.ones(num_checkpoints, num_train, dtype=torch.float64) if train_sq is None else torch.tensor(train_sq, dtype=torch.float64),
        query_sq_norms=torch.ones(num_checkpoints, num_queries, dtype=torch.float64) if query_sq is None else torch.tensor(query_sq, dtype=torch.float64),
        train_losses=torch.zeros(num_checkpoints, num_train, dtype=torch.float64) if losses is None else torch.tensor(losses, dtype=torch.float64),
        train_margins=torch.zeros(num_checkpoints, num_train, dtype=torch.float64) if margins is None else torch.tensor(margins, dtype=torch.float64),
        final_logits=torch.zeros(num_train, num_classes, dtype=torch.float64) if logits is None else torch.tensor(logits, dtype=torch.float64),
    )


def test_class_aware_tracin_ignores_errors_of_the_given_class():
    # z0 (label 1) opposes the class-0 error and supports the class-1 error: plain TracIn cancels to 0.
    dots = [[[-2.0, 2.0], [0.5, 0.5], [-1.0, 9.0], [1.0, -9.0]]]
    stats = _stats(dots, train_labels=[1, 0, 1, 0], query_labels=[0, 1])
    np.testing.assert_allclose(suspicion_scores(stats, "tracin"), [0.0, -1.0, -8.0, 8.0])
    # Opposition to other-class errors: z0 2, z2 1 (class 1); z1 -0.5, z3 9 (class 0), then standardised
    # within each given class.
    np.testing.assert_allclose(suspicion_scores(stats, "tracin-class"), _within_or_zero([2.0, -0.5, 1.0, 9.0], [1, 0, 1, 0]))


def test_learning_rates_weight_checkpoints():
    stats = _stats([[[1.0]], [[3.0]]], train_labels=[0], query_labels=[1], rates=(0.5, 0.1))
    np.testing.assert_allclose(suspicion_scores(stats, "tracin"), [-(0.5 * 1.0 + 0.1 * 3.0)])


def test_cosine_divides_by_both_norms():
    stats = _stats([[[-6.0], [-6.0]]], [0, 0], [1], train_sq=[[4.0, 36.0]], query_sq=[[9.0]])
    np.testing.assert_allclose(suspicion_scores(stats, "tracin-cos"), [1.0, 1.0 / 3.0])


def test_vote_counts_top_opponents_and_breaks_ties_by_tracin():
    dots = [[[-5.0, -1.0], [-4.0, -9.0], [3.0, 2.0], [-0.5, 1.0]]]
    stats = _stats(dots, [0, 0, 0, 0], [1, 1])
    scores = suspicion_scores(stats, "vote", vote_top_fraction=0.5)
    # top-2 opponents: error 0 -> z0, z1; error 1 -> z1, z0. z1 has the more negative tracin sum.
    assert np.floor(scores).tolist() == [2, 2, 0, 0]
    assert scores[1] > scores[0] and scores[3] > scores[2]


def test_loss_uses_the_final_checkpoint_and_random_is_seeded():
    stats = _stats([[[0.0]], [[0.0]]] , [0], [1], rates=(1.0, 1.0), losses=[[9.0], [0.25]])
    np.testing.assert_allclose(suspicion_scores(stats, "loss"), [0.25])
    wide = _stats(np.zeros((1, 50, 1)), [0] * 50, [1])
    np.testing.assert_array_equal(suspicion_scores(wide, "random", seed=3), suspicion_scores(wide, "random", seed=3))
    assert not np.array_equal(suspicion_scores(wide, "random", seed=3), suspicion_scores(wide, "random", seed=4))


def test_fused_adds_class_aware_tracin_and_self_influence_standardised_within_classes():
    stats = _stats([[[-3.0], [1.0], [0.0], [2.0]]], [0, 0, 0, 1], [1], train_sq=[[1.0, 4.0, 1.0, 7.0]])
    labels = [0, 0, 0, 1]
    class_part = _within_or_zero([3.0, -1.0, 0.0, 0.0], labels)
    self_part = _within_or_zero([1.0, 4.0, 1.0, 7.0], labels)
    np.testing.assert_allclose(suspicion_scores(stats, "fused"), class_part + self_part)


def test_opposition_and_loss_averages_percentiles_of_the_unstandardised_class_aware_sum_and_the_loss():
    # Opposition to other-class errors: z0 2, z1 -0.5, z2 1, z3 9 (no standardising within given classes).
    dots = [[[-2.0, 2.0], [0.5, 0.5], [-1.0, 9.0], [1.0, -9.0]]]
    loss = [0.1, 2.0, 0.3, 0.5]
    stats = _stats(dots, train_labels=[1, 0, 1, 0], query_labels=[0, 1], losses=[loss])
    opposition_percentile = np.array([3, 1, 2, 4]) / 4
    loss_percentile = np.array([1, 4, 2, 3]) / 4
    np.testing.assert_allclose(opposition_and_loss(stats), (opposition_percentile + loss_percentile) / 2)


def test_tied_values_take_percentiles_in_the_order_of_their_positions():
    # Large enough for torch's default sort to scatter the ties.
    values = torch.tensor([1.0, 0.0] * 5000, dtype=torch.float64)
    percentiles = _percentiles(values).numpy()
    np.testing.assert_allclose(percentiles[1::2], np.arange(1, 5001) / values.numel())
    np.testing.assert_allclose(percentiles[0::2], np.arange(5001, 10001) / values.numel())


def test_opposition_and_loss_reads_the_opposition_to_the_suspected_class_only_where_that_class_has_errors():
    # Three classes; the validation errors are of classes 0 and 2. The model suspects z0 (given 1) of being
    # a 2, z1 (given 0) of being a 1 and z2 (given 1) of being a 0. Two checkpoints.
    dots = [[[5.0, -7.0], [-8.0, -8.0], [-1.0, 3.0]]] * 2
    logits = [[0.0, 0.0, 3.0], [0.0, 2.0, 1.0], [2.0, 0.0, 1.0]]
    losses = [[0.2, 2.0, 0.3], [0.2, 0.1, 0.3]]
    margins = [[2.0, -3.0, 1.0], [2.0, 1.5, 1.0]]
    stats = _stats(dots, train_labels=[1, 0, 1], query_labels=[0, 2], rates=(1.0, 1.0), losses=losses,
                   logits=logits, margins=margins)
    # Opposition to the suspected class's errors: z0 7 (the class-2 error only), z2 1 (the class-0 error),
    # beside the final loss. z1's suspected class has none, so the strong opposition of z1 to both errors is
    # not read, and z1 ranks by its margin averaged over the checkpoints: last by the final loss, first by it.
    opposition_percentile = np.array([3, 1, 2]) / 3
    final_loss_percentile = np.array([2, 1, 3]) / 3
    expected = (opposition_percentile + final_loss_percentile) / 2
    expected[1] = 3 / 3
    np.testing.assert_allclose(opposition_and_loss(stats), expected)


def _labels(*counts: int) -> list[int]:
    return [c for c, count in enumerate(counts) for _ in range(count)]


def test_tracin_class_loss_reads_the_opposition_only_where_labels_were_taken_out_of_a_class():
    # 100 training labels, 30 of class 0; 22 validation errors, 20 of them of class 0.
    train_labels = _labels(30, 70)
    query_labels = _labels(20, 2)
    rng = np.random.default_rng(0)
    dots = -np.abs(rng.normal(size=(1, 100, 22)))
    losses = [rng.uniform(0, 1, 100)]
    margins = rng.normal(size=(2, 100))
    stats = _stats(np.concatenate([dots, dots]).tolist(), train_labels, query_labels, rates=(1.0, 1.0),
                   losses=[row.tolist() for row in losses * 2], margins=margins.tolist())
    # The trusted set holds half of class 0 (a smaller share in training) and 20 of its 50 are wrong.
    assert class_conditional_marks(stats, torch.tensor(_labels(50, 50))) == 0
    marked = suspicion_scores(stats, "tracin-class-loss", trusted_labels=torch.tensor(_labels(50, 50)))
    np.testing.assert_allclose(marked, opposition_and_loss(stats))
    # Its shares match the training labels': no mark of labels taken out of class 0, only the margin averaged
    # over the checkpoints, smallest first.
    assert class_conditional_marks(stats, torch.tensor(_labels(30, 70))) is None
    unmarked = suspicion_scores(stats, "tracin-class-loss", trusted_labels=torch.tensor(_labels(30, 70)))
    np.testing.assert_allclose(unmarked, (np.argsort(np.argsort(-margins.mean(axis=0))) + 1) / 100)
    assert not np.allclose(marked, unmarked)
    # The margins training recorded in three epochs join the two checkpoints' in one average.
    recorded = rng.normal(size=(3, 100))
    with_record = suspicion_scores(stats, "tracin-class-loss", trusted_labels=torch.tensor(_labels(30, 70)),
                                   recorded_margins=torch.tensor(recorded))
    everything = np.concatenate([margins, recorded]).mean(axis=0)
    np.testing.assert_allclose(with_record, (np.argsort(np.argsort(-everything)) + 1) / 100)
    assert not np.allclose(with_record, unmarked)
    # With the marks, the examples whose suspected class has no errors rank by that average too.
    marked_with_record = suspicion_scores(stats, "tracin-class-loss", trusted_labels=torch.tensor(_labels(50, 50)),
                                          recorded_margins=torch.tensor(recorded))
    alone = -torch.tensor(everything)
    np.testing.assert_allclose(marked_with_record, opposition_and_loss(stats, alone=alone))
    with pytest.raises(ValueError, match="labels of the trusted examples"):
        suspicion_scores(stats, "tracin-class-loss")


def _within_or_zero(values, groups):
    """A class with one member has no spread: its score is centred, not scaled."""
    values, groups = np.asarray(values, dtype=float), np.asarray(groups)
    out = np.zeros_like(values)
    for g in np.unique(groups):
        member = groups == g
        centred = values[member] - values[member].mean()
        out[member] = centred / values[member].std(ddof=1) if member.sum() > 1 else centred
    return out


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="unknown scoring method 'nope'"):
        suspicion_scores(_stats([[[0.0]]], [0], [1]), "nope")


def test_explanation_ranks_training_examples_by_tracin(trained):
    classifier, train, checkpoints = trained
    example = encode(classifier, _dataset("e", 1, seed=5))
    explanation = explain_example(classifier, checkpoints, train, example, top=3, batch_size=4)
    scores = torch.zeros(len(train), dtype=torch.float64)
    for checkpoint in checkpoints:
        scores += checkpoint.learning_rate * _gradients(classifier, train, checkpoint) @ _gradients(classifier, example, checkpoint)[0]
    order = scores.argsort()
    assert [p.example_id for p in explanation.proponents] == [train.ids[i] for i in order.flip(0)[:3] if scores[i] > 0]
    assert [o.example_id for o in explanation.opponents] == [train.ids[i] for i in order[:3] if scores[i] < 0]
    assert explanation.proponents and explanation.opponents
    assert explanation.proponents[0].score == pytest.approx(scores.max().item(), rel=1e-6)


@pytest.mark.parametrize("kind", ["encoder", "causal-lm"])
def test_relabel_suggests_the_other_label_that_most_supports_the_validation_errors(kind, minilm_tokenizer):
    labels = ["a", "b", "c", "d"]
    classifier = tiny_classifier(kind, minilm_tokenizer, labels=labels)
    data = _dataset("t", 12, seed=3)
    data = TextDataset(data.ids, data.texts, [i % 4 for i in range(12)], labels)
    train = encode(classifier, data)
    checkpoints = train_classifier(classifier, train, TrainConfig(epochs=1, batch_size=3, learning_rate=0.1)).checkpoints
    queries = query_gradients(classifier, checkpoints, train.subset([0, 5]), batch_size=2)
    suggested = suggest_labels(classifier, checkpoints, train, queries, batch_size=5)
    # The definition: sum_c eta_c g_c(x, y') . G_c, from each candidate label's own backward pass.
    totals = torch.zeros(len(train), len(labels), dtype=torch.float64)
    batch = next(train.batches(len(train)))
    for c, checkpoint in enumerate(checkpoints):
        classifier.load_pet_state(checkpoint.state)
        for label in range(len(labels)):
            output = classifier(batch.input_ids, batch.attention_mask)
            losses = F.cross_entropy(output.logits, torch.full_like(batch.labels, label), reduction="none")
            totals[:, label] += checkpoint.learning_rate * (output.per_example_gradients(losses) @ queries.summed[c]).double()
    totals[torch.arange(len(train)), train.labels] = -torch.inf
    assert suggested == totals.argmax(dim=1).tolist()
    assert all(new != old for new, old in zip(suggested, train.labels.tolist()))
    assert len(set(suggested)) > 1
