"""``warmline config apply|show``: precise file:line:col errors, nothing written on refusal, idempotence."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from click.testing import Result
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.routing.factories import NOW, make_conversation
from tests.support import TEST_SECRET, DatabaseUnderTest
from warmline.cli import app
from warmline.demo import DEMO_CONTACT_CENTER, seed_demo
from warmline.events import InProcessBus
from warmline.routing.actions import do_route_conversation, do_set_presence
from warmline.routing.config import get_config
from warmline.routing.config_file import ConfigFileError, dump_contact_center, read_contact_center
from warmline.store import Database
from warmline.store.schema import AgentRow, ConversationRow, OfferRow, QueueMemberRow, RoutingConfigRow

BASE = """\
environment: env1
operating_hours:
  - id: office
    name: Office
    timezone: Europe/Paris
    week:
      monday: [["09:00", "17:00"]]
    holidays:
      - {name: Christmas, start: 2026-12-24, end: 2026-12-26}
      - {name: New Year, start: 2027-01-01}
skills:
  - {id: billing, name: Billing}
capacity_profiles:
  - {id: chat2, name: Two chats, messaging: 2, voice: 1}
queues:
  - id: general
    name: General
  - id: vip
    name: VIP
    priority: 1
    operating_hours: office
workstreams:
  - id: chat
    name: Web chat
    fallback_queue: general
    capacity_units: 1
    rules:
      - name: gold
        condition: =Context.CustomerTier = "gold"
        queue: vip
agents:
  - id: ava
    name: Ava
    password: secret-1
    capacity_profile: chat2
    skills: {billing: 5}
    queues: [general, vip]
"""


def at(text: str, needle: str, offset: int = 0) -> str:
    """``line:col`` (1-based) of the first ``needle`` in ``text``, plus ``offset`` columns."""
    index = text.index(needle)
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"{line}:{column + offset}"


def cli(database: DatabaseUnderTest, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=database.env())


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cc.yaml"
    path.write_text(text, encoding="utf-8")
    return path


async def _stored(
    database: DatabaseUnderTest, environment: str = "env1"
) -> tuple[int, dict[str, object] | None]:
    db = Database(database.url, InProcessBus(), schema=database.schema)
    try:
        async with db.reading() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(RoutingConfigRow)
                .where(RoutingConfigRow.environment_id == environment)
            )
            config = await get_config(session, environment)
        return count or 0, config.document.model_dump(mode="json") if config else None
    finally:
        await db.dispose()


def stored(database: DatabaseUnderTest, environment: str = "env1") -> tuple[int, dict[str, object] | None]:
    """(number of stored versions, newest document)."""
    return asyncio.run(_stored(database, environment))


def refused(database: DatabaseUnderTest, tmp_path: Path, text: str) -> list[str]:
    """Apply a broken file: exit 1, nothing changed; the problem lines, relative to the file."""
    before = stored(database)
    result = cli(database, "config", "apply", str(write(tmp_path, text)))
    assert result.exit_code == 1, result.output
    assert stored(database) == before
    prefix = f"{tmp_path / 'cc.yaml'}:"
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("Nothing applied: ")
    return [line.removeprefix(prefix) for line in lines[:-1]]


@pytest.fixture
def applied(database: DatabaseUnderTest, tmp_path: Path) -> DatabaseUnderTest:
    """A database holding version 1 of BASE (so refusals must leave a real version untouched)."""
    result = cli(database, "config", "apply", str(write(tmp_path, BASE)))
    assert result.exit_code == 0, result.output
    assert stored(database)[0] == 1
    return database


BROKEN = [
    pytest.param(
        ("queue: vip\nagents", "queue: vip2\nagents"),
        ("queue: vip2\nagents", 7),
        "workstreams[0].rules[0].queue: unknown queue 'vip2'",
        id="unknown-queue-in-rule",
    ),
    pytest.param(
        ('condition: =Context.CustomerTier = "gold"', "condition: =Context.CustomerTier = "),
        ("condition: =Context.CustomerTier = \n", 11 + 23),
        "workstreams[0].rules[0].condition: bad condition at column 23: the expression ends too early: "
        "a value is missing",
        id="bad-expression",
    ),
    pytest.param(
        ('condition: =Context.CustomerTier = "gold"', 'condition: =Custom.Tier = "gold"'),
        ("Custom.Tier", 0),
        "workstreams[0].rules[0].condition: unknown name 'Custom.Tier' in condition (use Context.<name>, "
        "Conversation.Channel, Conversation.Locale, Conversation.IsAuthenticated, Global.<name>, "
        "Topic.<name>, va_*, msdyn_*)",
        id="unknown-name-in-condition",
    ),
    pytest.param(
        ("    name: Web chat\n", "    name: Web chat\n    type: voice\n    distribution: pick\n"),
        ("pick", 0),
        "workstreams[0]: a voice workstream must use push distribution",
        id="voice-workstream-with-pick",
    ),
    pytest.param(
        ("capacity_units: 1", "capacity_units: -1"),
        ("capacity_units: -1", 16),
        "workstreams[0].capacity_units: input should be greater than or equal to 0 (got '-1')",
        id="capacity-below-zero",
    ),
    pytest.param(
        ("messaging: 2", "messaging: -2"),
        ("messaging: -2", 11),
        "capacity_profiles[0].messaging: input should be greater than or equal to 0 (got '-2')",
        id="profile-capacity-below-zero",
    ),
    pytest.param(
        ("start: 2027-01-01", "start: 2026-12-26"),
        ("{name: New Year", 0),
        "operating_hours[0]: holidays 'Christmas' and 'New Year' overlap",
        id="overlapping-holidays",
    ),
    pytest.param(
        ("queues:\n", "queues:\n  - {id: vip, name: Another VIP}\n"),
        ("vip\n    name: VIP", 0),
        "queues[2].id: queue id 'vip' is used twice",
        id="duplicate-ids",
    ),
    pytest.param(
        ("skills: {billing: 5}", "skills: {billing: 5, cooking: 3}"),
        ("cooking", 0),
        "agents[0].skills: unknown skill 'cooking'",
        id="unknown-skill",
    ),
    pytest.param(
        ("operating_hours: office", "operating_hours: office-hours"),
        ("office-hours", 0),
        "queues[1].operating_hours: unknown operating hours 'office-hours'",
        id="unknown-operating-hours",
    ),
    pytest.param(
        (
            "    priority: 1\n",
            "    priority: 1\n    in_queue_overflow: {wait_seconds: 600, action: {kind: voicemail}}\n",
        ),
        ("voicemail", 0),
        "queues[1].in_queue_overflow.action.kind: voicemail is only for voice queues",
        id="voicemail-on-messaging-queue",
    ),
    pytest.param(
        ("capacity_units: 1", "capacity_unit: 1"),
        ("capacity_unit:", 0),
        "workstreams[0].capacity_unit: unknown field 'capacity_unit' (did you mean 'capacity_units'?)",
        id="misspelt-field",
    ),
    pytest.param(
        ("    priority: 1\n", "    priority: 1\n    priority: 2\n"),
        ("priority: 2", 0),
        "queues[1].priority: duplicate key 'priority'",
        id="duplicate-key",
    ),
]


@pytest.mark.parametrize(("edit", "where", "expected"), BROKEN)
def test_a_broken_file_is_refused_with_its_position_and_changes_nothing(
    applied: DatabaseUnderTest,
    tmp_path: Path,
    edit: tuple[str, str],
    where: tuple[str, int],
    expected: str,
) -> None:
    old, new = edit
    assert old in BASE
    text = BASE.replace(old, new, 1)
    assert refused(applied, tmp_path, text) == [f"{at(text, where[0], where[1])}: {expected}"]


def test_every_problem_is_reported_at_once_in_file_order(applied: DatabaseUnderTest, tmp_path: Path) -> None:
    text = BASE.replace("queue: vip\nagents", "queue: vip2\nagents").replace(
        "skills: {billing: 5}", "skills: {billing: 5, cooking: 3}"
    )
    assert refused(applied, tmp_path, text) == [
        f"{at(text, 'vip2')}: workstreams[0].rules[0].queue: unknown queue 'vip2'",
        f"{at(text, 'cooking')}: agents[0].skills: unknown skill 'cooking'",
    ]


def test_a_yaml_syntax_error_has_its_position(applied: DatabaseUnderTest, tmp_path: Path) -> None:
    text = BASE.replace("  - id: general\n    name: General\n", "  - id: general\n   name: General\n")
    [problem] = refused(applied, tmp_path, text)
    assert problem.startswith(f"{at(text, 'name: General')}: invalid YAML: ")


def test_a_missing_required_field_points_at_its_item(applied: DatabaseUnderTest, tmp_path: Path) -> None:
    text = BASE.replace("    fallback_queue: general\n", "")
    workstream = at(text, "id: chat\n")
    assert refused(applied, tmp_path, text) == [
        f"{workstream}: workstreams[0].fallback_queue: missing required field 'fallback_queue'"
    ]


def test_an_empty_list_key_says_how_to_write_none(applied: DatabaseUnderTest, tmp_path: Path) -> None:
    text = BASE.replace("skills:\n  - {id: billing, name: Billing}\n", "skills:\n").replace(
        "    skills: {billing: 5}\n", ""
    )
    assert refused(applied, tmp_path, text) == [
        f"{at(text, 'skills:')}: skills: has no value (write [] for none, or leave the key out)"
    ]


def test_a_file_that_is_not_a_mapping_is_refused(applied: DatabaseUnderTest, tmp_path: Path) -> None:
    [problem] = refused(applied, tmp_path, "- just\n- a list\n")
    assert problem.startswith("1:1: the file must be a mapping")


def test_a_workstream_keeps_its_distribution_after_creation(
    applied: DatabaseUnderTest, tmp_path: Path
) -> None:
    # Valid on its own, refused against the running system (D365: the mode can't be edited later).
    text = BASE.replace(
        "    fallback_queue: general\n", "    distribution: pick\n    fallback_queue: general\n"
    )
    assert refused(applied, tmp_path, text) == [
        f"{at(text, 'pick')}: workstreams[0].distribution: a workstream's distribution is fixed after "
        "creation ('chat' is push); create a new workstream instead"
    ]


def test_a_queue_with_conversations_in_it_cannot_be_removed(
    applied: DatabaseUnderTest, tmp_path: Path
) -> None:
    async def queue_one() -> None:
        db = Database(applied.url, InProcessBus(), schema=applied.schema)
        try:
            await make_conversation(db, "c1")
            async with db.transaction() as tx:
                await do_route_conversation(
                    tx,
                    "c1",
                    environment="env1",
                    workstream_id="chat",
                    variables={"Context.CustomerTier": "gold"},
                    now=NOW,
                )
        finally:
            await db.dispose()

    asyncio.run(queue_one())
    text = (
        BASE.replace("  - id: vip\n    name: VIP\n    priority: 1\n    operating_hours: office\n", "")
        .replace("queue: vip\nagents", "queue: general\nagents")
        .replace("[general, vip]", "[general]")
    )
    assert refused(applied, tmp_path, text) == [
        f"{at(text, '- id: general')}: queues: queue 'vip' cannot be removed: 1 conversation(s) in it are "
        "not closed yet (transfer or close them first)"
    ]


def test_apply_prints_the_diff_and_a_second_apply_changes_nothing(
    database: DatabaseUnderTest, tmp_path: Path
) -> None:
    path = write(tmp_path, BASE)
    first = cli(database, "config", "apply", str(path))
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == [
        "+ operating_hours office",
        "+ skills billing",
        "+ capacity_profiles chat2",
        "+ queues general",
        "+ queues vip",
        "+ workstreams chat",
        "+ agents ava",
        "Applied: environment 'env1' is at version 1.",
    ]
    # The agent's password is unchanged, so applying the same file again is a no-op.
    second = cli(database, "config", "apply", str(path))
    assert second.exit_code == 0, second.output
    assert second.stdout.splitlines() == ["No changes: environment 'env1' is at version 1."]
    assert stored(database)[0] == 1


def test_changes_show_as_added_changed_and_removed(applied: DatabaseUnderTest, tmp_path: Path) -> None:
    text = (
        BASE.replace("    name: VIP\n", "    name: Very important\n")
        .replace(
            "  - {id: billing, name: Billing}\n",
            "  - {id: billing, name: Billing}\n  - {id: french, name: French}\n",
        )
        .replace(
            "capacity_profiles:\n  - {id: chat2, name: Two chats, messaging: 2, voice: 1}\n",
            "capacity_profiles: []\n",
        )
        .replace("    capacity_profile: chat2\n", "")
    )
    result = cli(applied, "config", "apply", str(write(tmp_path, text)))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "+ skills french",
        "- capacity_profiles chat2",
        "~ queues vip",
        "~ agents ava",
        "Applied: environment 'env1' is at version 2.",
    ]
    count, document = stored(applied)
    assert count == 2 and document is not None
    assert [q["name"] for q in document["queues"]] == ["General", "Very important"]  # type: ignore[index]


def test_a_new_password_is_a_change(applied: DatabaseUnderTest, tmp_path: Path) -> None:
    result = cli(applied, "config", "apply", str(write(tmp_path, BASE.replace("secret-1", "secret-2"))))
    assert result.stdout.splitlines() == ["~ agents ava", "Applied: environment 'env1' is at version 2."]

    async def password_hash() -> str | None:
        db = Database(applied.url, InProcessBus(), schema=applied.schema)
        try:
            async with db.reading() as session:
                row = await session.get(AgentRow, ("env1", "ava"))
            return row.password_hash if row else None
        finally:
            await db.dispose()

    stored_hash = asyncio.run(password_hash())
    assert stored_hash is not None and PasswordHasher().verify(stored_hash, "secret-2")
    count, document = stored(applied)
    assert count == 2 and document is not None
    assert "secret" not in str(document)  # the document never holds passwords


def test_dry_run_prints_the_diff_and_writes_nothing(database: DatabaseUnderTest, tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    result = cli(database, "config", "apply", "--dry-run", str(path))
    assert result.exit_code == 0, result.output
    assert (
        result.stdout.splitlines()[-1]
        == "Dry run: applying would store version 1 of 'env1'; nothing changed."
    )
    assert "+ queues vip" in result.stdout.splitlines()
    assert stored(database) == (0, None)

    assert cli(database, "config", "apply", str(path)).exit_code == 0
    path.write_text(BASE.replace("priority: 1", "priority: 2"), encoding="utf-8")
    result = cli(database, "config", "apply", "--dry-run", str(path))
    assert result.stdout.splitlines() == [
        "~ queues vip",
        "Dry run: applying would store version 2 of 'env1'; nothing changed.",
    ]
    count, document = stored(database)
    assert count == 1 and document is not None
    assert document["queues"][1]["priority"] == 1  # type: ignore[index]


def test_dry_run_refuses_what_apply_would_refuse(applied: DatabaseUnderTest, tmp_path: Path) -> None:
    text = BASE.replace("queue: vip\nagents", "queue: vip2\nagents")
    result = cli(applied, "config", "apply", "--dry-run", str(write(tmp_path, text)))
    assert result.exit_code == 1
    assert "workstreams[0].rules[0].queue: unknown queue 'vip2'" in result.stderr


def test_show_prints_yaml_that_applies_back_unchanged(applied: DatabaseUnderTest, tmp_path: Path) -> None:
    shown = cli(applied, "config", "show", "env1")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith("# environment 'env1', version 1\n")
    assert "password" not in shown.stdout
    path = tmp_path / "shown.yaml"
    path.write_text(shown.stdout, encoding="utf-8")
    again = cli(applied, "config", "apply", str(path))
    assert again.stdout.splitlines() == ["No changes: environment 'env1' is at version 1."]


def test_show_of_an_unknown_environment_fails(database: DatabaseUnderTest) -> None:
    result = cli(database, "config", "show", "nowhere")
    assert result.exit_code == 1
    assert "Environment 'nowhere' has no routing configuration." in result.stderr


def test_a_missing_file_is_reported(database: DatabaseUnderTest, tmp_path: Path) -> None:
    result = cli(database, "config", "apply", str(tmp_path / "absent.yaml"))
    assert result.exit_code == 1
    assert f"{tmp_path / 'absent.yaml'}:1:1: cannot read the file" in result.stderr


def test_scalars_stay_text_so_yaml_1_1_surprises_do_not_reach_the_model() -> None:
    # Unquoted 09:00 is the number 540 in YAML 1.1, and "no" is false; here both stay what was written.
    text = BASE.replace('[["09:00", "17:00"]]', "[[09:00, 17:00]]").replace("name: General", "name: no")
    document = read_contact_center(text, "cc.yaml").document
    assert document.operating_hours[0].week["monday"] == [("09:00", "17:00")]
    assert document.queues[0].name == "no"


def test_aliases_cannot_blow_up_the_reader() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 9)
    ]
    with pytest.raises(ConfigFileError, match="expands to more than"):
        read_contact_center("\n".join([*lines, "environment: env1"]), "bomb.yaml")


def test_dump_round_trips_the_demo_file() -> None:
    document = read_contact_center(DEMO_CONTACT_CENTER.read_text(encoding="utf-8"), "demo.yaml").document
    again = read_contact_center(dump_contact_center(document), "dumped.yaml").document
    assert again.model_dump(exclude={"agents": {"__all__": {"password"}}}) == document.model_dump(
        exclude={"agents": {"__all__": {"password"}}}
    )


def test_the_demo_file_applies_cleanly(database: DatabaseUnderTest) -> None:
    result = cli(database, "config", "apply", str(DEMO_CONTACT_CENTER))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "Applied: environment 'demo' is at version 1."
    assert cli(database, "config", "apply", str(DEMO_CONTACT_CENTER)).stdout.startswith("No changes")


async def test_the_demo_seeds_a_contact_center_its_bot_hands_off_into(db: Database) -> None:
    await seed_demo(db, TEST_SECRET, NOW, with_bot=True)
    await seed_demo(db, TEST_SECRET, NOW + timedelta(minutes=1), with_bot=True)  # every demo start
    async with db.reading() as session:
        config = await get_config(session, "demo")
        agents = {
            a.id: a for a in await session.scalars(select(AgentRow).where(AgentRow.environment_id == "demo"))
        }
        members = {(m.queue_id, m.agent_id) for m in await session.scalars(select(QueueMemberRow))}
    assert config is not None and config.version == 1
    assert set(agents) == {"ava", "ben", "sam"}
    assert all(PasswordHasher().verify(agents[a].password_hash or "", "demo") for a in agents)
    assert config.agents["sam"].roles == ["supervisor"]
    assert {
        ("general", "ava"),
        ("general", "ben"),
        ("orders", "ava"),
        ("orders", "ben"),
        ("vip", "ava"),
    } <= members
    workstream = config.workstreams["demo-messaging"]
    assert (workstream.bot, workstream.distribution.value) == ("contoso-retail", "push")
    assert config.workstreams["demo-voice"].type.value == "voice"

    async def hand_off(
        conversation_id: str, variables: dict[str, object], now: object = NOW
    ) -> tuple[str | None, str]:
        await make_conversation(db, conversation_id)
        async with db.transaction() as tx:
            decision = await do_route_conversation(
                tx,
                conversation_id,
                environment="demo",
                workstream_id="demo-messaging",
                variables=variables,
                now=now,
            )
        async with db.reading() as session:
            offer = await session.scalar(select(OfferRow).where(OfferRow.conversation_id == conversation_id))
        assert offer is not None, f"nobody was offered {conversation_id}"
        return decision.queue_id, offer.agent_id

    for agent_id in ("ava", "ben"):
        async with db.transaction() as tx:
            await do_set_presence(tx, "demo", agent_id, "Available", NOW)
    # NOW is a Thursday morning in London: the orders queue is open.
    assert (await hand_off("gold", {"Context.CustomerTier": "gold", "Global.OrderNumber": "1"}))[0] == "vip"
    assert (await hand_off("order", {"Global.OrderNumber": "12345"}))[0] == "orders"
    assert (await hand_off("other", {"Global.OrderNumber": None}))[0] == "general"
    # On Sunday the orders queue is closed, and its out-of-hours overflow sends the chat to general.
    sunday = NOW + timedelta(days=3)
    queue, _ = await hand_off("sunday", {"Global.OrderNumber": "777"}, sunday)
    async with db.reading() as session:
        row = await session.get(ConversationRow, "sunday")
    assert queue == "general" and row is not None and row.queue_id == "general"
