"""Configuration layers, sources, managed policy and error messages."""

from __future__ import annotations

import pytest
from helpers.home import Home

from credguard import config
from credguard.errors import ConfigError, ExitCode

FP = "sha256:" + "ab" * 32


def write(path: object, text: str) -> None:
    from pathlib import Path

    assert isinstance(path, Path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_defaults_have_default_source() -> None:
    cfg = config.load()
    assert cfg["scan.max_file_size"] == 4 << 20
    assert set(cfg.sources.values()) == {"default"}


def test_layers_in_order(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    write(home.policy_file, "[scan]\nsniff_max_size = 65536\n")
    write(
        home.config_file, '# mine\n\n[scan]\nsniff_max_size = "128 KiB"\nmax_file_size = 2097152\n'
    )
    monkeypatch.setenv("CREDGUARD_SCAN_MAX_FILE_SIZE", "3MiB")
    cfg = config.load(flags={"scan.one_file_system": False})
    assert cfg["scan.sniff_max_size"] == 128 << 10
    assert cfg.sources["scan.sniff_max_size"] == f"user config {home.config_file}:4"
    assert cfg["scan.max_file_size"] == 3 << 20
    assert cfg.sources["scan.max_file_size"] == "env CREDGUARD_SCAN_MAX_FILE_SIZE"
    assert cfg.sources["scan.one_file_system"] == "command line"


def test_managed_policy_cannot_be_weakened(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    write(home.policy_file, '[scan]\nmax_file_size = "8 MiB"\nallow_ignore = false\nexclude = []\n')
    write(
        home.config_file,
        '[scan]\nmax_file_size = "1 MiB"\nallow_ignore = true\n'
        'exclude = ["*"]\n\n[[ignore]]\n'
        f'fingerprint = "{FP}"\n',
    )
    monkeypatch.setenv("CREDGUARD_SCAN_MAX_FILE_SIZE", "2MiB")
    cfg = config.load()
    assert cfg["scan.max_file_size"] == 8 << 20
    assert cfg.sources["scan.max_file_size"] == f"managed policy {home.policy_file}:2"
    assert cfg["scan.allow_ignore"] is False
    assert cfg["scan.exclude"] == ()
    assert cfg.ignores == ()
    assert len(cfg.warnings) == 5
    assert any("would weaken the managed policy" in w for w in cfg.warnings)
    assert any("locked by the managed policy" in w for w in cfg.warnings)
    with pytest.raises(ConfigError, match="managed policy disables the allowlist"):
        config.add_ignore(cfg, FP, "")


def test_user_may_strengthen_managed_policy(home: Home) -> None:
    write(home.policy_file, '[scan]\nmax_file_size = "2 MiB"\n')
    write(home.config_file, '[scan]\nmax_file_size = "16 MiB"\n')
    cfg = config.load()
    assert cfg["scan.max_file_size"] == 16 << 20 and not cfg.warnings


def test_additive_lists_are_unioned(home: Home) -> None:
    write(home.policy_file, '[scan]\nextra_roots = ["/srv/a"]\n')
    write(home.config_file, '[scan]\nextra_roots = ["/srv/b", "/srv/a"]\n')
    cfg = config.load()
    assert cfg["scan.extra_roots"] == ("/srv/a", "/srv/b")
    assert "managed policy" in cfg.sources["scan.extra_roots"]
    assert "user config" in cfg.sources["scan.extra_roots"]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("[scan]\nmax_file_size = 5\n", 2, "between 1 KiB and 4 GiB"),
        ('\n[scan]\n\none_file_system = "maybe"\n', 4, "expected true or false"),
        ("[scan]\nexclude = 3\n", 2, "expected a list of strings"),
        ("[scan]\nmax_file_size = 4096\ntypo = 1\n", 3, "unknown key 'scan.typo'"),
        ("[nonsense]\nx = 1\n", 1, "unknown section or key 'nonsense'"),
        ("version = 2\n", 1, "this file was written by a newer credguard (format version 2; "
                             "this one reads up to 1): upgrade credguard"),
        ('\nversion = "1"\n', 2, "config version '1' is not supported (this credguard reads "
                                 "version 1)"),
        ('[[ignore]]\nfingerprint = "md5:abc"\n', 2, "sha256:"),
        (f'[[ignore]]\nfingerprint = "{FP}"\ncolour = 1\n', 3, "unknown key 'ignore.colour'"),
    ],
    ids=[
        "too-small",
        "bad-bool",
        "bad-list",
        "unknown-key",
        "unknown-section",
        "version",
        "version-not-a-number",
        "bad-fingerprint",
        "ignore-unknown-key",
    ],
)
def test_bad_values_name_file_and_line(home: Home, text: str, line: int, words: str) -> None:
    write(home.config_file, text)
    with pytest.raises(ConfigError) as info:
        config.load()
    assert f"{home.config_file}:{line}:" in info.value.message
    assert words in info.value.message
    assert info.value.exit_code == ExitCode.CONFIG


def test_toml_syntax_error_names_file_and_line(home: Home) -> None:
    write(home.config_file, "[scan]\nmax_file_size = = 3\n")
    with pytest.raises(ConfigError) as info:
        config.load()
    assert str(home.config_file) in info.value.message and "line 2" in info.value.message


def test_bad_environment_value_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDGUARD_SCAN_MAX_FILE_SIZE", "lots")
    with pytest.raises(ConfigError, match="CREDGUARD_SCAN_MAX_FILE_SIZE"):
        config.load()


def test_add_ignore_keeps_comments_and_validates(home: Home) -> None:
    write(home.config_file, '# my notes\n[scan]\nmax_file_size = "8 MiB"\n')
    cfg = config.load()
    assert config.add_ignore(cfg, FP, "lab")
    text = home.config_file.read_text()
    assert text.startswith("# my notes\n") and "[[ignore]]" in text
    cfg = config.load()
    assert cfg["scan.max_file_size"] == 8 << 20
    entry = cfg.ignored(FP)
    assert entry is not None and entry.reason == "lab"
    assert not config.add_ignore(cfg, FP, "again")


def test_add_ignore_refuses_inline_array_form(home: Home) -> None:
    write(home.config_file, f'ignore = [{{fingerprint = "{FP}"}}]\n')
    cfg = config.load()
    with pytest.raises(ConfigError, match="add it by hand"):
        config.add_ignore(cfg, "sha256:" + "cd" * 32, "")


def test_policy_tables_parse_and_locate(home: Home) -> None:
    from credguard import policy

    write(
        home.config_file,
        '[policy]\nazure-cli-token-cache = { downloads = "alert" }\n'
        '\n[policy.azd-credential-cache]\ndefault = "ignore"\n',
    )
    cfg = config.load()
    assert policy.decide(cfg.values, "azure-cli-token-cache", home.downloads / "x") == "alert"
    assert policy.decide(cfg.values, "azure-cli-token-cache", home.azure / "x") == "harden"
    assert policy.decide(cfg.values, "azd-credential-cache", home.downloads / "x") == "ignore"
    assert policy.decide({}, "azd-credential-cache", home.downloads / "x") is policy.Action.PROTECT
    assert policy.decide(cfg.values, "azure-publishsettings", home.root / "x") == "alert"
    assert policy.decide(cfg.values, "azure-publishsettings", home.root / "p" / "x") == "alert"
    trash = home.root / ".local" / "share" / "Trash" / "files" / "x"
    assert policy.decide(cfg.values, "azure-publishsettings", trash) == "protect"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[policy]\nazure-publishsettings = "delete"\n', 2, "unknown action 'delete'"),
        ('[policy]\nazure-publishsettings = { garage = "alert" }\n', 2, "unknown location"),
        ('[policy]\nnot-a-kind = "alert"\n', 2, "unknown key 'policy.not-a-kind'"),
        ('[[targets]]\nname = "x"\ncommand = "tool {file}"\n', 3, "non-empty list"),
        ('[[targets]]\ncommand = ["tool"]\n', 2, "needs a name"),
        ('[[targets]]\nname = "x"\ncommand = ["t"]\nkinds = ["nope"]\n', 4, "kind ids"),
        ("[protect]\npasses = 0\n", 2, "from 1 to 35"),
    ],
    ids=[
        "bad-action",
        "bad-location",
        "bad-kind",
        "target-command",
        "target-name",
        "target-kinds",
        "passes",
    ],
)
def test_policy_and_target_errors(home: Home, text: str, line: int, words: str) -> None:
    write(home.config_file, text)
    with pytest.raises(ConfigError) as info:
        config.load()
    assert f"{home.config_file}:{line}:" in info.value.message and words in info.value.message


def test_managed_policy_table_cannot_be_weakened_per_location(home: Home) -> None:
    from credguard import policy

    write(home.policy_file, '[policy]\nazure-cli-token-cache = { azure-cli = "protect" }\n')
    write(home.config_file, '[policy]\nazure-cli-token-cache = { downloads = "import" }\n')
    cfg = config.load()
    assert any("{'downloads': 'import'} would weaken" in w for w in cfg.warnings)  # plain text
    assert policy.decide(cfg.values, "azure-cli-token-cache", home.azure / "x") == "protect"
    assert policy.decide(cfg.values, "azure-cli-token-cache", home.downloads / "x") == "protect"
