"""The marks of labels taken out of one class, which decide whether the default reads TracIn's opposition."""

import torch

from gbair.core.influence.class_bias import class_short_of_labels


def _labels(*counts: int) -> torch.Tensor:
    return torch.tensor([c for c, count in enumerate(counts) for _ in range(count)])


def test_flips_out_of_a_class_leave_both_marks_in_it():
    # A fifth of class 1's 1,000 training labels turned to 0; the model misses 60 of the trusted set's 200
    # examples of class 1 and 20 of class 0's.
    assert class_short_of_labels(_labels(1200, 800), _labels(200, 200), _labels(20, 60), 2) == 1


def test_uniform_flips_on_imbalanced_data_leave_the_marks_in_different_classes():
    # Uniform flips move labels into the minority class 1, whose trusted examples the model misses most: the
    # smaller share is class 0's, the errors are class 1's.
    assert None is class_short_of_labels(_labels(1200, 800), _labels(267, 133), _labels(10, 60), 2)


def test_one_mark_alone_is_not_enough():
    assert None is class_short_of_labels(_labels(1200, 800), _labels(200, 200), _labels(40, 40), 2)
    assert None is class_short_of_labels(_labels(1000, 1000), _labels(200, 200), _labels(20, 60), 2)


def test_each_mark_must_reach_the_level():
    # The same proportions in a trusted set of 40: a shift from 50% to 40% and 12 errors against 4 are
    # within chance at that size.
    assert None is class_short_of_labels(_labels(1200, 800), _labels(20, 20), _labels(4, 8), 2)


def test_many_classes_are_tested_one_by_one():
    # Class 5 of 8 lost half of its training labels and holds most errors; the other classes are level.
    train, trusted = _labels(*[250] * 5, 125, *[250] * 2), _labels(*[50] * 8)
    assert class_short_of_labels(train, trusted, _labels(2, 2, 2, 2, 2, 20, 2, 2), 8) == 5
    assert None is class_short_of_labels(train, trusted, _labels(2, 2, 2, 2, 2, 2, 20, 2), 8)


def test_of_two_classes_with_both_marks_the_one_with_the_stronger_evidence_is_named():
    # Classes 1 and 2 of four each lost labels; class 2 lost more and holds more of the errors.
    train, trusted = _labels(300, 160, 130, 300), _labels(60, 60, 60, 60)
    assert class_short_of_labels(train, trusted, _labels(2, 20, 30, 2), 4) == 2
    assert class_short_of_labels(train, trusted, _labels(2, 20, 2, 2), 4) == 1
