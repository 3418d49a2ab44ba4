"""The dialog engine runs every supported action kind; the verbatim Copilot Studio example runs unchanged."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.bot.conftest import Chat, build
from warmline.bot.dialog import OutcomeKind
from warmline.bot.loader import read_bot_folder
from warmline.bot.publishing import check_bot
from warmline.bot.state import DialogState

VERBATIM = Path(__file__).parent / "fixtures" / "verbatim_lesson3.yaml"


def topic(actions: str, *, queries: str = "run the test", trigger: str = "OnRecognizedIntent") -> str:
    head = f"kind: AdaptiveDialog\nbeginDialog:\n  kind: {trigger}\n  id: main\n"
    if trigger == "OnRecognizedIntent":
        head += f"  intent:\n    displayName: Test\n    triggerQueries:\n      - {queries}\n"
    return head + "  actions:\n" + actions


async def test_verbatim_copilot_studio_example_loads_validates_and_runs() -> None:
    engine = build({"Lesson3": VERBATIM.read_text()})
    chat = await Chat(engine).start()
    assert await chat.say("I want to buy items") == [
        "I am happy to help you place your order.",
        "To what state will you be shipping?",
    ]
    assert await chat.say("Oregon") == []
    assert chat.var("Topic.State") == "Oregon"

    chat = await Chat(engine).start()
    await chat.say("purchase item")
    assert await chat.say("TX") == [
        "There will be an additional shipping charge of $27.50.",
        "Is that acceptable?",
    ]
    assert await chat.say("no") == ["Thank you and please come again."]
    assert chat.var("Topic.ShippingRateAccepted") is False


async def test_send_activity_variants_speak_cards_and_interpolation() -> None:
    engine = build(
        {
            "Cards": topic(
                "    - kind: SetVariable\n      id: s1\n      variable: init:Topic.Name\n      value: Pat\n"
                "    - kind: SendActivity\n      id: a1\n      activity:\n        text:\n"
                '          - "Hi **{Topic.Name}**, it\'s {Upper(Topic.Name)}!"\n'
                "        speak:\n          - Hi {Topic.Name}\n"
                "        attachments:\n          - kind: AdaptiveCardTemplate\n"
                '            cardContent: \'{"type": "AdaptiveCard", "version": "1.5", "body": []}\'\n'
                "    - kind: SendMessage\n      id: a2\n      message: legacy message\n"
            )
        }
    )
    chat = await Chat(engine).start()
    assert await chat.say("run the test") == ["Hi **Pat**, it's PAT!", "legacy message"]
    card_message = chat.activities[0]
    assert card_message.speak == "Hi Pat"
    assert card_message.text_format == "markdown"
    assert card_message.attachments is not None
    assert card_message.attachments[0].content_type == "application/vnd.microsoft.card.adaptive"
    assert card_message.attachments[0].content == {"type": "AdaptiveCard", "version": "1.5", "body": []}


QUESTION = (
    "    - kind: Question\n      id: q1\n      variable: init:Topic.Answer\n      prompt: Your answer?\n"
    "      entity: {entity}\n      invalidPrompt: Try again.\n      repeatCount: 1\n{extra}"
    '    - kind: SendActivity\n      id: done\n      activity: "Got {{Topic.Answer}}"\n'
)


@pytest.mark.parametrize(
    ("entity", "extra", "answer", "value", "shown"),
    [
        ("BooleanPrebuiltEntity", "", "yes please", True, "Got true"),
        ("NumberPrebuiltEntity", "", "about 42", 42, "Got 42"),
        ("EMailPrebuiltEntity", "", "mail me at pat@example.com", "pat@example.com", "Got pat@example.com"),
        ("StringPrebuiltEntity", "", "anything at all", "anything at all", "Got anything at all"),
        ("PhoneNumberPrebuiltEntity", "", "(425) 555-0100", "14255550100", "Got 14255550100"),
        ("StatePrebuiltEntity", "", "CA", "California", "Got California"),
        ("AgePrebuiltEntity", "", "I'm 42 years old", 42, "Got 42"),
        (
            "ChoicePrebuiltEntity",
            "      choiceOptions:\n        - Red\n        - value: Green\n          synonyms: [lime]\n",
            "lime please",
            "Green",
            "Got Green",
        ),
    ],
)
async def test_question_entities(entity: str, extra: str, answer: str, value: object, shown: str) -> None:
    engine = build({"Ask": topic(QUESTION.format(entity=entity, extra=extra))})
    chat = await Chat(engine).start()
    assert await chat.say("run the test") == ["Your answer?"]
    assert await chat.say(answer) == [shown]
    assert chat.var("Topic.Answer") == value


async def test_question_reprompts_then_escalates() -> None:
    engine = build({"Ask": topic(QUESTION.format(entity="NumberPrebuiltEntity", extra=""))})
    chat = await Chat(engine).start()
    await chat.say("run the test")
    assert await chat.say("no idea") == ["Try again."]
    said = await chat.say("still no idea")
    assert chat.outcome is not None and chat.outcome.kind is OutcomeKind.TRANSFER_TO_AGENT
    assert said[0].startswith("I'll connect you with a person")


async def test_question_default_value_after_failures() -> None:
    extra = "      defaultValue: 7\n"
    engine = build({"Ask": topic(QUESTION.format(entity="NumberPrebuiltEntity", extra=extra))})
    chat = await Chat(engine).start()
    await chat.say("run the test")
    await chat.say("x")
    assert await chat.say("y") == ["Got 7"]


async def test_question_is_skipped_when_variable_is_set_unless_always_prompt() -> None:
    body = (
        "    - kind: SetVariable\n      id: s\n      variable: init:Topic.Answer\n      value: preset\n"
        + QUESTION.format(entity="StringPrebuiltEntity", extra="")
    )
    chat = await Chat(build({"Ask": topic(body)})).start()
    assert await chat.say("run the test") == ["Got preset"]
    always = body.replace("      repeatCount: 1\n", "      repeatCount: 1\n      alwaysPrompt: true\n")
    chat = await Chat(build({"Ask": topic(always)})).start()
    assert await chat.say("run the test") == ["Your answer?"]


async def test_set_text_parse_value_env_and_phone_variables_on_messaging() -> None:
    body = (
        '    - kind: SetTextVariable\n      id: t\n      variable: init:Topic.Text\n      value: "{Env.Shop} rocks"\n'
        "    - kind: ParseValue\n      id: p\n      variable: init:Topic.Parsed\n      value: '{\"n\": 3}'\n"
        "      valueType: Record\n"
        "    - kind: ConditionGroup\n      id: c\n      conditions:\n        - id: messaging\n"
        "          condition: =IsBlank(bot.CustomerPhoneNumber)\n          actions:\n"
        '            - kind: SendActivity\n              id: m\n              activity: "{Topic.Text}: messaging"\n'
        "      elseActions:\n        - kind: SendActivity\n          id: v\n          activity: voice\n"
    )
    engine = build({"T": topic(body)}, bot_yaml="name: B\nenv:\n  Shop: Contoso\n")
    chat = await Chat(engine).start()
    assert await chat.say("run the test") == ["Contoso rocks: messaging"]
    assert chat.var("Topic.Parsed") == {"n": 3}
    voice = await Chat(engine, customer_phone="14255550100", channel="voice").start()
    assert await voice.say("run the test") == ["voice"]


async def test_begin_dialog_inputs_outputs_replace_and_end_dialog() -> None:
    caller = topic(
        "    - kind: BeginDialog\n      id: call\n      dialog: cr_bot.topic.Double\n"
        "      input:\n        binding:\n          Value: =21\n"
        "      output:\n        binding:\n          Result: Topic.Doubled\n"
        '    - kind: SendActivity\n      id: say\n      activity: "doubled: {Topic.Doubled}"\n'
        "    - kind: ReplaceDialog\n      id: swap\n      dialog: Final\n"
        "    - kind: SendActivity\n      id: never\n      activity: never said\n"
    )
    double = (
        "kind: AdaptiveDialog\ninputType:\n  properties:\n    Value:\n      type: Number\n"
        "outputType:\n  properties:\n    Result:\n      type: Number\n"
        "beginDialog:\n  kind: OnSystemRedirect\n  id: main\n  actions:\n"
        "    - kind: SetVariable\n      id: s\n      variable: Topic.Result\n      value: =Topic.Value * 2\n"
        "    - kind: EndDialog\n      id: e\n"
        "    - kind: SendActivity\n      id: x\n      activity: after end\n"
    )
    final = topic(
        "    - kind: SendActivity\n      id: f\n      activity: final topic\n", trigger="OnSystemRedirect"
    )
    chat = await Chat(build({"Caller": caller, "Double": double, "Final": final})).start()
    assert await chat.say("run the test") == ["doubled: 42", "final topic"]


async def test_goto_cancel_all_clear_all_and_end_conversation() -> None:
    body = (
        "    - kind: SetVariable\n      id: s\n      variable: Global.Kept\n      value: =1\n"
        "    - kind: GotoAction\n      id: g\n      actionId: later\n"
        "    - kind: SendActivity\n      id: skipped\n      activity: skipped\n"
        "    - kind: SendActivity\n      id: later\n      activity: jumped\n"
        "    - kind: ClearAllVariables\n      id: clear\n"
        '    - kind: SendActivity\n      id: bye\n      activity: "cleared {IsBlank(Global.Kept)}"\n'
        "    - kind: EndConversation\n      id: end\n"
    )
    chat = await Chat(build({"T": topic(body)})).start()
    assert await chat.say("run the test") == ["jumped", "cleared true"]
    assert chat.outcome is not None and chat.outcome.kind is OutcomeKind.END_CONVERSATION
    assert chat.activities[-1].type == "endOfConversation"
    cancel = topic(
        "    - kind: CancelAllDialogs\n      id: c\n    - kind: SendActivity\n      id: s\n      activity: never\n"
    )
    chat = await Chat(build({"T": cancel})).start()
    assert await chat.say("run the test") == []


async def test_csat_question_stores_a_score() -> None:
    body = "    - kind: CSATQuestion\n      id: csat\n      variable: init:Global.Score\n"
    chat = await Chat(build({"T": topic(body)})).start()
    said = await chat.say("run the test")
    assert "1 (poor) to 5" in said[0]
    assert await chat.say("9") == [said[0]]
    await chat.say("4")
    assert chat.var("Global.Score") == 4


async def test_transfer_to_agent_with_message_and_manual_context() -> None:
    body = (
        '    - kind: SetVariable\n      id: s\n      variable: init:Topic.Order\n      value: "123"\n'
        "    - kind: TransferConversationV2\n      id: t\n      transferType:\n        kind: TransferToAgent\n"
        '        messageToAgent: "Order {Topic.Order}"\n        context:\n          kind: ManualTransferContext\n'
        "          contextVariables:\n            Priority: high\n"
    )
    chat = await Chat(build({"T": topic(body)})).start()
    await chat.say("run the test")
    assert chat.outcome is not None
    assert chat.outcome.kind is OutcomeKind.TRANSFER_TO_AGENT
    assert chat.outcome.message_to_agent == "Order 123"
    assert chat.outcome.variables["Topic.Order"] == "123"
    assert chat.outcome.variables["Priority"] == "high"


VOICE_BOT = "name: Voice\nsettings:\n  voiceEnabled: true\n"


@pytest.mark.parametrize(
    ("action", "kind", "field", "value"),
    [
        (
            "    - kind: TransferConversationV2\n      id: t\n      transferType:\n        kind: TransferToPhoneNumber\n"
            '        phoneNumber: "15550199"\n',
            OutcomeKind.TRANSFER_TO_PHONE_NUMBER,
            "phone_number",
            "15550199",
        ),
        (
            '    - kind: TransferCallToPhoneNumber\n      id: t\n      TargetPhoneNumber: "15550199"\n',
            OutcomeKind.TRANSFER_TO_PHONE_NUMBER,
            "phone_number",
            "15550199",
        ),
        (
            "    - kind: SetCustomerLocaleAndTransfer\n      id: t\n      customerLocale: fr-FR\n",
            OutcomeKind.TRANSFER_TO_AGENT,
            "locale",
            "fr-FR",
        ),
        ("    - kind: HangUp\n      id: t\n", OutcomeKind.HANG_UP, "phone_number", None),
    ],
)
async def test_telephony_outcomes(action: str, kind: OutcomeKind, field: str, value: object) -> None:
    chat = await Chat(build({"T": topic(action)}, bot_yaml=VOICE_BOT)).start()
    await chat.say("run the test")
    assert chat.outcome is not None and chat.outcome.kind is kind
    assert getattr(chat.outcome, field) == value


async def test_survey_consent_and_uninterruptible_message() -> None:
    body = (
        "    - kind: SetSurveyConsent\n      id: s\n      surveyConsent: =true\n"
        "    - kind: SendUninterruptibleMessage\n      id: u\n      UninterruptibleMessage: Please hold.\n"
    )
    chat = await Chat(build({"T": topic(body)}, bot_yaml=VOICE_BOT)).start()
    assert await chat.say("run the test") == ["Please hold."]
    assert chat.activities[0].channel_data == {"warmline": {"uninterruptible": True}}
    assert chat.state.globals["Global.va_SurveyConsent"] is True


class RecordingHttp:
    def __init__(self, status: int = 200, body: str = '{"status": "shipped"}') -> None:
        self.calls: list[tuple[str, str, Mapping[str, str], str | None]] = []
        self.status, self.body = status, body

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: str | None, timeout_seconds: float
    ) -> tuple[int, str]:
        self.calls.append((method, url, headers, body))
        return self.status, self.body


HTTP_TOPIC = topic(
    "    - kind: HttpRequestAction\n      id: h\n      method: POST\n"
    '      url: "https://api.contoso.example/orders/{System.Conversation.Id}"\n'
    "      headers:\n        X-Shop: contoso\n      body:\n        kind: JsonRequestContent\n        content:\n          a: 1\n"
    "      response: init:Topic.Order\n      responseSchema:\n        kind: Record\n"
    '    - kind: SendActivity\n      id: s\n      activity: "Status: {Topic.Order.status}"\n'
)


async def test_http_request_to_an_allowed_host() -> None:
    http = RecordingHttp()
    bot_yaml = "name: H\nsettings:\n  allowedHttpHosts:\n    - api.contoso.example\n"
    chat = await Chat(build({"T": HTTP_TOPIC}, bot_yaml=bot_yaml, http=http)).start()
    assert await chat.say("run the test") == ["Status: shipped"]
    assert http.calls[0][0:2] == ("POST", "https://api.contoso.example/orders/c-test")
    assert http.calls[0][2] == {"X-Shop": "contoso"}
    assert http.calls[0][3] == '{"a": 1}'


def test_http_request_to_a_host_not_allowed_is_refused_at_validation() -> None:
    files = {"bot.yaml": "name: H\n", "topics/T.yaml": HTTP_TOPIC}
    _, problems = check_bot(files)
    assert any("host 'api.contoso.example' is not in settings.allowedHttpHosts" in str(p) for p in problems)


async def test_http_failure_runs_the_on_error_topic() -> None:
    http = RecordingHttp(status=500, body="boom")
    bot_yaml = "name: H\nsettings:\n  allowedHttpHosts:\n    - api.contoso.example\n"
    chat = await Chat(build({"T": HTTP_TOPIC}, bot_yaml=bot_yaml, http=http)).start()
    said = await chat.say("run the test")
    assert said == ["Sorry, something went wrong (HttpError). Conversation id: c-test."]
    assert chat.state.frames == []


async def test_interruption_switches_topic_and_comes_back() -> None:
    ask = topic(QUESTION.format(entity="NumberPrebuiltEntity", extra=""), queries="how many")
    hours = topic(
        "    - kind: SendActivity\n      id: h\n      activity: We open at nine.\n", queries="opening hours"
    )
    chat = await Chat(build({"Ask": ask, "Hours": hours})).start()
    await chat.say("how many")
    assert await chat.say("what are your opening hours") == ["We open at nine.", "Your answer?"]
    assert await chat.say("3") == ["Got 3"]


async def test_no_interruption_when_the_policy_forbids_it() -> None:
    body = QUESTION.format(
        entity="NumberPrebuiltEntity",
        extra="      interruptionPolicy:\n        allowInterruption: false\n",
    ).replace("repeatCount: 1", "repeatCount: 3")
    hours = topic(
        "    - kind: SendActivity\n      id: h\n      activity: We open at nine.\n", queries="opening hours"
    )
    chat = await Chat(build({"Ask": topic(body, queries="how many"), "Hours": hours})).start()
    await chat.say("how many")
    assert await chat.say("what are your opening hours") == ["Try again."]


async def test_fallback_escalates_after_three_misses() -> None:
    chat = await Chat(build({"T": topic("    - kind: EndDialog\n      id: e\n")})).start()
    for _ in range(2):
        said = await chat.say("zzz qqq")
        assert said == ["I'm sorry, I'm not sure how to help with that. Can you try rephrasing?"]
    said = await chat.say("zzz qqq")
    assert chat.state.fallback_count == 3
    assert said[0].startswith("I'll connect you with a person")
    assert chat.outcome is not None and chat.outcome.kind is OutcomeKind.TRANSFER_TO_AGENT


async def test_did_you_mean_when_two_topics_are_close() -> None:
    first = topic(
        "    - kind: SendActivity\n      id: a\n      activity: billing topic\n", queries="billing question"
    ).replace("displayName: Test", "displayName: Billing")
    second = topic(
        "    - kind: SendActivity\n      id: a\n      activity: billing address topic\n",
        queries="billing question help",
    ).replace("displayName: Test", "displayName: Billing address")
    chat = await Chat(build({"One": first, "Two": second})).start()
    said = await chat.say("billing question")
    if said == ["Did you mean:"]:
        titles = [a["title"] for a in (chat.activities[0].suggested_actions or {})["actions"]]
        assert "None of these" in titles
        assert await chat.say("Billing address") == ["billing address topic"]
    else:
        assert said[0] in {"billing topic", "billing address topic"}


async def test_state_survives_a_json_round_trip_mid_question() -> None:
    engine = build({"Ask": topic(QUESTION.format(entity="NumberPrebuiltEntity", extra=""))})
    chat = await Chat(engine).start()
    await chat.say("run the test")
    chat.state = DialogState.from_json(chat.state.to_json())
    assert await chat.say("12") == ["Got 12"]


def test_demo_bot_and_system_topics_validate_cleanly() -> None:
    folder = Path(__file__).parents[2] / "src" / "warmline" / "demo_bot"
    _, problems = check_bot(read_bot_folder(folder), root=str(folder))
    assert [str(p) for p in problems] == []
