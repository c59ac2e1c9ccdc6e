"""On real data with the real bundled MiniLM, round 0's suspicion ranking finds flipped labels far more
often than chance. A regression here means the method, not a unit, broke."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from gbair.core.config import GbairConfig
from gbair.core.data import corrupt_labels, load_splits
from gbair.core.evaluation import predict_probabilities
from gbair.core.influence import query_gradients, suspicion_scores, training_statistics
from gbair.core.model import PetClassifier, encode
from gbair.core.training import train_classifier
from gbair.core.training_dynamics import recorded_margins

FLIPPED = 0.2


@pytest.fixture(scope="module")
def round_zero(data_dir):
    config = GbairConfig()
    splits = load_splits("sst2", data_dir=data_dir, train_size=400, val_size=200, seed=0)
    train_set, flipped = corrupt_labels(splits.train, FLIPPED, seed=0)
    classifier = PetClassifier.build(config.model, splits.label_names, seed=0)
    train = encode(classifier, train_set)
    validation = encode(classifier, splits.validation)
    training = train_classifier(classifier, train, config.train)
    checkpoints = training.checkpoints
    errors = (predict_probabilities(classifier, validation).argmax(1) != validation.labels).nonzero().flatten()
    queries = query_gradients(classifier, checkpoints, validation.subset(errors.tolist()), batch_size=64)
    stats = training_statistics(classifier, checkpoints, train, queries, batch_size=64)
    is_flipped = np.isin(train.ids, flipped)
    return stats, is_flipped, validation.labels, recorded_margins(training, train.labels)


def _precision_at(scores, is_flipped, fraction=0.1):
    top = np.argsort(-scores)[: int(fraction * len(scores))]
    return is_flipped[top].mean()


def test_default_method_flags_flipped_labels_far_more_often_than_chance(round_zero):
    """A small sample (400 training, 38 validation errors): uniform flips leave no marks of class-conditional
    noise, so the default ranks by the margin averaged over training."""
    stats, is_flipped, trusted_labels, recorded = round_zero
    scores = suspicion_scores(stats, GbairConfig().influence.method, trusted_labels=trusted_labels,
                              recorded_margins=recorded)
    assert roc_auc_score(is_flipped, scores) > 0.7
    assert _precision_at(scores, is_flipped) > 2 * FLIPPED


def test_class_aware_tracin_beats_the_plain_sum_and_chance(round_zero):
    stats, is_flipped, _, _ = round_zero
    plain = roc_auc_score(is_flipped, suspicion_scores(stats, "tracin"))
    class_aware = roc_auc_score(is_flipped, suspicion_scores(stats, "tracin-class"))
    chance = roc_auc_score(is_flipped, suspicion_scores(stats, "random"))
    assert class_aware > plain + 0.05
    assert class_aware > chance + 0.15
