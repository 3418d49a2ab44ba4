"""Topics compiled to flat instruction lists, so dialog state is just (topic, program counter).

A flat program makes the state a conversation persists tiny and stable across restarts —
a frame is a topic name, an integer and the topic's variables — and makes ``GotoAction`` a jump.
"""

from __future__ import annotations

from dataclasses import dataclass

from warmline.bot.expressions import Expression
from warmline.bot.topics import Action, BotDefinition, ConditionGroup, GotoAction, Topic


@dataclass(frozen=True)
class Run:
    """Carry out one action."""

    action: Action


@dataclass(frozen=True)
class JumpUnless:
    """Go to ``target`` when ``condition`` is false (a ConditionGroup branch test)."""

    condition: Expression
    target: int
    action: Action


@dataclass(frozen=True)
class Jump:
    """Go to ``target`` (end of a branch, or a GotoAction)."""

    target: int


Instruction = Run | JumpUnless | Jump


@dataclass(frozen=True)
class Program:
    """One topic's instructions."""

    topic: Topic
    instructions: tuple[Instruction, ...]


def compile_topic(topic: Topic) -> Program:
    """Flatten a topic's actions; ConditionGroups become conditional jumps."""
    code: list[Instruction | None] = []
    labels: dict[str, int] = {}
    gotos: list[tuple[int, str]] = []

    def emit(actions: tuple[Action, ...]) -> None:
        for action in actions:
            if action.id:
                labels.setdefault(action.id, len(code))
            if isinstance(action, ConditionGroup):
                ends: list[int] = []
                for branch in action.branches:
                    test_at = len(code)
                    code.append(None)  # patched once the branch length is known
                    emit(branch.actions)
                    ends.append(len(code))
                    code.append(None)
                    code[test_at] = JumpUnless(branch.condition, len(code), action)
                emit(action.else_actions)
                for end in ends:
                    code[end] = Jump(len(code))
            elif isinstance(action, GotoAction):
                gotos.append((len(code), action.target))
                code.append(None)
            else:
                code.append(Run(action))

    emit(topic.actions)
    for at, target in gotos:
        # Validation refuses unknown targets; at run time an unknown one ends the topic.
        code[at] = Jump(labels.get(target, len(code)))
    instructions = tuple(i for i in code if i is not None)
    assert len(instructions) == len(code), "every placeholder is patched"
    return Program(topic, instructions)


def compile_bot(bot: BotDefinition) -> dict[str, Program]:
    """Every topic's program, by topic name."""
    return {name: compile_topic(topic) for name, topic in bot.topics.items()}
