"""The gpt-realtime-translate workaround, offline: engines, protocol facts, the emulated endpoint over a real
socket with the official SDK as client, the translation leg and its turn normalizer.

The endpoint runs in a small harness (``websockets.asyncio.server.serve`` on 127.0.0.1:0 with
``route_translation`` + ``serve_session``), the way the main emulator server will route it. Every server event
is parsed from the raw frame and validated against the SDK's ``RealtimeTranslation*`` models, with no extra
keys. Real engines throughout: Apertium, espeak-ng, WebRTC VAD, PocketSphinx.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import time
import typing

import numpy as np
import openai
import pandas as pd
import pydantic
import pytest
import soundfile as sf
from openai.types.realtime import (
    RealtimeTranslationClientEvent,
    RealtimeTranslationServerEvent,
    RealtimeTranslationSessionUpdateEvent,
)

from rtlab.analysis.metrics import wer
from rtlab.analysis.translation import translation_probe_row, translation_turn_rows, translation_usage
from rtlab.emulator.server import HttpRefusal
from rtlab.emulator.translation import TranslationRoute, TranslationSession, route_translation
from rtlab.emulator.validation import validate_translation_event
from rtlab.engines import default_engines
from rtlab.engines.base import Translator, TtsEngine
from rtlab.engines.espeak import EspeakTts
from rtlab.engines.translate import (
    ApertiumMissingError,
    ApertiumTranslator,
    LanguagePairMissingError,
    apertium_pairs,
    debian_package,
)
from rtlab.errors import ConfigError, RtlabError
from rtlab.log import EventLog
from rtlab.paths import data_dir
from rtlab.protocol import translation as T
from rtlab.protocol.evidence import Evidence
from rtlab.runs import RunOptions, arun_legs
from rtlab.runs.translation import TranslationLeg, TranslationSidecar, parse_translate_spec
from rtlab.targets import Target
from translation_harness import KEY, Harness

pytestmark = pytest.mark.skipif(
    shutil.which("apertium") is None or shutil.which("espeak-ng") is None,
    reason="needs apertium, apertium-eng-spa and espeak-ng (make system)",
)

TIMEOUT_S = 60
SR = 24000
UPDATE = {
    "audio": {"input": {"transcription": {"model": T.TRANSCRIPTION_MODEL}}, "output": {"language": "es"}}
}


@pytest.fixture(scope="module")
def engines():
    return default_engines()


@pytest.fixture(scope="module")
def harness(engines):
    h = Harness(engines)
    yield h
    h.close()


def _manifest() -> dict:
    return json.loads((data_dir() / "manifest.json").read_text())


def _clip(name: str) -> tuple[np.ndarray, dict]:
    pcm, sr = sf.read(data_dir() / "clips" / f"{name}.wav", dtype="int16")
    assert sr == SR
    return pcm, _manifest()["clips"][name]


def _b64(pcm: np.ndarray) -> str:
    return base64.b64encode(pcm.astype("<i2").tobytes()).decode()


_STRICT = pydantic.TypeAdapter(RealtimeTranslationServerEvent)


def _no_extra(model: object, path: str = "event") -> None:
    """The SDK models allow extra keys; the emulator must not send any."""
    if isinstance(model, pydantic.BaseModel):
        assert not model.model_extra, (
            f"{path} has keys the SDK model does not define: {sorted(model.model_extra)}"
        )
        for name in type(model).model_fields:
            _no_extra(getattr(model, name), f"{path}.{name}")


def _validated(event: dict) -> dict:
    _no_extra(validate_translation_event(event))
    return event


class Conn:
    """An SDK translation connection recording every server event (raw frame → dict → SDK validation)."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.events: list[dict] = []

    async def recv(self) -> dict:
        event = json.loads(await asyncio.wait_for(self.conn.recv_bytes(), TIMEOUT_S))
        self.events.append(_validated(event))
        return event

    async def until(self, etype: str) -> dict:
        while (event := await self.recv())["type"] != etype:
            pass
        return event

    def of(self, etype: str) -> list[dict]:
        return [e for e in self.events if e["type"] == etype]

    def text(self, etype: str) -> str:
        return "".join(e["delta"] for e in self.of(etype))


async def _translate_clip(
    client: openai.AsyncOpenAI, pcm: np.ndarray, *, session: dict = UPDATE, chunk_ms: int = 200
) -> Conn:
    async with client.realtime.translations.connect(model=T.MODEL) as raw:
        c = Conn(raw)
        await c.until("session.created")
        await raw.session.update(session=session)
        await c.until("session.updated")
        step = SR * chunk_ms // 1000
        for i in range(0, len(pcm), step):
            await raw.session.input_audio_buffer.append(audio=_b64(pcm[i : i + step]))
        await raw.session.close()
        await c.until("session.closed")
        return c


# ================================================================================================== engines
class TestApertium:
    def test_installed_pairs_use_iso_639_1_codes(self):
        pairs = apertium_pairs()
        assert pairs[("en", "es")] in ("eng-spa", "en-es")

    def test_translates_deterministically_and_batches_in_one_process(self):
        tr = ApertiumTranslator("en", "es", cache_size=0)
        assert isinstance(tr, Translator)
        texts = ["the weather is nice today", "", "is it far from here"]
        first = tr.translate_many(texts)
        assert tr.calls == 1, "a batch is one apertium process"
        assert first[1] == ""
        assert "tiempo" in first[0].lower() and "hoy" in first[0].lower()
        assert "lejos" in first[2].lower()
        assert tr.translate_many(texts) == first

    def test_cache_answers_repeats_without_a_process(self):
        tr = ApertiumTranslator("en", "es")
        tr.translate("good morning")
        calls = tr.calls
        assert tr.translate("good  morning") == tr.translate("good morning")
        assert tr.calls == calls

    def test_other_installed_pairs_are_picked_up(self, tmp_path):
        # A data directory with one more mode (modes are files): discovery lists it and translates with it.
        (tmp_path / "modes").mkdir()
        mode = next(
            p
            for p in ("/usr/share/apertium/modes/eng-spa.mode", "/usr/share/apertium/modes/en-es.mode")
            if os.path.exists(p)
        )
        (tmp_path / "modes" / "eng-cat.mode").write_text(open(mode).read())
        assert apertium_pairs(datadir=str(tmp_path)) == {("en", "ca"): "eng-cat"}
        tr = ApertiumTranslator("en", "ca", datadir=str(tmp_path))
        assert tr.translate("the weather is nice today")

    def test_a_missing_pair_names_the_debian_package(self):
        with pytest.raises(LanguagePairMissingError) as err:
            ApertiumTranslator("en", "ca", datadir="/nonexistent-apertium-data")
        assert err.value.package == "apertium-eng-cat"
        assert "apt-get install apertium-eng-cat" in str(err.value)
        with pytest.raises(LanguagePairMissingError) as err:
            ApertiumTranslator("en", "fr")
        assert err.value.package == "apertium-en-fr" and "apertium-en-fr" in str(err.value)
        assert isinstance(err.value, RtlabError)
        assert debian_package("spa", "eng") == "apertium-eng-spa"

    def test_a_missing_program_names_its_package(self):
        with pytest.raises(ApertiumMissingError) as err:
            ApertiumTranslator("en", "es", binary="no-such-apertium")
        assert err.value.package == "apertium" and "apt-get install apertium" in str(err.value)

    @pytest.mark.parametrize("bad", ["", "english", 3, "e1"])
    def test_bad_language_codes_are_config_errors(self, bad):
        with pytest.raises(ConfigError, match="ISO 639-1"):
            ApertiumTranslator(bad, "es")


class TestEspeak:
    def test_speaks_24k_int16_deterministically_per_language(self):
        tts = EspeakTts()
        assert isinstance(tts, TtsEngine) and tts.sample_rate == SR
        es = tts.synthesize("el tiempo es bueno hoy", voice="es")
        assert es.dtype == np.int16 and es.ndim == 1 and 0.8 * SR < len(es) < 4 * SR
        assert np.abs(es).max() > 1000
        fresh = EspeakTts(cache_size=0).synthesize("el tiempo es bueno hoy", voice="es")
        np.testing.assert_array_equal(es, fresh)
        en = tts.synthesize("el tiempo es bueno hoy", voice="en")
        assert len(en) != len(es) or not np.array_equal(en, es), "another language speaks differently"
        assert len(tts.synthesize("   ", voice="es")) == 0

    def test_every_documented_output_language_has_a_voice(self):
        tts = EspeakTts()
        for code in T.OUTPUT_LANGUAGES:
            assert tts.voice(code)

    def test_unknown_voice_is_a_config_error(self):
        with pytest.raises(ConfigError, match="no voice 'xx'"):
            EspeakTts().synthesize("hola", voice="xx")


# =========================================================================================== protocol facts
class TestFacts:
    def test_every_fact_carries_evidence(self):
        assert {
            "endpoint.openai",
            "endpoint.azure",
            "elapsed_ms.step",
            "output_languages",
            "price.usd_per_minute",
            "session_update.fields",
        } <= set(T.FACTS)
        for fact in T.FACTS.values():
            assert isinstance(fact.evidence, Evidence), fact.key
        assert T.FACTS["endpoint.azure"].evidence.kind == "assumed"
        assert T.FACTS["azure.inference"].evidence.kind == "reported"
        assert len(T.OUTPUT_LANGUAGES) == 13 and T.PRICE_USD_PER_MINUTE == 0.034

    def test_event_names_agree_with_the_sdk(self):
        def names(union) -> set[str]:
            members = typing.get_args(typing.get_args(union)[0])
            return {typing.get_args(m.model_fields["type"].annotation)[0] for m in members}

        assert names(RealtimeTranslationServerEvent) == set(T.SERVER_EVENTS)
        assert names(RealtimeTranslationClientEvent) == set(T.CLIENT_EVENTS)

    def test_updatable_fields_are_the_sdk_update_request(self):
        audio = RealtimeTranslationSessionUpdateEvent.model_fields["session"].annotation
        inner = typing.get_args(audio.model_fields["audio"].annotation)[0]
        inp = typing.get_args(inner.model_fields["input"].annotation)[0]
        out = typing.get_args(inner.model_fields["output"].annotation)[0]
        sdk = {f"audio.input.{k}" for k in inp.model_fields} | {f"audio.output.{k}" for k in out.model_fields}
        assert sdk == set(T.UPDATABLE_FIELDS)

    @pytest.mark.parametrize(
        ("session", "code", "param"),
        [
            ({"audio": {"output": {"voice": "alloy"}}}, "unknown_parameter", "session.audio.output.voice"),
            ({"model": "gpt-realtime"}, "unknown_parameter", "session.model"),
            ({"type": "translation"}, "unknown_parameter", "session.type"),
            (
                {"audio": {"input": {"format": {"type": "audio/pcm"}}}},
                "unknown_parameter",
                "session.audio.input.format",
            ),
            ("es", "invalid_type", "session"),
            ({"audio": {"output": {"language": 5}}}, "invalid_type", "session.audio.output.language"),
            ({"audio": {"output": {"language": "xx"}}}, "invalid_value", "session.audio.output.language"),
            (
                {"audio": {"input": {"transcription": {}}}},
                "missing_required_parameter",
                "session.audio.input.transcription.model",
            ),
            (
                {"audio": {"input": {"noise_reduction": {"type": "loud"}}}},
                "invalid_value",
                "session.audio.input.noise_reduction.type",
            ),
            (
                {"audio": {"input": {"noise_reduction": {"type": "far_field", "strength": "max"}}}},
                "invalid_type",
                "session.audio.input.noise_reduction.strength",
            ),
            ({"audio": None}, "invalid_type", "session.audio"),
        ],
    )
    def test_session_update_rule_names_the_bad_field(self, session, code, param):
        problem = T.check_session_update(session)
        assert (problem.code, problem.param) == (code, param)
        assert param in problem.message or code == "invalid_value"

    def test_valid_updates_pass_and_merge(self):
        update = {
            "audio": {
                "input": {
                    "transcription": {"model": "gpt-realtime-whisper"},
                    "noise_reduction": {"type": "near_field"},
                },
                "output": {"language": "es"},
            }
        }
        assert T.check_session_update(update) is None
        assert T.check_session_update({}) is None
        s = T.merge_session_update({"id": "x", "audio": {"input": {}, "output": {}}}, update)
        assert s["audio"]["input"]["noise_reduction"] == {"type": "near_field", "strength": 1.0}
        s = T.merge_session_update(
            s, {"audio": {"input": {"noise_reduction": {"type": "far_field"}, "transcription": None}}}
        )
        assert s["audio"]["input"] == {
            "transcription": None,
            "noise_reduction": {"type": "far_field", "strength": 1.0},
        }
        assert s["audio"]["output"]["language"] == "es" and s["id"] == "x"


# ======================================================================================== handshake routing
class TestRoute:
    def test_openai_and_azure_paths_with_model(self):
        auth = {"Authorization": f"Bearer {KEY}"}
        assert route_translation(
            "/v1/realtime/translations?model=gpt-realtime-translate", auth, api_key=KEY
        ) == TranslationRoute("/v1/realtime/translations", "gpt-realtime-translate")
        assert route_translation(
            "/openai/v1/realtime/translations?model=my-dep", {"api-key": KEY}
        ) == TranslationRoute("/openai/v1/realtime/translations", "my-dep")
        assert route_translation("/v1/realtime?model=gpt-realtime", auth) is None

    @pytest.mark.parametrize(
        ("path", "headers", "status", "code"),
        [
            ("/v1/realtime/translations?model=m", {}, 401, "invalid_api_key"),
            ("/v1/realtime/translations?model=m", {"Authorization": "Bearer wrong"}, 401, "invalid_api_key"),
            (
                "/v1/realtime/translations",
                {"Authorization": f"Bearer {KEY}"},
                400,
                "missing_required_parameter",
            ),
            (
                "/v1/realtime/translations?model=m&intent=transcription",
                {"Authorization": f"Bearer {KEY}"},
                400,
                "invalid_request_error",
            ),
        ],
    )
    def test_refusals(self, path, headers, status, code):
        refusal = route_translation(path, headers, api_key=KEY)
        assert isinstance(refusal, HttpRefusal) and (refusal.status, refusal.code) == (status, code)


# ======================================================================================== session, sans I/O
def _session(engines, **kw) -> TranslationSession:
    return TranslationSession(engines=engines, seed=1, validate=True, **kw)


def _events(out: list) -> list[dict]:
    return [_validated(e) for e in out if isinstance(e, dict)]


def _feed(s: TranslationSession, pcm: np.ndarray, *, chunk_ms: int = 200, close: bool = True) -> list[dict]:
    out: list = []
    step = SR * chunk_ms // 1000
    for i in range(0, len(pcm), step):
        out += s.receive(
            json.dumps({"type": "session.input_audio_buffer.append", "audio": _b64(pcm[i : i + step])})
        )
    if close:
        out += s.receive(json.dumps({"type": "session.close"}))
    return _events(out + s.drain())


def _update(s: TranslationSession, session: dict) -> list[dict]:
    return _events(s.receive(json.dumps({"type": "session.update", "session": session})))


@pytest.fixture(scope="module")
def short_pcm():
    pcm, clip = _clip("short")
    return np.concatenate([pcm, np.zeros(SR, np.int16)]), clip


class TestSession:
    def test_created_shows_the_default_translation_session(self, engines):
        [created] = _events(_session(engines, model="gpt-realtime-translate").start())
        assert created["type"] == "session.created"
        session = created["session"]
        assert session["type"] == "translation" and session["model"] == "gpt-realtime-translate"
        assert session["id"].startswith("sess_") and session["expires_at"] > 0
        assert session["audio"] == {
            "input": {"transcription": None, "noise_reduction": None},
            "output": {"language": None},
        }

    def test_seeded_sessions_give_identical_events(self, engines, short_pcm):
        pcm, _ = short_pcm
        runs = []
        for _ in range(2):
            s = _session(engines, clock=lambda: 1_800_000_000.0)
            out = _events(s.start()) + _update(s, UPDATE) + _feed(s, pcm)
            runs.append(out)
        assert runs[0] == runs[1]

    def test_stream_is_append_only_on_the_200ms_grid(self, engines, short_pcm):
        pcm, clip = short_pcm
        s = _session(engines)
        s.start()
        assert [e["type"] for e in _update(s, UPDATE)] == ["session.updated"]
        # Odd chunk sizes: the engine still consumes whole 200 ms frames.
        events = _feed(s, pcm, chunk_ms=70)
        kinds = [e["type"] for e in events]
        assert kinds[-1] == "session.closed" and kinds.count("session.closed") == 1
        for etype in (
            "session.input_transcript.delta",
            "session.output_transcript.delta",
            "session.output_audio.delta",
        ):
            elapsed = [e["elapsed_ms"] for e in events if e["type"] == etype]
            assert elapsed and all(x % T.ELAPSED_MS_STEP == 0 for x in elapsed), etype
            assert elapsed == sorted(elapsed), etype
        source = "".join(e["delta"] for e in events if e["type"] == "session.input_transcript.delta")
        assert wer(clip["reference"], source) <= 0.35
        assert "tiempo" in "".join(
            e["delta"] for e in events if e["type"] == "session.output_transcript.delta"
        )
        first_out = kinds.index("session.output_transcript.delta")
        assert kinds.index("session.input_transcript.delta") < first_out

    def test_output_audio_is_24k_pcm16_in_200ms_chunks(self, engines, short_pcm):
        s = _session(engines)
        _update(s, UPDATE)
        audio = [e for e in _feed(s, short_pcm[0]) if e["type"] == "session.output_audio.delta"]
        assert {(e["sample_rate"], e["channels"], e["format"]) for e in audio} == {(SR, 1, "pcm16")}
        sizes = [len(base64.b64decode(e["delta"])) for e in audio]
        assert all(n == 2 * SR // 5 for n in sizes[:-1]) and 0 < sizes[-1] <= 2 * SR // 5
        pcm = np.frombuffer(b"".join(base64.b64decode(e["delta"]) for e in audio), "<i2")
        assert len(pcm) > SR // 2 and np.abs(pcm).max() > 1000

    def test_without_input_transcription_only_the_translation_flows(self, engines, short_pcm):
        s = _session(engines)
        _update(s, {"audio": {"output": {"language": "es"}}})
        kinds = {e["type"] for e in _feed(s, short_pcm[0])}
        assert "session.input_transcript.delta" not in kinds
        assert {"session.output_transcript.delta", "session.output_audio.delta"} <= kinds

    def test_speech_in_the_target_language_is_not_translated(self, engines, short_pcm):
        s = _session(engines)
        _update(
            s,
            {
                "audio": {
                    "input": {"transcription": {"model": "gpt-realtime-whisper"}},
                    "output": {"language": "en"},
                }
            },
        )
        kinds = {e["type"] for e in _feed(s, short_pcm[0])}
        assert "session.input_transcript.delta" in kinds
        assert not kinds & {"session.output_transcript.delta", "session.output_audio.delta"}

    def test_missing_pair_is_an_error_event_naming_the_package(self, engines, short_pcm):
        s = _session(engines)
        updated, error = _update(
            s,
            {
                "audio": {
                    "input": {"transcription": {"model": "gpt-realtime-whisper"}},
                    "output": {"language": "fr"},
                }
            },
        )
        assert (
            updated["type"] == "session.updated" and updated["session"]["audio"]["output"]["language"] == "fr"
        )
        assert error["type"] == "error" and error["error"]["code"] == "rtlab_language_pair_missing"
        assert "apertium-en-fr" in error["error"]["message"]
        events = _feed(s, short_pcm[0])
        assert any(e["type"] == "session.input_transcript.delta" for e in events), (
            "the source transcript flows"
        )
        assert not any(e["type"].startswith("session.output") or e["type"] == "error" for e in events)

    @pytest.mark.parametrize(
        ("message", "code", "param"),
        [
            ('{"type": "response.create"}', "invalid_value", "type"),
            ("not json", "invalid_json", None),
            ('["session.close"]', "invalid_json", None),
            ('{"session": {}}', "missing_required_parameter", "type"),
            ('{"type": "session.input_audio_buffer.append", "audio": "@@@"}', "invalid_value", "audio"),
            ('{"type": "session.input_audio_buffer.append"}', "missing_required_parameter", "audio"),
            ('{"type": "session.update", "session": {}, "foo": 1}', "unknown_parameter", "foo"),
        ],
    )
    def test_bad_client_messages_get_one_error_and_change_nothing(self, engines, message, code, param):
        s = _session(engines)
        before = json.dumps(s.session)
        [error] = _events(s.receive(message))
        assert error["type"] == "error" and (error["error"]["code"], error["error"]["param"]) == (code, param)
        assert json.dumps(s.session) == before and not s.pending()


# ======================================================================================= over a real socket
class TestSocket:
    def test_sdk_session_streams_source_and_translation(self, harness):
        pcm, clip = _clip("dialogue")
        pcm = np.concatenate([pcm, np.zeros(SR, np.int16)])
        c = asyncio.run(_translate_clip(harness.client(), pcm))
        assert c.events[0]["type"] == "session.created" and c.events[-1]["type"] == "session.closed"
        source = c.text("session.input_transcript.delta")
        assert wer(clip["reference"], source) <= 0.35
        assert len(source.split()) >= 20
        spanish = c.text("session.output_transcript.delta").lower()
        assert "tren" in spanish and "minutos" in spanish
        assert len(c.of("session.output_audio.delta")) >= 10
        assert not c.of("error")

    def test_unknown_parameter_is_refused_and_the_socket_stays_open(self, harness):
        async def go() -> Conn:
            async with harness.client().realtime.translations.connect(model=T.MODEL) as raw:
                c = Conn(raw)
                await c.until("session.created")
                await raw.send(
                    {
                        "type": "session.update",
                        "event_id": "evt_1",
                        "session": {"audio": {"output": {"language": "es", "voice": "alloy"}}},
                    }
                )
                await c.until("error")
                await raw.session.update(session={"audio": {"output": {"language": "es"}}})
                await c.until("session.updated")
                return c

        c = asyncio.run(go())
        [error] = [e["error"] for e in c.of("error")]
        assert error == {
            "type": "invalid_request_error",
            "code": "unknown_parameter",
            "message": "Unknown parameter: 'session.audio.output.voice'.",
            "param": "session.audio.output.voice",
            "event_id": "evt_1",
        }
        assert c.of("session.updated")[0]["session"]["audio"]["output"]["language"] == "es"

    def test_missing_pair_error_over_the_socket(self, harness):
        pcm, _ = _clip("short")
        c = asyncio.run(
            _translate_clip(
                harness.client(),
                np.concatenate([pcm, np.zeros(SR, np.int16)]),
                session={**UPDATE, "audio": {**UPDATE["audio"], "output": {"language": "de"}}},
            )
        )
        [error] = c.of("error")
        assert (
            error["error"]["code"] == "rtlab_language_pair_missing"
            and "apertium-en-de" in error["error"]["message"]
        )
        assert c.text("session.input_transcript.delta") and not c.of("session.output_transcript.delta")

    def test_the_server_closes_after_session_closed_and_the_handler_ends(self, harness):
        async def go() -> tuple[Conn, int | None]:
            async with harness.client().realtime.translations.connect(model=T.MODEL) as raw:
                c = Conn(raw)
                await c.until("session.created")
                await raw.session.close()
                await c.until("session.closed")
                with pytest.raises(Exception):  # noqa: B017 - the socket is closed by the server: recv ends
                    await asyncio.wait_for(raw.recv_bytes(), TIMEOUT_S)
                return c, raw._connection.close_code

        started = harness.sessions
        c, code = asyncio.run(go())
        assert [e["type"] for e in c.events] == ["session.created", "session.closed"] and code == 1000
        deadline = time.monotonic() + 10
        while harness.finished < started + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert harness.finished == harness.sessions, (
            "a session that sent Close must not leave its handler running"
        )

    def test_handshake_refusals_reach_the_sdk(self, harness):
        async def go(client):
            async with client.realtime.translations.connect(model=T.MODEL):
                pass

        with pytest.raises(Exception, match="401"):
            asyncio.run(go(harness.client(key="wrong")))

    def test_azure_ga_path_with_a_deployment_name(self, harness):
        async def go() -> dict:
            async with harness.client(azure=True).realtime.translations.connect(model="my-translate") as raw:
                return json.loads(await asyncio.wait_for(raw.recv_bytes(), TIMEOUT_S))

        created = _validated(asyncio.run(go()))
        assert created["session"]["model"] == "my-translate"


# ========================================================================================= leg + normalizer
def _log_frame(log: EventLog) -> pd.DataFrame:
    return EventLog.load(log.path).to_frame()


@pytest.fixture(scope="module")
def dialogue_run(harness, tmp_path_factory):
    out = tmp_path_factory.mktemp("translate-run")
    leg = TranslationSidecar("es").leg(Target.local(harness.url, api_key=KEY))
    log = asyncio.run(
        arun_legs(
            data_dir() / "clips" / "dialogue.wav",
            [leg],
            out=out,
            options=RunOptions(speed=3.0, progress=False),
        )
    )
    return log, leg


class TestLeg:
    def test_spec_parses(self):
        assert parse_translate_spec("translate:es") == TranslationSidecar("es")
        assert parse_translate_spec("translate:ES").source == "sidecar:translate:es"
        assert parse_translate_spec("transcription:gpt-4o-transcribe") is None
        with pytest.raises(ConfigError, match="no target language"):
            parse_translate_spec("translate")
        with pytest.raises(ConfigError, match="does not list 'xx'"):
            parse_translate_spec("translate:xx")

    def test_run_records_both_directions_under_its_source(self, dialogue_run):
        log, leg = dialogue_run
        frame = _log_frame(log)
        assert set(frame["source"].astype(str)) == {"sidecar:translate:es"}
        client = frame[frame["direction"] == "client"]["type"].astype(str).tolist()
        assert client[0] == "session.update" and client[-1] == "session.close"
        assert set(client[1:-1]) == {"session.input_audio_buffer.append"}
        server = frame[frame["direction"] == "server"]["type"].astype(str).tolist()
        assert server[:2] == ["session.created", "session.updated"] and server[-1] == "session.closed"
        server_rows = frame[frame["direction"] == "server"]
        for event, source in zip(server_rows["event"], server_rows["source"].astype(str), strict=True):
            _validated(log.as_sent(event, source))  # output audio is stored in a track: put it back to validate
        assert leg.state.closed and not leg.state.errors

    def test_normalizer_gives_one_comparable_row_per_turn(self, dialogue_run):
        log, _ = dialogue_run
        _, clip = _clip("dialogue")
        rows = translation_turn_rows(_log_frame(log), "sidecar:translate:es")
        utterances = clip["utterances"]
        assert len(rows) == len(utterances)
        assert wer([u["text"] for u in utterances], [r["transcript"] for r in rows]) <= 0.35
        for row, utt in zip(rows, utterances, strict=True):
            assert row["kind"] == "translation" and row["status"] == "completed" and row["n_revisions"] == 0
            assert row["model"] == T.TRANSCRIPTION_MODEL and row["session_model"] == T.MODEL
            assert row["translation_language"] == "es" and row["translation"]
            assert row["t_first_ms"] <= row["t_final_ms"] <= row["t_first_translation_ms"]
            # Without speech turns the span is when text appeared: after the speech started, near its end.
            assert utt["start_s"] * 1000 <= row["audio_start_ms"] <= row["audio_end_ms"]
            assert row["audio_end_ms"] <= utt["end_s"] * 1000 + 1500
        assert len({r["item_id"] for r in rows}) == len(rows)

    def test_normalizer_groups_by_given_speech_turns(self, dialogue_run):
        log, _ = dialogue_run
        _, clip = _clip("dialogue")
        turns = pd.DataFrame(
            {
                "audio_start_ms": [u["start_s"] * 1000 for u in clip["utterances"]],
                "audio_end_ms": [u["end_s"] * 1000 for u in clip["utterances"]],
            }
        )
        rows = translation_turn_rows(_log_frame(log), "sidecar:translate:es", turns)
        assert [r["audio_start_ms"] for r in rows] == turns["audio_start_ms"].tolist()
        assert {r["span_source"] for r in rows} == {"speech_turns"}
        assert wer([u["text"] for u in clip["utterances"]], [r["transcript"] for r in rows]) <= 0.35

    def test_usage_is_the_audio_sent(self, dialogue_run):
        log, _ = dialogue_run
        _, clip = _clip("dialogue")
        usage = translation_usage(_log_frame(log), "sidecar:translate:es")
        assert usage["type"] == "duration"
        assert usage["seconds"] == pytest.approx(clip["duration_s"] + RunOptions().tail_ms / 1000, abs=0.05)

    def test_probe_row_of_a_working_session(self, dialogue_run):
        log, _ = dialogue_run
        row = translation_probe_row(_log_frame(log), "sidecar:translate:es")
        assert row["outcome"] == "ok" and row["completed"] and row["deltas_stream"] and row["n_deltas"] > 10
        assert "train station" in row["transcript"]

    def test_refused_handshake_is_recorded_and_the_run_ends(self, harness, tmp_path):
        leg = TranslationLeg(
            "sidecar:translate:es", Target.local(harness.url, api_key="wrong-key"), language="es"
        )
        log = asyncio.run(
            arun_legs(
                data_dir() / "clips" / "short.wav",
                [leg],
                out=tmp_path,
                options=RunOptions(speed=float("inf"), progress=False),
            )
        )
        [record] = EventLog.load(log.path).records
        assert record.type == "rtlab.handshake_failed" and record.event["status"] == 401
        assert "wrong-key" not in log.path.read_text()
        row = translation_probe_row(_log_frame(log), "sidecar:translate:es")
        assert (row["outcome"], row["http_status"], row["error_code"]) == (
            "handshake-refused",
            401,
            "invalid_api_key",
        )

    def test_an_azure_preview_target_is_refused_with_its_reason(self, tmp_path):
        target = Target.local("http://127.0.0.1:9", dialect="azure-preview")
        leg = TranslationSidecar("es").leg(target)
        log = asyncio.run(
            arun_legs(
                data_dir() / "clips" / "short.wav",
                [leg],
                out=tmp_path,
                options=RunOptions(speed=float("inf"), progress=False),
            )
        )
        [record] = EventLog.load(log.path).records
        assert record.type == "rtlab.leg_error" and "GA v1" in record.event["message"]
        assert translation_probe_row(_log_frame(log), leg.source)["outcome"] == "not-applicable"

    def test_probe_row_of_an_unsupported_language(self, harness, tmp_path):
        # The probe turns client-side validation off to see what the endpoint answers.
        leg = TranslationLeg(
            "probe:translation", Target.local(harness.url, api_key=KEY), language="xx", validate=False
        )
        log = asyncio.run(
            arun_legs(
                data_dir() / "clips" / "short.wav",
                [leg],
                out=tmp_path,
                options=RunOptions(speed=float("inf"), progress=False),
            )
        )
        row = translation_probe_row(_log_frame(log), "probe:translation")
        assert (row["outcome"], row["error_code"]) == ("error-event", "invalid_value")
        assert not row["completed"]


class TestNormalizerUnits:
    @staticmethod
    def frame(events: list[tuple[str, float, dict]]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "seq": range(len(events)),
                "t_ms": [t for _, t, _ in events],
                "audio_ms": [np.nan] * len(events),
                "direction": [d for d, _, _ in events],
                "source": ["tr"] * len(events),
                "type": [e["type"] for _, _, e in events],
                "event": [e for _, _, e in events],
            }
        )

    def test_gaps_split_turns_and_an_unclosed_stream_leaves_the_last_turn_pending(self):
        d = "session.input_transcript.delta"
        rows = translation_turn_rows(
            self.frame(
                [
                    ("server", 10, {"type": d, "delta": "hello", "elapsed_ms": 800}),
                    ("server", 20, {"type": d, "delta": " there", "elapsed_ms": 1000}),
                    (
                        "server",
                        30,
                        {"type": "session.output_transcript.delta", "delta": "hola", "elapsed_ms": 1000},
                    ),
                    ("server", 40, {"type": d, "delta": " how are", "elapsed_ms": 3000}),
                    ("server", 50, {"type": d, "delta": " you", "elapsed_ms": 3000}),
                ]
            ),
            "tr",
        )
        assert [r["transcript"] for r in rows] == ["hello there", "how are you"]
        assert [r["status"] for r in rows] == ["completed", "pending"]
        assert [(r["audio_start_ms"], r["audio_end_ms"]) for r in rows] == [(800, 1000), (3000, 3000)]
        assert [r["translation"] for r in rows] == ["hola", None]
        assert [r["n_deltas"] for r in rows] == [2, 2]

    def test_speech_turns_without_text_give_empty_rows(self):
        rows = translation_turn_rows(
            self.frame(
                [
                    (
                        "server",
                        5,
                        {"type": "session.input_transcript.delta", "delta": "yes", "elapsed_ms": 400},
                    ),
                    (
                        "server",
                        9,
                        {"type": "error", "error": {"message": "pair missing", "type": "server_error"}},
                    ),
                    ("server", 99, {"type": "session.closed"}),
                ]
            ),
            "tr",
            pd.DataFrame({"audio_start_ms": [0.0, 2000.0], "audio_end_ms": [500.0, 2500.0]}),
        )
        assert [r["transcript"] for r in rows] == ["yes", ""]
        assert [r["status"] for r in rows] == ["completed", "completed"]
        assert np.isnan(rows[1]["t_first_ms"]) and rows[0]["translation_error"] == "pair missing"


# ============================================================================================ real services
def _live_run(target: Target, tmp_path) -> tuple[list[dict], TranslationLeg]:
    leg = TranslationSidecar("es").leg(target)
    log = asyncio.run(
        arun_legs(
            data_dir() / "clips" / "short.wav",
            [leg],
            out=tmp_path,
            options=RunOptions(speed=1.0, progress=False),
        )
    )
    frame = _log_frame(log)
    return translation_turn_rows(frame, leg.source), leg


@pytest.mark.live
@pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="needs OPENAI_API_KEY")
def test_live_openai_translation_session_gives_a_source_transcript(tmp_path):
    rows, leg = _live_run(Target.openai(), tmp_path)
    assert not leg.state.errors, leg.state.errors
    assert rows and wer(_clip("short")[1]["reference"], " ".join(r["transcript"] for r in rows)) <= 0.35
    assert any(r["translation"] for r in rows)


@pytest.mark.live
@pytest.mark.skipif(
    not all(
        os.environ.get(v)
        for v in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_TRANSLATE_DEPLOYMENT")
    ),
    reason="needs AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY and AZURE_OPENAI_TRANSLATE_DEPLOYMENT",
)
def test_live_azure_translation_session_answers(tmp_path):
    # Reported (Microsoft Q&A 5912093) to fail with OperationNotSupported: records what the endpoint says.
    rows, leg = _live_run(Target.azure(), tmp_path)
    assert leg.state.session is not None or leg.state.closed
