"""Learner checks for the notebooks' exercises: a pass line, or one targeted hint, never a traceback.

Layer: views. A notebook's exercise leaves the learner's answer in a variable; a check cell calls::

    from rtlab import teach
    teach.check("session_wer", session_wer, turns=turns)

:func:`check` prints one line and returns a :class:`Verdict`:

- ``pass``: the answer is right (the line says what it shows);
- ``not yet``: the variable is still blank (``None``, ``...``, or an empty string, list or dict);
- ``hint``: the answer is wrong, and the line names the likely mistake (a percentage instead of a fraction, the
  GA name instead of the preview one, swapped values...). A wrong type, ``None``, or an object that raises when
  looked at all give a hint, not a traceback.

The expected values are computed from the learner's own notebook state (the ``turns`` table, the probe frame...)
passed as keyword arguments, so a check stays right when the emulator or a real service gives other numbers.

Adding an exercise is one row of :data:`EXERCISES` (its name, notebook, answer variables, and the notebook
expressions the check needs) and one function ``(*answers, **context) -> pass message`` that raises
:class:`Hint` for each mistake it recognises. ``rtlab workshop build`` (:mod:`rtlab.workshop`) writes the check
cells of the student notebooks from the same rows (:meth:`Exercise.call`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import RtlabError

__all__ = ["EXERCISES", "Exercise", "Hint", "TeachError", "Verdict", "check", "exercise_for"]

Status = Literal["pass", "not yet", "hint"]


class TeachError(RtlabError):
    """A check was called wrongly (unknown exercise, wrong number of answers): a notebook author's mistake."""


class Hint(Exception):  # noqa: N818 - a hint is what the learner reads, not an error of the program
    """Raised by a check function: the answer is wrong in the way the message explains."""


@dataclass(frozen=True)
class Verdict:
    """What :func:`check` found: ``status`` is ``"pass"``, ``"not yet"`` or ``"hint"``.

    True only when passed, so a teacher notebook can ``assert teach.check(...)``. Displaying a verdict shows
    nothing (:func:`check` has printed it already); ``str(verdict)`` is the printed line.
    """

    exercise: str
    status: Status
    message: str

    def __bool__(self) -> bool:
        return self.status == "pass"

    def __str__(self) -> str:
        return f"{self.exercise}: {self.status} — {self.message}"

    def _ipython_display_(self) -> None:
        pass


@dataclass(frozen=True)
class Exercise:
    """One exercise: where it is, which variables hold the answer, what the check needs, and the check.

    Parameters
    ----------
    name : str
        What :func:`check` is called with.
    notebook : str
        Stem of the notebook it is in (``"00_quickstart"``).
    answers : tuple of str
        The learner's variables, in the order the check takes them.
    context : dict
        Keyword argument of the check -> the notebook expression that gives it (``{"frame": "seed.frame"}``).
    run : callable
        ``run(*answers, **context)`` returns the pass message or raises :class:`Hint`.
    """

    name: str
    notebook: str
    answers: tuple[str, ...]
    context: Mapping[str, str]
    run: Callable[..., str] = field(repr=False)

    def call(self) -> str:
        """The check call a student notebook runs (``teach.check("name", answer, key=expression)``)."""
        args = [repr(self.name), *self.answers, *(f"{k}={v}" for k, v in self.context.items())]
        return f"teach.check({', '.join(args)})"


# --------------------------------------------------------------------------------------------------
# Helpers for check functions
# --------------------------------------------------------------------------------------------------
def _blank(value: Any) -> bool:
    if value is None or value is Ellipsis:
        return True
    if isinstance(value, str | list | tuple | dict | set | frozenset):
        return len(value) == 0
    return False


def _number(value: Any, name: str) -> float:
    """The answer as a float, or a hint saying it should be one number."""
    import numpy as np
    import pandas as pd

    if isinstance(value, bool):
        raise Hint(f"`{name}` should be a number, not {value!r}")
    if isinstance(value, pd.Series | pd.DataFrame | np.ndarray | list | tuple):
        raise Hint(f"`{name}` should be one number; you have a {type(value).__name__} of {len(value)} values — "
                   "compute it over all turns at once")
    if not isinstance(value, numbers.Real):
        raise Hint(f"`{name}` should be a number, got {type(value).__name__} {_short(value)}")
    return float(value)


def _short(value: Any, n: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # an object whose repr raises is still an answer to explain
        text = f"<{type(value).__name__}>"
    return text if len(text) <= n else text[: n - 1] + "…"


def _close(a: float, b: float, rel: float = 1e-6) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def _text_column(turns: Any, col: str) -> list[str]:
    return [str(v) if v is not None and v == v else "" for v in turns[col]]


# --------------------------------------------------------------------------------------------------
# 00 quickstart
# --------------------------------------------------------------------------------------------------
def _session_wer(session_wer: Any, *, turns: Any) -> str:
    from .analysis import metrics

    refs, hyps = _text_column(turns, "reference"), _text_column(turns, "transcript")
    want = metrics.wer(refs, hyps)
    got = _number(session_wer, "session_wer")
    if _close(got, want):
        return f"the session WER is {want:.1%} (word errors over reference words, all turns together)"
    if _close(got, 100 * want):
        raise Hint("that is a percentage; metrics.wer gives a fraction (0.125 for 12.5%)")
    per_turn = [metrics.wer(r, h) for r, h in zip(refs, hyps, strict=True)]
    if per_turn and _close(got, sum(per_turn) / len(per_turn)):
        raise Hint("that is the mean of per-turn WERs; the session WER counts all errors over all reference words: "
                   "call metrics.wer once with every reference and every transcript")
    if _close(got, metrics.wer(hyps, refs)):
        raise Hint("references first, transcripts second: metrics.wer(references, transcripts)")
    if _close(got, metrics.wer(refs, hyps, normalized=False)):
        raise Hint("keep rtlab's text normalisation on (the default): case and punctuation are not recognition errors")
    raise Hint("not the WER of these turns: use metrics.wer with the `reference` and `transcript` columns as lists "
               "(missing transcripts count as empty strings)")


# --------------------------------------------------------------------------------------------------
# 01 session configuration
# --------------------------------------------------------------------------------------------------
def _preview_noise_key(event_type: Any, noise_key: Any) -> str:
    from .config import SessionConfig, render

    rendered = render(SessionConfig.transcription(model="gpt-4o-mini-transcribe", noise_reduction="near_field"),
                      "azure-preview")
    want_type = rendered["type"]
    want_key = next(k for k in rendered["session"] if "noise" in k)
    if not isinstance(event_type, str):
        raise Hint(f"`event_type` should be the event's type string, got {type(event_type).__name__}")
    if event_type != want_type:
        if event_type == "session.update":
            raise Hint("session.update is the GA event; the preview (beta) dialect configures a transcription session "
                       "with its own event type — look at rendered['type']")
        if event_type.endswith("updated"):
            raise Hint(f"{event_type} is what the server answers; the client sends the ...update event")
        raise Hint(f"the preview dialect sends another event type than {event_type!r}: render the config for "
                   "'azure-preview' and read its 'type'")
    if not isinstance(noise_key, str):
        raise Hint(f"`noise_key` should be a key name (a string), got {type(noise_key).__name__}")
    if noise_key != want_key:
        if noise_key.startswith("session."):
            raise Hint("give the key inside `session`, without the 'session.' prefix")
        if "audio" in noise_key and "." in noise_key or noise_key == "noise_reduction":
            raise Hint("that is where GA puts it (audio.input.noise_reduction); the beta dialect uses flat keys with "
                       "an input_audio_ prefix")
        raise Hint(f"no key {noise_key!r} in the rendered session; list rendered['session'] and find the noise one")
    return f"the preview dialect sends {want_type} with a flat {want_key}"


def _fixed_whisper_config(fixed: Any) -> str:
    from .config import SessionConfig, violations

    if not isinstance(fixed, SessionConfig):
        raise Hint(f"`fixed` should be a SessionConfig (SessionConfig.transcription(...)), got {type(fixed).__name__}")
    if fixed.kind != "transcription":
        raise Hint("keep it a transcription session: SessionConfig.transcription(...)")
    model = getattr(fixed.transcription, "model", None)
    if model != "gpt-realtime-whisper":
        raise Hint(f"keep gpt-realtime-whisper (you have {model!r}): the exercise is to fix the options, not the model")
    found = violations(fixed)
    rules = {v.rule for v in found}
    if "prompt-unsupported" in rules:
        raise Hint("gpt-realtime-whisper takes no transcription prompt: leave `prompt` out")
    if "vad-in-transcription-session" in rules:
        raise Hint("in a transcription session gpt-realtime-whisper takes no turn detection: set turn_detection=None "
                   "(your code commits each utterance)")
    if found:
        raise Hint(f"validate(fixed) still refuses it: {found[0]}")
    return "it passes validate(); with no VAD the client commits each utterance itself"


# --------------------------------------------------------------------------------------------------
# 02 in-session vs sidecar
# --------------------------------------------------------------------------------------------------
def _event_order(order: Any, *, server: Any, turns: Any) -> str:
    items = list(turns.loc[turns["source"] == "in-session", "item_id"])
    want: dict[str, str] = {}
    for item in items:
        committed = server.index[(server["type"] == "input_audio_buffer.committed") & (server["item_id"] == item)][0]
        completed = server.index[(server["type"] == "conversation.item.input_audio_transcription.completed")
                                 & (server["item_id"] == item)][0]
        response_id = server.loc[(server.index > committed) & (server["type"] == "response.created"),
                                 "response_id"].iloc[0]
        done = server.index[(server["type"] == "response.done") & (server["response_id"] == response_id)][0]
        want[item] = "before" if completed < done else "after"
    if not isinstance(order, Mapping):
        raise Hint(f"`order` should be a dict {{item_id: 'before' or 'after'}}, got {type(order).__name__}")
    extra = set(order) - set(want)
    if extra:
        other = set(turns["item_id"]) & extra
        raise Hint("only the in-session turns: filter turns by source == 'in-session'" if other else
                   f"{len(extra)} keys are not in-session item ids (e.g. {_short(sorted(map(str, extra))[0])})")
    missing = set(want) - set(order)
    if missing:
        raise Hint(f"one entry per in-session turn: {len(want)} turns, you have {len(order)}")
    bad = {v for v in order.values() if v not in ("before", "after")}
    if bad:
        raise Hint(f"values are the strings 'before' or 'after', got {_short(sorted(map(str, bad)))}")
    wrong = [i for i in items if order[i] != want[i]]
    if wrong:
        raise Hint(f"item {wrong[0]}: compare the position (index in `server`) of its transcription `completed` with "
                   "that of the `response.done` of the first response.created after its `committed`")
    # (how many came first varies with the machine's load; the pass message must not)
    return f"before/after right for all {len(want)} turns"


# --------------------------------------------------------------------------------------------------
# 03 replay and inspect
# --------------------------------------------------------------------------------------------------
def _srt_cues(srt: Any, n_cues: Any, *, turns: Any) -> str:
    from .analysis.subtitles import to_srt

    want = to_srt(turns, "sidecar:transcription")
    if not isinstance(srt, str):
        raise Hint(f"`srt` should be the text to_srt returns (a str), got {type(srt).__name__}")
    if srt != want:
        for source in dict.fromkeys(turns["source"]):
            if source != "sidecar:transcription" and srt == to_srt(turns, source):
                raise Hint(f"that is the SRT of {source}; the exercise asks for sidecar:transcription")
        raise Hint("write it with to_srt(turns, 'sidecar:transcription')")
    n_want = want.count(" --> ")
    if isinstance(n_cues, bool) or not isinstance(n_cues, numbers.Integral):
        raise Hint(f"`n_cues` should be a whole number, got {type(n_cues).__name__} {_short(n_cues)}")
    if int(n_cues) != n_want:
        if int(n_cues) == len(want.splitlines()):
            raise Hint("that counts lines; each cue has one ' --> ' timing line: count those")
        raise Hint("count the cues: each has exactly one ' --> ' timing line")
    return f"{n_want} cues, one per transcribed turn"


# --------------------------------------------------------------------------------------------------
# 04 probe your endpoint
# --------------------------------------------------------------------------------------------------
def _replica_matches(n_different: Any, *, result: Any, again: Any) -> str:
    import numpy as np
    import pandas as pd

    original, replica = result.matrix(), again.matrix()
    # The replica is probed on fewer surfaces (a profile reproduces the transcription surfaces): compare the cells
    # both matrices have.
    rows = [r for r in replica.index if r in original.index]
    cols = [c for c in replica.columns if c in original.columns]
    want = int((original.loc[rows, cols] != replica.loc[rows, cols]).to_numpy().sum())
    if isinstance(n_different, pd.DataFrame | np.ndarray):
        raise Hint("that is the table of differences; count its True cells: (a != b).to_numpy().sum()")
    if isinstance(n_different, bool | np.bool_):
        raise Hint("a count of differing cells (an int), not whether they differ")
    got = _number(n_different, "n_different")
    if got != want:
        raise Hint("compare the cells both matrices have, one by one: result.matrix().loc[again.matrix().index, "
                   "again.matrix().columns] != again.matrix() is True where they differ; sum the Trues")
    if want == 0:
        return f"the replica reproduces all {len(rows) * len(cols)} cells it was probed on"
    return f"{want} of the {len(rows) * len(cols)} cells the replica was probed on differ from the endpoint's"


def _no_secret_leaks(ticket: Any, *, fake_key: str, result: Any) -> str:
    if not isinstance(ticket, str):
        raise Hint(f"`ticket` should be the text support_report() returns (a str), got {type(ticket).__name__}")
    if fake_key in ticket or fake_key[4:20] in ticket:
        raise Hint("the report shows (part of) the key: build the report from a Target, whose repr masks its key, "
                   "never from the key itself")
    if "contoso" not in ticket:
        raise Hint("that report is about the original target: put the contoso Target in with "
                   "dataclasses.replace(result, target=contoso), then call .support_report()")
    if result.support_report().splitlines()[0] != ticket.splitlines()[0]:
        raise Hint("`ticket` should be a probe support report (ProbeResult.support_report())")
    return "the report names the endpoint and masks the key"


# --------------------------------------------------------------------------------------------------
# 05 latency and accuracy study
# --------------------------------------------------------------------------------------------------
def _condition_ratios(ratios: Any, *, turns: Any) -> str:
    from .analysis import metrics

    def corpus(group: Any) -> float:
        return metrics.wer(_text_column(group, "reference"), _text_column(group, "transcript"))

    want: dict[tuple[str, str], float] = {}
    inverse: dict[tuple[str, str], float] = {}
    for source, part in turns.groupby("source"):
        clean = corpus(part[part["condition"] == "clean"])
        for condition in ("noisy", "telephone"):
            w = corpus(part[part["condition"] == condition])
            want[source, condition] = w / max(clean, 0.01)
            inverse[source, condition] = clean / max(w, 0.01)
    if not isinstance(ratios, Mapping):
        raise Hint(f"`ratios` should be a dict {{(source, condition): ratio}}, got {type(ratios).__name__}")
    keys = set(ratios)
    if keys and all(isinstance(k, str) for k in keys):
        raise Hint("one ratio per source and condition: keys are tuples like ('in-session', 'noisy')")
    if keys != set(want):
        missing = sorted(set(want) - keys)
        raise Hint(f"expected keys {sorted(want)}; missing {missing[:2]}" if missing
                   else f"unexpected keys {sorted(map(str, keys - set(want)))[:2]}: only 'noisy' and 'telephone'")
    for key, w in want.items():
        v = ratios[key]
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise Hint(f"ratios[{key!r}] should be a number, got {_short(v)}") from None
        if _close(v, w, 1e-6):
            continue
        if _close(v, inverse[key], 1e-6):
            raise Hint("the ratio is the condition's WER over the clean WER, not the other way round")
        raise Hint(f"ratios[{key!r}]: use the corpus WER of each group (metrics.wer over its references and "
                   "transcripts), and divide by max(clean, 0.01) so a perfect clean score does not divide by zero")
    worst = max(want, key=want.get)
    return f"the biggest loss is {worst[1]} on {worst[0]} ({want[worst]:.1f}× the clean WER)"


# --------------------------------------------------------------------------------------------------
# 06 the seed question
# --------------------------------------------------------------------------------------------------
def _seed_outcomes(as_session_model: Any, as_transcription_model: Any, *, frame: Any) -> str:
    outcome = frame.set_index(["model", "surface"])["outcome"]
    want = (outcome["gpt-realtime-whisper", "session-model"], outcome["gpt-realtime-whisper", "in-session-ga"])
    got = (as_session_model, as_transcription_model)
    for name, value in zip(("as_session_model", "as_transcription_model"), got, strict=True):
        if not isinstance(value, str):
            raise Hint(f"`{name}` should be one outcome string (one cell of the `outcome` column), got "
                       f"{type(value).__name__}; pick it with .loc[(model, surface)]")
    if got == want:
        return (f"as the session model it is {want[0]}; as the transcription model of a voice session it "
                f"is {want[1]}")
    if got == want[::-1]:
        raise Hint("you swapped them: 'session-model' is the row where the model itself is the session's ?model=")
    if any(v.split(" ")[0] in set(outcome) and v not in set(outcome) for v in got):
        raise Hint("give the `outcome` column's value (e.g. 'handshake-refused'), not the matrix text with its code")
    others = {m for m, _ in outcome.index if m != "gpt-realtime-whisper"}
    if any((outcome.get((m, "session-model")), outcome.get((m, "in-session-ga"))) == got for m in others):
        raise Hint("those are another model's outcomes: take the rows of gpt-realtime-whisper")
    raise Hint("read the `outcome` column of seed.frame for model gpt-realtime-whisper, surfaces 'session-model' and "
               "'in-session-ga'")


#: Every exercise of notebooks 00–06. A new exercise: a row here and a check function above.
EXERCISES: dict[str, Exercise] = {e.name: e for e in (
    Exercise("session_wer", "00_quickstart", ("session_wer",), {"turns": "turns"}, _session_wer),
    Exercise("preview_noise_key", "01_session_configuration", ("event_type", "noise_key"), {}, _preview_noise_key),
    Exercise("fixed_whisper_config", "01_session_configuration", ("fixed",), {}, _fixed_whisper_config),
    Exercise("seed_outcomes", "06_the_seed_question", ("as_session_model", "as_transcription_model"),
             {"frame": "seed.frame"}, _seed_outcomes),
    Exercise("event_order", "02_in_session_vs_sidecar", ("order",),
             {"server": "race_server", "turns": "race_turns"}, _event_order),
    Exercise("srt_cues", "03_replay_and_inspect", ("srt", "n_cues"), {"turns": "turns"}, _srt_cues),
    Exercise("replica_matches", "04_probe_your_endpoint", ("n_different",), {"result": "result", "again": "again"},
             _replica_matches),
    Exercise("no_secret_leaks", "04_probe_your_endpoint", ("ticket",), {"fake_key": "fake_key", "result": "result"},
             _no_secret_leaks),
    Exercise("condition_ratios", "05_latency_accuracy_study", ("ratios",), {"turns": "turns"}, _condition_ratios),
)}


def exercise_for(notebook: str, answers: Sequence[str]) -> Exercise | None:
    """The exercise of ``notebook`` (a stem) whose answer variables are all in ``answers``, or ``None``."""
    found = [e for e in EXERCISES.values() if e.notebook == notebook and set(e.answers) <= set(answers)]
    return max(found, key=lambda e: len(e.answers)) if found else None


def check(name: str, *answers: Any, quiet: bool = False, **context: Any) -> Verdict:
    """Check the learner's answer to exercise ``name``; print one line and return the :class:`Verdict`.

    Parameters
    ----------
    name : str
        A key of :data:`EXERCISES`.
    *answers
        The learner's variables, in the exercise's order (``Exercise.answers``).
    quiet : bool
        Return the verdict without printing it.
    **context
        What the check computes the expected answer from (``Exercise.context``), e.g. ``turns=turns``.

    Raises
    ------
    TeachError
        Only for a wrongly written check call (unknown exercise, wrong number of answers, missing context);
        never for a wrong answer.
    """
    exercise = EXERCISES.get(name)
    if exercise is None:
        raise TeachError(f"no exercise {name!r}; known: {', '.join(EXERCISES)}")
    if len(answers) != len(exercise.answers):
        raise TeachError(f"check({name!r}) takes {len(exercise.answers)} answers ({', '.join(exercise.answers)}), "
                         f"got {len(answers)}")
    missing = set(exercise.context) - set(context)
    if missing:
        raise TeachError(f"check({name!r}) needs {', '.join(sorted(missing))}: call {exercise.call()}")
    verdict = _judge(exercise, answers, context)
    if not quiet:
        print(verdict)
    return verdict


def _judge(exercise: Exercise, answers: tuple[Any, ...], context: Mapping[str, Any]) -> Verdict:
    for var, value in zip(exercise.answers, answers, strict=True):
        try:
            blank = _blank(value)
        except Exception as exc:  # an object that raises when looked at is still an answer to explain
            return Verdict(exercise.name, "hint", f"`{var}` raised {type(exc).__name__} when looked at: {exc}")
        if blank:
            return Verdict(exercise.name, "not yet", f"`{var}` is still empty: write your answer in the exercise "
                                                     "cell, run it, then run this cell")
    try:
        message = exercise.run(*answers, **context)
    except Hint as hint:
        return Verdict(exercise.name, "hint", str(hint))
    except Exception as exc:  # the learner's value broke the check: say so, no traceback
        names = ", ".join(f"`{a}`" for a in exercise.answers)
        return Verdict(exercise.name, "hint", f"checking {names} raised {type(exc).__name__}: {_short(str(exc), 120)} "
                                              "— is it the kind of value the exercise asks for?")
    return Verdict(exercise.name, "pass", message)
