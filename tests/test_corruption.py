"""Class-conditional label noise and the true labels kept beside it."""

import pytest

from gbair.core.data import corrupt_labels, true_label_names
from test_data import three_class_dataset


def test_class_conditional_noise_flips_the_fraction_of_one_class_to_another() -> None:
    clean = three_class_dataset(300)
    noisy, flipped = corrupt_labels(clean, 0.2, seed=3, source="b", target="a")
    assert len(flipped) == 20 and flipped == [i for i in clean.ids if i in set(flipped)]
    changes = {(old, new) for old, new in zip(clean.labels, noisy.labels) if old != new}
    assert changes == {(1, 0)}
    assert [i for i, old, new in zip(clean.ids, clean.labels, noisy.labels) if old != new] == flipped
    assert true_label_names(clean, flipped) == dict.fromkeys(flipped, "b")
    assert corrupt_labels(clean, 0.2, seed=4, source="b", target="a")[1] != flipped


@pytest.mark.parametrize(("source", "target", "problem"), [
    ("b", None, "both a source and a target"), ("b", "b", "two different classes"), ("b", "z", "'z' is not a label"),
])
def test_class_conditional_noise_needs_two_known_classes(source, target, problem) -> None:
    with pytest.raises(ValueError, match=problem):
        corrupt_labels(three_class_dataset(30), 0.2, seed=0, source=source, target=target)
