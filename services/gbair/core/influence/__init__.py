"""Influence of training examples in the PET parameter space: per-example gradients, TracIn statistics,
suspicion scores, relabel suggestions and explanations."""

from gbair.core.influence.explain import ExampleGradients, Explanation, Influence, explain_example
from gbair.core.influence.gradients import logit_derivatives, per_example_gradients
from gbair.core.influence.methods import (
    INFLUENCE_METHODS,
    NEEDS_INITIAL_STATE,
    NEEDS_TRUSTED_LABELS,
    NEEDS_VALIDATION_ERRORS,
    PEER_METHODS,
    RELABEL_BY_MODEL,
    class_conditional_marks,
    suspicion_scores,
)
from gbair.core.influence.relabel import suggest_labels
from gbair.core.influence.statistics import InfluenceStatistics, QueryGradients, query_gradients, training_statistics

__all__ = [
    "INFLUENCE_METHODS",
    "NEEDS_INITIAL_STATE",
    "NEEDS_TRUSTED_LABELS",
    "NEEDS_VALIDATION_ERRORS",
    "PEER_METHODS",
    "RELABEL_BY_MODEL",
    "ExampleGradients",
    "Explanation",
    "Influence",
    "InfluenceStatistics",
    "QueryGradients",
    "class_conditional_marks",
    "explain_example",
    "logit_derivatives",
    "per_example_gradients",
    "query_gradients",
    "suggest_labels",
    "suspicion_scores",
    "training_statistics",
]
