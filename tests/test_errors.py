"""Service errors keep their status code, message and fields when pickled, as when they cross a process."""

import pickle

import pytest

from gbair.coordinator.errors import InvalidArgument, NotFound, ResourceExhausted


@pytest.mark.parametrize("error", [InvalidArgument("budget", "must be positive"), NotFound("no job 'x'"),
                                   ResourceExhausted("too many jobs")])
def test_a_service_error_survives_pickling(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error) and copy.message == error.message
    assert copy.code == error.code and vars(copy) == vars(error)
