from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model.cards import MODEL_CARD_NAME, ModelCard, read_model_card, write_model_card
from model.checkpoints import build_pipeline, load_pipeline, load_published_audio_encoder, main
from model.configs import CONFIGS


def test_the_command_writes_a_loadable_random_checkpoint(tmp_path: Path) -> None:
    assert main([str(tmp_path / "tiny"), "--config", "tiny", "--seed", "3"]) == 0
    pipeline = load_pipeline(tmp_path / "tiny", device="cpu")
    assert pipeline.transformer.config.num_layers == 2
    # The seed decides the weights: the same seed rebuilds them.
    rebuilt = build_pipeline("tiny", seed=3)
    for name, parameter in rebuilt.transformer.state_dict().items():
        assert torch.equal(parameter, pipeline.transformer.state_dict()[name]), name
    # ... and its card says the weights are random.
    card = read_model_card(tmp_path / "tiny")
    assert card is not None
    assert card.trained is False
    assert (card.config, card.steps, card.seeds, card.eval) == ("tiny", 0, {"weights": 3}, None)


def test_a_model_card_round_trips_and_a_missing_one_reads_as_none(tmp_path: Path) -> None:
    assert read_model_card(tmp_path) is None
    card = ModelCard(
        name="small-v1",
        config="small",
        trained=True,
        steps=12_000,
        data={"clips": 5000, "sha256": "ab" * 32},
        seeds={"torch": 1, "data": 2},
        eval={"sync_error": 0.12},
        notes="a test card",
    )
    written = write_model_card(tmp_path, card)
    assert written == tmp_path / MODEL_CARD_NAME
    assert read_model_card(tmp_path) == card
    assert set(json.loads(written.read_text())) == {
        "name",
        "config",
        "trained",
        "steps",
        "data",
        "seeds",
        "eval",
        "created_at",
        "notes",
        "max_frames",
        "face_pixels",
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "cannot read"),
        ("[]", "JSON object"),
        ('{"name": "x", "config": "tiny"}', "lacks trained"),
        ('{"name": "x", "config": "tiny", "trained": "yes"}', "'trained' must be a bool"),
        ('{"name": "x", "config": "tiny", "trained": true, "steps": -1}', "'steps'"),
        ('{"name": "x", "config": "tiny", "trained": true, "loss": 1}', "unknown fields: loss"),
    ],
)
def test_a_malformed_model_card_is_refused_clearly(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / MODEL_CARD_NAME).write_text(content)
    with pytest.raises(ValueError, match=message):
        read_model_card(tmp_path)


def test_an_unknown_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main([str(tmp_path / "x"), "--config", "huge"])
    assert not (tmp_path / "x").exists()


def test_named_configs_fit_their_components() -> None:
    # Building every size is too slow for CPU tests; the window width and the audio width must agree.
    for config in CONFIGS.values():
        assert config.transformer["audio_window_tokens"] == config.audio_window.window_tokens
        assert config.transformer["audio_dim"] == config.audio_encoder["d_model"]


def test_a_published_whisper_checkpoint_loads_its_encoder(tmp_path: Path) -> None:
    # A stand-in for a released checkpoint: a full WhisperModel saved the way the hub stores it.
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(0)
    whisper = WhisperModel(WhisperConfig(**CONFIGS["tiny"].audio_encoder))
    whisper.save_pretrained(tmp_path)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(tmp_path)
    encoder, feature_extractor = load_published_audio_encoder(tmp_path)
    for name, parameter in whisper.get_encoder().state_dict().items():
        assert torch.equal(encoder.state_dict()[name], parameter), name
    assert feature_extractor.sampling_rate == 16_000
    pipeline = build_pipeline("tiny", audio_encoder_path=tmp_path)
    assert pipeline.transformer.config.audio_dim == whisper.config.d_model


def test_a_published_wan_vae_loads_from_a_checkpoint_folder(tmp_path: Path) -> None:
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    vae = AutoencoderKLWan(**CONFIGS["tiny"].vae)
    vae.save_pretrained(tmp_path / "vae")  # the layout of a Wan pipeline checkpoint
    pipeline = build_pipeline("tiny", vae_path=tmp_path)
    for name, parameter in vae.state_dict().items():
        assert torch.equal(pipeline.vae.state_dict()[name], parameter), name
