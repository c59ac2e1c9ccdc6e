"""Peers a user would pick instead of influence: the area under the margin and dataset cartography from
the logits recorded while training, kNN label disagreement on the backbone's embeddings, and the
ensemble of confident learning's fold models, each used in G-BAIR rounds."""

import numpy as np
import pytest
import torch

from conftest import tiny_classifier
from gbair.core.config import TrainConfig
from gbair.core.model import encode
from gbair.core.neighbours import backbone_embeddings, neighbour_labels
from gbair.core.recovery_state import TrainedRound
from gbair.core.training import TrainingResult, train_classifier
from gbair.core.training_dynamics import area_under_the_margin, cartography, most_probable_other_label
from test_recovery import _config, _recovery, _splits
from test_training import separable

# Two epochs, two examples, three classes; example 0 is labelled 0, example 1 labelled 2.
LOGITS = torch.tensor([[[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]], [[4.0, 0.0, 1.0], [0.0, 1.0, 2.0]]])
LABELS = torch.tensor([0, 2])


def _recorded(logits) -> TrainingResult:
    return TrainingResult(initial_state={}, checkpoints=[], epochs=len(logits), seconds=0.0, training_logits=logits)


def test_training_records_each_examples_logits_before_its_update(minilm_tokenizer, tmp_path):
    classifier = tiny_classifier("encoder", minilm_tokenizer, dtype=torch.float32)
    train = encode(classifier, separable(12))
    batch = next(train.batches(12, list(range(12))))
    with torch.no_grad():
        untrained = classifier(batch.input_ids, batch.attention_mask).logits
    # One batch per epoch: epoch 0's logits are the untrained model's, epoch 1's come after one update.
    result = train_classifier(classifier, train, TrainConfig(epochs=2, batch_size=12, learning_rate=0.05))
    assert result.training_logits.shape == (2, 12, 2)
    torch.testing.assert_close(result.training_logits[0], untrained)
    assert not torch.allclose(result.training_logits[1], untrained)
    path = tmp_path / "round.pt"
    TrainedRound(0, result, 0.5, None, [], val_loss=0.7).save_to(path)
    loaded = TrainedRound.load(path)
    torch.testing.assert_close(loaded.training.training_logits, result.training_logits)
    assert loaded.val_loss == 0.7


def test_area_under_the_margin_and_cartography_from_recorded_logits():
    training = _recorded(LOGITS)
    # Margins: example 0: 2 - 1, 4 - 1; example 1: 1 - 3, 2 - 1.
    np.testing.assert_allclose(area_under_the_margin(training, LABELS), [-2.0, 0.5])
    confidence, variability = cartography(training, LABELS)
    given = LOGITS.double().softmax(dim=2)[:, [0, 1], [0, 2]].numpy()
    np.testing.assert_allclose(confidence, given.mean(axis=0))
    np.testing.assert_allclose(variability, given.std(axis=0))
    assert most_probable_other_label(training, LABELS, [1, 0]) == [1, 2]


def test_training_dynamics_peers_ask_for_a_new_run_of_a_round_saved_without_the_record():
    with pytest.raises(ValueError, match="run the job again"):
        area_under_the_margin(TrainingResult({}, [], 1, 0.0), LABELS)


def test_knn_disagreement_leaves_each_example_out_and_suggests_the_neighbours_label():
    rng = np.random.default_rng(0)
    centres = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    labels = np.repeat([0, 1, 2], 6)
    embeddings = centres[labels] + 0.05 * rng.standard_normal((18, 3))
    given = labels.copy()
    given[3] = 2  # a class-0 example labelled 2
    neighbours = neighbour_labels(embeddings, given, k=5, num_classes=3)
    scores = neighbours.suspicion_scores()
    assert scores[3] == 1.0 and scores.argmax() == 3
    assert np.all(scores[labels == 1] == 0.0)
    assert neighbours.suggested_labels([3]) == [0]


def test_backbone_embeddings_do_not_depend_on_the_soft_prompt(tiny):
    train = encode(tiny, separable(6))
    before = backbone_embeddings(tiny, train, batch_size=4)
    state = tiny.pet_state()
    tiny.load_pet_state({name: value + 1.0 for name, value in state.items()})
    np.testing.assert_array_equal(backbone_embeddings(tiny, train, batch_size=4), before)
    assert before.shape == (6, tiny.peft_model.get_base_model().get_input_embeddings().embedding_dim)


@pytest.mark.parametrize(("method", "action"), [("aum", "relabel"), ("cartography", "remove"), ("knn", "relabel")])
def test_recovery_runs_the_training_peers(minilm_tokenizer, method, action):
    splits, flipped = _splits()
    report = _recovery(splits, _config(method=method, action=action, rounds=1), minilm_tokenizer).run(flipped).report
    first = report.rounds[0]
    assert report.method == method and len(first.flagged_ids) == 4
    assert first.flagged_scores == sorted(first.flagged_scores, reverse=True)
    if action == "relabel":
        given = dict(zip(splits.train.ids, splits.train.labels))
        assert set(first.relabels) == set(first.flagged_ids)
        assert all(name != splits.label_names[given[i]] for i, name in first.relabels.items())
