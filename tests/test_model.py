"""Backbone resolution, the real bundled models, and adapters saved in peft's own format."""

import subprocess
import sys

import pytest
import torch
from peft import PeftConfig, PeftModel
from transformers import AutoModel

from conftest import tiny_classifier
from gbair.core.config import ModelConfig
from gbair.core.data import TextDataset
from gbair.core.model import PetClassifier, encode, locate_backbone
from gbair.core.model.pet import verbalizer_token_ids

TWO = TextDataset(["a", "b"], ["a fine film", "a dull , tedious film"], [1, 0], ["negative", "positive"])


def test_bundled_minilm_is_found_and_prompt_tuned():
    classifier = PetClassifier.build(ModelConfig(), ["negative", "positive"])
    assert classifier.kind == "encoder"
    assert classifier.num_trainable == 16 * 384 + 2 * 384 + 2
    logits = classifier(*_first_batch(classifier)).logits
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()


def test_a_seeded_state_is_the_one_a_classifier_built_with_that_seed_starts_from():
    built = PetClassifier.build(ModelConfig(), ["negative", "positive"], seed=7).pet_state()
    drawn = PetClassifier.build(ModelConfig(), ["negative", "positive"], seed=0).seeded_state(7)
    assert drawn.keys() == built.keys()
    assert all(torch.equal(drawn[name], built[name]) for name in built)


@pytest.mark.parametrize("kind", ["encoder", "causal-lm"])
def test_a_seeded_state_draws_as_peft_and_torch_do_for_either_kind(kind, minilm_tokenizer):
    # tiny_classifier seeds before the backbone, `build` after it: seed 7 here plays build's seed.
    first, second = (tiny_classifier(kind, minilm_tokenizer, dtype=torch.float32) for _ in range(2))
    torch.manual_seed(7)
    built = PetClassifier(first.peft_model.get_base_model(), minilm_tokenizer, kind, first.label_names, first.config)
    drawn = second.seeded_state(7)
    assert drawn.keys() == built.pet_state().keys()
    assert all(torch.equal(drawn[name], built.pet_state()[name]) for name in drawn)
    assert not torch.equal(drawn["prompt"], second.pet_state()["prompt"])


def _first_batch(classifier):
    batch = next(encode(classifier, TWO).batches(2))
    return batch.input_ids, batch.attention_mask


def test_adapter_round_trip_and_peft_can_load_it(tmp_path):
    classifier = PetClassifier.build(ModelConfig(num_virtual_tokens=4), ["negative", "positive"], seed=3)
    with torch.no_grad():
        classifier.prompt_embedding.weight.add_(0.5)
        classifier.head.bias.fill_(0.25)
    expected = classifier(*_first_batch(classifier)).logits
    folder = classifier.save_adapter(tmp_path / "adapter")

    reloaded = PetClassifier.load_adapter(folder)
    torch.testing.assert_close(reloaded(*_first_batch(reloaded)).logits, expected)

    config = PeftConfig.from_pretrained(str(folder))
    assert config.peft_type == "PROMPT_TUNING" and config.num_virtual_tokens == 4
    plain = PeftModel.from_pretrained(AutoModel.from_pretrained(config.base_model_name_or_path), str(folder))
    torch.testing.assert_close(
        plain.prompt_encoder["default"].embedding.weight, classifier.prompt_embedding.weight
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.gguf", "GGUF file not found"),
        ("pyproject.toml", "is a file"),
        ("./no-such-model", "model folder not found"),
        ("/no/such/model", "model folder not found"),
    ],
)
def test_bad_model_paths_are_explained(name, message):
    with pytest.raises((FileNotFoundError, ValueError), match=message):
        locate_backbone(name)


def test_local_folder_and_hub_ids_pass_through(tmp_path):
    assert locate_backbone(str(tmp_path)).path == str(tmp_path)
    assert locate_backbone("org/some-model").path == "org/some-model"


def test_verbalizer_words_must_start_with_different_tokens(minilm_tokenizer):
    assert len(set(verbalizer_token_ids(minilm_tokenizer, ["negative", "positive"]))) == 2
    with pytest.raises(ValueError, match="share first tokens"):
        verbalizer_token_ids(minilm_tokenizer, ["good-ish", "good"])


def test_causal_lm_reads_label_words_at_the_last_real_token(minilm_tokenizer):
    classifier = tiny_classifier("causal-lm", minilm_tokenizer)
    encoded = encode(classifier, TWO)
    batched = classifier(*_first_batch(classifier)).logits
    for i in range(2):
        single = next(encoded.subset([i]).batches(1))
        torch.testing.assert_close(classifier(single.input_ids, single.attention_mask).logits[0], batched[i])
    suffix = minilm_tokenizer(classifier.config.prompt_suffix, add_special_tokens=False)["input_ids"]
    assert all(ids[-len(suffix):] == suffix for ids in encoded.token_ids)


def test_core_imports_no_service_libraries():
    code = (
        "import sys, gbair.core.recovery, gbair.core.artifacts, gbair.core.influence, gbair.core.data;"
        "bad = [m for m in ('ray', 'grpc', 'redis') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_smollm2_gguf_is_prompt_tuned_through_its_verbalizer():
    classifier = PetClassifier.build(ModelConfig(name_or_path="smollm2-135m", num_virtual_tokens=4), ["negative", "positive"])
    assert classifier.kind == "causal-lm" and classifier.head is None
    assert classifier.num_trainable == 4 * classifier.peft_model.get_base_model().config.hidden_size
    from gbair.core.influence import logit_derivatives, per_example_gradients

    batch = next(encode(classifier, TWO).batches(2))
    gradients, losses, _ = per_example_gradients(classifier, batch)
    assert gradients.shape == (2, classifier.num_trainable) and torch.isfinite(gradients).all()
    assert torch.isfinite(losses).all()
    # Relabel suggestions take forward-mode derivatives through the real decoder.
    direction = torch.randn(classifier.num_trainable, generator=torch.Generator().manual_seed(0))
    derivatives = logit_derivatives(classifier, batch, direction)
    output = classifier(batch.input_ids, batch.attention_mask)
    positive = output.per_example_gradients(output.logits[:, 1]) @ direction
    torch.testing.assert_close(derivatives[:, 1], positive, rtol=1e-3, atol=1e-3)


def test_a_local_causal_lm_folder_is_detected_and_its_adapter_round_trips(tmp_path, minilm_tokenizer):
    folder = tmp_path / "tiny-llama"
    source = tiny_classifier("causal-lm", minilm_tokenizer, dtype=torch.float32)
    source.peft_model.get_base_model().save_pretrained(folder)
    minilm_tokenizer.save_pretrained(folder)

    classifier = PetClassifier.build(ModelConfig(name_or_path=str(folder), num_virtual_tokens=4), ["negative", "positive"])
    assert classifier.kind == "causal-lm" and classifier.head is None
    with torch.no_grad():
        classifier.prompt_embedding.weight.mul_(-2.0)
    expected = classifier(*_first_batch(classifier)).logits
    reloaded = PetClassifier.load_adapter(classifier.save_adapter(tmp_path / "adapter"))
    assert reloaded.label_word_ids.tolist() == classifier.label_word_ids.tolist()
    torch.testing.assert_close(reloaded(*_first_batch(reloaded)).logits, expected)
