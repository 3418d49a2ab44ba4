"""``bot validate``: one broken file per error class, each reported at its exact file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from warmline.bot.loader import read_bot_folder
from warmline.bot.publishing import check_bot
from warmline.cli import app

HEADER = """kind: AdaptiveDialog
beginDialog:
  kind: OnRecognizedIntent
  id: main
  intent:
    displayName: Broken
    triggerQueries:
      - broken topic
  actions:
"""  # the first action starts on line 10, column 7 (after "    - ")


def make_bot(
    tmp_path: Path, actions: str, *, bot_yaml: str = "name: Test bot\n", extra: dict[str, str] | None = None
) -> Path:
    folder = tmp_path / "bot"
    (folder / "topics").mkdir(parents=True)
    (folder / "bot.yaml").write_text(bot_yaml)
    (folder / "topics" / "Broken.yaml").write_text(HEADER + actions)
    for name, text in (extra or {}).items():
        (folder / "topics" / name).write_text(text)
    return folder


def messages(folder: Path) -> list[str]:
    _, problems = check_bot(read_bot_folder(folder), root=str(folder))
    return [str(p) for p in problems if p.severity == "error"]


CASES = {
    "unknown kind": (
        "    - kind: Frobnicate\n      id: a1\n",
        "topics/Broken.yaml:10:7: unknown action kind 'Frobnicate'",
    ),
    "missing id": (
        "    - kind: SendActivity\n      activity: hi\n",
        "topics/Broken.yaml:10:7: this SendActivity action has no 'id'",
    ),
    "duplicate id": (
        "    - kind: SendActivity\n      id: same\n      activity: one\n"
        "    - kind: SendActivity\n      id: same\n      activity: two\n",
        "topics/Broken.yaml:13:7: duplicate id 'same' (first used at line 10)",
    ),
    "undefined variable": (
        '    - kind: SendActivity\n      id: a1\n      activity: "Hi {Topic.Nobody}"\n',
        "topics/Broken.yaml:12:",
    ),
    "type mismatch": (
        "    - kind: SetVariable\n      id: a1\n      variable: init:Topic.Count\n      value: =1 + 1\n"
        "    - kind: ConditionGroup\n      id: c1\n      conditions:\n        - id: b1\n"
        "          condition: =Topic.Count\n          actions: []\n",
        "topics/Broken.yaml:17:11: this condition is a Number, not a Boolean",
    ),
    "missing topic": (
        "    - kind: BeginDialog\n      id: a1\n      dialog: cr123_bot.topic.Nowhere\n",
        "topics/Broken.yaml:10:7: BeginDialog to 'Nowhere', but there is no such topic",
    ),
    "voice action without voice": (
        "    - kind: HangUp\n      id: a1\n",
        "topics/Broken.yaml:10:7: HangUp is a voice-only action, but voice is disabled for this bot",
    ),
    "plus in phone number": (
        "    - kind: TransferConversationV2\n      id: a1\n      transferType:\n        kind: TransferToPhoneNumber\n"
        "        phoneNumber: '+15550199'\n",
        "topics/Broken.yaml:14:22: phone number '+15550199' starts with '+': write digits only, e.g. 15550199",
    ),
    "unknown locale": (
        "    - kind: SetCustomerLocaleAndTransfer\n      id: a1\n      customerLocale: pt-PT\n",
        "topics/Broken.yaml:12:23: locale 'pt-PT' is not supported for voice hand-off",
    ),
    "yaml syntax": (
        "    - kind: SendActivity\n      id: a1\n      activity: Note: we close at 5\n",
        "topics/Broken.yaml:12:21: YAML syntax error: mapping values are not allowed here — a value containing ': ' "
        "must be quoted",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_error_class_is_reported_at_its_position(tmp_path: Path, case: str) -> None:
    actions, expected = CASES[case]
    voice = (
        "name: Test bot\nsettings:\n  voiceEnabled: true\n"
        if case in {"plus in phone number", "unknown locale"}
        else None
    )
    folder = make_bot(tmp_path, actions, bot_yaml=voice or "name: Test bot\n")
    found = messages(folder)
    assert any(m.startswith(f"{folder}/{expected}") for m in found), found


def test_unreachable_topic(tmp_path: Path) -> None:
    lonely = "kind: AdaptiveDialog\nbeginDialog:\n  kind: OnSystemRedirect\n  id: main\n  actions: []\n"
    folder = make_bot(tmp_path, "    - kind: EndDialog\n      id: a1\n", extra={"Lonely.yaml": lonely})
    assert (
        f"{folder}/topics/Lonely.yaml:3:3: topic 'Lonely' is unreachable: it has no trigger phrases and no "
        "BeginDialog or ReplaceDialog leads to it" in messages(folder)
    )


def test_cli_prints_problems_and_exits_non_zero(tmp_path: Path) -> None:
    folder = make_bot(tmp_path, "    - kind: Frobnicate\n      id: a1\n")
    result = CliRunner().invoke(app, ["bot", "validate", str(folder)])
    assert result.exit_code == 1
    assert f"{folder}/topics/Broken.yaml:10:7: unknown action kind 'Frobnicate'" in result.output


def test_cli_validates_a_single_topic_file(tmp_path: Path) -> None:
    folder = make_bot(tmp_path, "    - kind: BeginDialog\n      id: a1\n      dialog: Missing\n")
    topic = folder / "topics" / "Broken.yaml"
    result = CliRunner().invoke(app, ["bot", "validate", str(topic)])
    assert result.exit_code == 1
    assert f"{topic}:10:7: BeginDialog to 'Missing', but there is no such topic" in result.output


def test_clean_bot_passes(tmp_path: Path) -> None:
    folder = make_bot(tmp_path, "    - kind: SendActivity\n      id: a1\n      activity: Hello\n")
    result = CliRunner().invoke(app, ["bot", "validate", str(folder)])
    assert result.exit_code == 0, result.output
    assert "No problems found." in result.output


def test_unsupported_copilot_kinds_are_named_not_crashed_on(tmp_path: Path) -> None:
    folder = make_bot(
        tmp_path,
        "    - kind: SearchAndSummarizeContent\n      id: a1\n      userInput: =System.Activity.Text\n",
    )
    assert (
        f"{folder}/topics/Broken.yaml:10:7: action kind 'SearchAndSummarizeContent' (Copilot Studio) is not "
        "supported by Warmline yet; see docs/topics.md" in messages(folder)
    )
