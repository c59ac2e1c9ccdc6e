"""Per-example gradients from one batched backward pass equal a naive one-example-at-a-time loop."""

import torch
import torch.nn.functional as F

from gbair.core.data import TextDataset
from gbair.core.influence import logit_derivatives, per_example_gradients
from gbair.core.model import encode

TEXTS = [
    "a stirring , funny and finally transporting re-imagining",
    "apparently reassembled from the cutting-room floor",
    "this is a visually stunning rumination on love , memory , history and the war between art and commerce",
    "bad",
    "jonathan parker 's bartleby should have been the be-all-end-all",
]


def _dataset(pairs: bool = False) -> TextDataset:
    return TextDataset(
        ids=[f"x{i}" for i in range(len(TEXTS))],
        texts=TEXTS,
        labels=[1, 0, 1, 0, 0],
        label_names=["negative", "positive"],
        text_pairs=[t[::-1] for t in TEXTS] if pairs else None,
    )


def _naive_gradients(classifier, encoded) -> torch.Tensor:
    rows = []
    for i in range(len(encoded)):
        single = next(encoded.subset([i]).batches(1))
        classifier.zero_grad(set_to_none=True)
        logits = classifier(single.input_ids, single.attention_mask).logits
        F.cross_entropy(logits, single.labels).backward()
        rows.append(torch.cat([p.grad.flatten() for p in classifier.trainable_parameters().values()]))
    return torch.stack(rows)


def _train_a_little(classifier, encoded) -> None:
    """Move off the initial point so head and prompt gradients are not special."""
    optimizer = torch.optim.SGD(list(classifier.trainable_parameters().values()), lr=0.5)
    for batch in encoded.batches(len(encoded)):
        optimizer.zero_grad()
        F.cross_entropy(classifier(batch.input_ids, batch.attention_mask).logits, batch.labels).backward()
        optimizer.step()


def test_batched_gradients_match_naive_loop(tiny):
    encoded = encode(tiny, _dataset(pairs=tiny.kind == "encoder"))
    _train_a_little(tiny, encoded)
    batched = torch.empty(len(encoded), tiny.num_trainable, dtype=torch.float64)
    # One padded batch with texts of very different lengths: padding must not leak into gradients.
    for batch in encoded.batches(len(encoded)):
        batched[batch.positions] = per_example_gradients(tiny, batch)[0]
    naive = _naive_gradients(tiny, encoded)
    assert batched.shape == (len(TEXTS), tiny.num_trainable)
    relative_error = (batched - naive).norm(dim=1) / naive.norm(dim=1)
    assert relative_error.max().item() <= 1e-5, relative_error


def test_gradient_layout_covers_every_trainable_parameter(tiny):
    expected = sum(p.numel() for p in tiny.trainable_parameters().values())
    prompt = tiny.trainable_parameters()["prompt"]
    assert prompt.shape == (4, 32)
    assert tiny.num_trainable == expected
    if tiny.kind == "encoder":
        assert set(tiny.trainable_parameters()) == {"prompt", "head.weight", "head.bias"}
    else:
        assert set(tiny.trainable_parameters()) == {"prompt"}


def test_logit_derivatives_equal_each_logits_gradient_along_the_direction(tiny):
    encoded = encode(tiny, _dataset())
    batch = next(encoded.batches(len(encoded)))
    direction = torch.randn(tiny.num_trainable, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    derivatives = logit_derivatives(tiny, batch, direction)
    columns = []
    for k in range(len(tiny.label_names)):
        output = tiny(batch.input_ids, batch.attention_mask)
        columns.append(output.per_example_gradients(output.logits[:, k]) @ direction)
    expected = torch.stack(columns, dim=1)
    assert derivatives.shape == (len(encoded), len(tiny.label_names))
    # Llama's RMSNorm runs in float32 even in a float64 model, so forward and reverse mode round differently.
    assert torch.allclose(derivatives, expected, rtol=1e-5, atol=1e-6)


def test_backbone_is_frozen(tiny):
    trainable = {id(p) for p in tiny.trainable_parameters().values()}
    for parameter in tiny.parameters():
        assert parameter.requires_grad == (id(parameter) in trainable)
