"""Client-side verdicts of the shared rules table: checked before anything is sent (layer: config).

The rules themselves are rows of :data:`rtlab.protocol.rules.RULES`, which the emulator reads too; this module
turns a broken row into a :class:`RuleViolation` (a :class:`~rtlab.errors.ConfigError`) that names the field, the
model and the fix, in the words of the :class:`~rtlab.config.model.SessionConfig` a notebook wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rtlab.errors import ConfigError
from rtlab.protocol.rules import RULES, Rule, RuleInput
from rtlab.protocol.shapes import shape_of

from .model import DEFAULT_DIALECT, UNSET, SessionConfig, Transcription, TurnDetection
from .render import to_ga_session

__all__ = ["RULES", "RuleViolation", "rule_input", "validate", "violations"]


class RuleViolation(ConfigError):
    """A :class:`ConfigError` raised by a row of :data:`~rtlab.protocol.rules.RULES`; ``rule`` is the row's id."""

    def __init__(self, message: str, *, rule: str, field: str | None = None, model: str | None = None,
                 fix: str | None = None):
        self.rule = rule
        super().__init__(message, field=field, model=model, fix=fix)


def rule_input(config: SessionConfig, dialect: str = DEFAULT_DIALECT, *,
               deployments: Mapping[str, str] | None = None) -> RuleInput:
    """What the rules see for ``config`` sent in ``dialect`` (Azure ``deployments``: ``{name: model}``)."""
    provider = "azure" if dialect.startswith("azure") else "openai"
    return RuleInput.build(config.kind, to_ga_session(config), shape=shape_of(dialect), provider=provider,
                           deployments=deployments, session_model=config.model)


def _value(config: SessionConfig, path: str) -> Any:
    node: Any = config
    for part in path.split("."):
        node = getattr(node, part, None)
        if node is UNSET or node is None:
            return None
    return node


def _subject(rule: Rule, config: SessionConfig) -> str | None:
    tx = config.transcription.model if isinstance(config.transcription, Transcription) else None
    if rule.subject == "session" or (rule.subject == "auto" and config.kind == "realtime" and config.model):
        return config.model
    return tx


def _violation(rule: Rule, ctx: RuleInput, config: SessionConfig, dialect: str) -> RuleViolation:
    model = _subject(rule, config)
    value = config.turn_detection if rule.field == "turn_detection" else _value(config, rule.field)
    if isinstance(value, TurnDetection):
        value = value.type
    elif isinstance(value, tuple):
        value = list(value)
    names = {
        "value": "UNSET (server default)" if value is None and rule.field == "turn_detection" else value,
        "model": model,
        "models": rule.models_allowing(),
        "dialect": dialect,
        "deployments": ", ".join(sorted(ctx.deployments or {})) or "(none)",
    }
    if ctx.transcription_model and ctx.transcription_model != ctx.transcription_name and \
            rule.subject == "transcription":
        names["model"] = f"{model} (deployment of {ctx.transcription_model})"
    message = f"{rule.field}: {rule.message.format(**names)}"
    if model and model not in message:
        message += f" (model: {model})"
    return RuleViolation(message, rule=rule.id, field=rule.field, model=model, fix=rule.fix.format(**names))


def violations(config: SessionConfig, dialect: str = DEFAULT_DIALECT, *,
               deployments: Mapping[str, str] | None = None) -> list[RuleViolation]:
    """Every rule that ``config`` breaks in ``dialect``, in table order (empty when it may be sent)."""
    if not isinstance(config, SessionConfig):
        raise ConfigError(f"expected a SessionConfig, got {type(config).__name__}")
    ctx = rule_input(config, dialect, deployments=deployments)
    return [_violation(rule, ctx, config, dialect) for rule in RULES if rule.violated(ctx)]


def validate(config: SessionConfig, dialect: str = DEFAULT_DIALECT, *,
             deployments: Mapping[str, str] | None = None) -> None:
    """Raise the first :class:`RuleViolation` of ``config`` in ``dialect``; return None when it may be sent.

    Parameters
    ----------
    deployments
        Azure: ``{deployment_name: model}``. When given, the transcription model must be one of its names, and the
        capability rules judge the model it maps to. Ignored for OpenAI dialects.
    """
    found = violations(config, dialect, deployments=deployments)
    if found:
        raise found[0]
