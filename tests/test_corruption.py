"""Class-conditional label noise and the true labels kept beside it."""

from collections import Counter

import pytest

from gbair.core.data import corrupt_labels, pair_flips, true_label_names
from test_data import three_class_dataset


def test_class_conditional_noise_flips_the_fraction_of_one_class_to_another() -> None:
    clean = three_class_dataset(300)
    noisy, flipped = corrupt_labels(clean, 0.2, seed=3, flips={"b": "a"})
    assert len(flipped) == 20 and flipped == [i for i in clean.ids if i in set(flipped)]
    changes = {(old, new) for old, new in zip(clean.labels, noisy.labels) if old != new}
    assert changes == {(1, 0)}
    assert [i for i, old, new in zip(clean.ids, clean.labels, noisy.labels) if old != new] == flipped
    assert true_label_names(clean, flipped) == dict.fromkeys(flipped, "b")
    assert corrupt_labels(clean, 0.2, seed=4, flips={"b": "a"})[1] != flipped


def test_pair_flips_turn_a_fraction_of_every_class_into_the_next_and_keep_the_shares() -> None:
    clean = three_class_dataset(300)
    assert pair_flips(clean) == {"a": "b", "b": "c", "c": "a"}
    noisy, flipped = corrupt_labels(clean, 0.2, seed=0, flips=pair_flips(clean))
    # Each example is flipped at most once, from its true label: none goes a -> b -> c.
    changes = Counter((old, new) for old, new in zip(clean.labels, noisy.labels) if old != new)
    assert changes == {(0, 1): 20, (1, 2): 20, (2, 0): 20}
    assert len(flipped) == 60 and Counter(noisy.labels) == Counter(clean.labels)


@pytest.mark.parametrize(("flips", "problem"), [
    ({}, "at least one class"), ({"b": "b"}, "two different classes"), ({"b": "z"}, "'z' is not a label"),
])
def test_class_conditional_noise_needs_two_known_classes(flips, problem) -> None:
    with pytest.raises(ValueError, match=problem):
        corrupt_labels(three_class_dataset(30), 0.2, seed=0, flips=flips)
