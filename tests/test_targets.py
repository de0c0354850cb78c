"""rtlab.targets and rtlab.secrets: the SDK connection table, env configuration, lazy emulator, and no key leaks.

The connection tests point the official SDK at a tiny local ``websockets`` server that records each handshake
(path, query, headers) and closes: no emulator needed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import pickle
import random
import string
import sys
import types
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai import AsyncAzureOpenAI, AsyncOpenAI
from websockets.asyncio.server import serve

from rtlab import TargetError
from rtlab.config import SessionConfig
from rtlab.errors import RtlabError
from rtlab.secrets import RedactingFilter, Secret, install_redaction, mask, redact
from rtlab.targets import DEFAULT_AZURE_PREVIEW_API_VERSION, Target, parse_deployments

ENV_VARS = ("OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_API_VERSION",
            "AZURE_OPENAI_REALTIME_DEPLOYMENT", "AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS", "RTLAB_TARGET",
            "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_API_VERSION")


def fake_openai_key() -> str:
    # Built at run time so no key-shaped literal sits in the repository.
    rng = random.Random(7)
    return "sk-" + "test" + "x" * 4 + "-" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(40))


def fake_azure_key() -> str:
    rng = random.Random(11)
    return "".join(rng.choice("0123456789abcdef") for _ in range(32))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


# ==============================================================================================================
# A handshake recorder
# ==============================================================================================================
class Recorder:
    """A websockets server on port 0 that records each handshake, then closes the connection."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        self.url = ""

    async def _handler(self, ws) -> None:
        parts = urlsplit(ws.request.path)
        self.seen.append({
            "path": parts.path,
            "query": dict(parse_qsl(parts.query)),
            "raw_query": parts.query,
            "headers": {k.lower(): v for k, v in ws.request.headers.raw_items()},
        })
        await ws.close()


def run_with_recorder(body):
    """Run ``body(recorder)`` (a coroutine function) while the recorder serves; return the recorder."""
    recorder = Recorder()

    async def main():
        async with serve(recorder._handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            recorder.url = f"http://127.0.0.1:{port}"
            await body(recorder)

    asyncio.run(main())
    return recorder


async def handshake(target: Target, kind: str, model: str | None = None) -> None:
    async with target.connect(kind, model=model):
        pass


OPENAI_KEY = fake_openai_key()
AZURE_KEY = fake_azure_key()
DEPLOYMENTS = {"tx-whisper": "gpt-realtime-whisper", "tx-4o": "gpt-4o-transcribe"}


def _targets(url: str) -> dict[str, Target]:
    return {
        "local-openai-ga": Target.local(url),
        "local-openai-beta": Target.local(url, dialect="openai-beta"),
        "local-azure-ga": Target.local(url, provider_profile="azure", realtime_deployment="rt-dep"),
        "local-azure-preview": Target.local(url, provider_profile="azure", dialect="azure-preview",
                                            realtime_deployment="rt-dep", deployments=DEPLOYMENTS),
        "openai-ga": Target.openai(OPENAI_KEY, base_url=url),
        "openai-beta": Target.openai(OPENAI_KEY, base_url=url + "/v1", dialect="openai-beta"),
        "azure-ga": Target.azure(url, AZURE_KEY, realtime_deployment="rt-dep", deployments=DEPLOYMENTS),
        "azure-preview": Target.azure(url + "/openai", AZURE_KEY, preview=True, realtime_deployment="rt-dep",
                                      deployments=DEPLOYMENTS),
    }


V = DEFAULT_AZURE_PREVIEW_API_VERSION
BEARER_LOCAL = ("authorization", "Bearer rtlab-local")
BEARER_OPENAI = ("authorization", f"Bearer {OPENAI_KEY}")
BEARER_AZURE = ("authorization", f"Bearer {AZURE_KEY}")
#: PROTOCOL.md's connection table: target -> kind -> (path, query, auth header, beta header?)
EXPECTED = {
    "local-openai-ga": {
        "realtime": ("/v1/realtime", {"model": "gpt-realtime"}, BEARER_LOCAL, False),
        "transcription": ("/v1/realtime", {"intent": "transcription"}, BEARER_LOCAL, False),
    },
    "local-openai-beta": {
        "realtime": ("/v1/realtime", {"model": "gpt-realtime"}, BEARER_LOCAL, True),
        "transcription": ("/v1/realtime", {"intent": "transcription"}, BEARER_LOCAL, True),
    },
    "local-azure-ga": {
        "realtime": ("/openai/v1/realtime", {"model": "rt-dep"}, BEARER_LOCAL, False),
        "transcription": ("/openai/v1/realtime", {"intent": "transcription"}, BEARER_LOCAL, False),
    },
    "local-azure-preview": {
        "realtime": ("/openai/realtime", {"api-version": V, "deployment": "rt-dep"}, ("api-key", "rtlab-local"),
                     True),
        "transcription": ("/openai/realtime", {"intent": "transcription", "api-version": V,
                                               "deployment": "tx-whisper"}, ("api-key", "rtlab-local"), True),
    },
    "openai-ga": {
        "realtime": ("/v1/realtime", {"model": "gpt-realtime"}, BEARER_OPENAI, False),
        "transcription": ("/v1/realtime", {"intent": "transcription"}, BEARER_OPENAI, False),
    },
    "openai-beta": {
        "realtime": ("/v1/realtime", {"model": "gpt-realtime"}, BEARER_OPENAI, True),
        "transcription": ("/v1/realtime", {"intent": "transcription"}, BEARER_OPENAI, True),
    },
    "azure-ga": {
        "realtime": ("/openai/v1/realtime", {"model": "rt-dep"}, BEARER_AZURE, False),
        "transcription": ("/openai/v1/realtime", {"intent": "transcription"}, BEARER_AZURE, False),
    },
    "azure-preview": {
        "realtime": ("/openai/realtime", {"api-version": V, "deployment": "rt-dep"}, ("api-key", AZURE_KEY), True),
        "transcription": ("/openai/realtime", {"intent": "transcription", "api-version": V,
                                               "deployment": "tx-whisper"}, ("api-key", AZURE_KEY), True),
    },
}


def test_every_target_kind_hits_the_documented_url_and_headers():
    names: list[tuple[str, str]] = []

    async def body(rec):
        for name, target in _targets(rec.url).items():
            for kind in ("realtime", "transcription"):
                await handshake(target, kind)
                names.append((name, kind))

    rec = run_with_recorder(body)
    assert len(rec.seen) == len(names) == 16
    targets = _targets(rec.url)
    for (name, kind), seen in zip(names, rec.seen, strict=True):
        path, query, (auth_name, auth_value), beta = EXPECTED[name][kind]
        where = f"{name}/{kind}"
        assert seen["path"] == path, where
        assert seen["query"] == query, where
        assert seen["headers"].get(auth_name) == auth_value, where
        other_auth = "api-key" if auth_name == "authorization" else "authorization"
        assert other_auth not in seen["headers"], where
        assert (seen["headers"].get("openai-beta") == "realtime=v1") == beta, where
        # url_for tells a notebook the same URL the SDK used, without any key in it
        url = targets[name].url_for(kind)
        assert url == f"ws://127.0.0.1:{rec.url.rsplit(':', 1)[1]}{path}?{seen['raw_query']}", where
        assert OPENAI_KEY not in url and AZURE_KEY not in url
        assert targets[name].headers_for().keys() == {"Authorization" if auth_name == "authorization"
                                                      else "api-key", *(["OpenAI-Beta"] if beta else [])}


def test_explicit_models_and_deployments_go_in_the_url():
    async def body(rec):
        t = _targets(rec.url)
        await handshake(t["openai-ga"], "realtime", "gpt-realtime-mini")
        await handshake(t["azure-ga"], "realtime", "other-dep")
        await handshake(t["azure-preview"], "transcription", "tx-4o")

    rec = run_with_recorder(body)
    assert [s["query"] for s in rec.seen] == [
        {"model": "gpt-realtime-mini"}, {"model": "other-dep"},
        {"intent": "transcription", "api-version": V, "deployment": "tx-4o"}]


def test_ga_transcription_takes_no_model():
    with pytest.raises(TargetError, match="intent=transcription"):
        Target.local("http://127.0.0.1:1").connect("transcription", model="gpt-4o-transcribe")
    with pytest.raises(TargetError, match="kind"):
        Target.local("http://127.0.0.1:1").connect("voice")


def test_clients_are_the_official_sdk_ones():
    t = _targets("http://127.0.0.1:9")
    assert type(t["azure-preview"].client()) is AsyncAzureOpenAI
    for name in ("openai-ga", "openai-beta", "azure-ga", "local-openai-ga", "local-azure-ga"):
        assert type(t[name].client()) is AsyncOpenAI
    assert str(t["azure-ga"].client().base_url) == "http://127.0.0.1:9/openai/v1/"
    assert str(t["openai-ga"].client().base_url) == "http://127.0.0.1:9/v1/"
    assert str(Target.openai(OPENAI_KEY).client().base_url) == "https://api.openai.com/v1/"
    assert Target.openai(OPENAI_KEY).url_for("realtime") == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    az = Target.azure("https://res.openai.azure.com/", AZURE_KEY, preview=True, realtime_deployment="rt")
    assert az.url_for() == f"wss://res.openai.azure.com/openai/realtime?api-version={V}&deployment=rt"


def test_target_renders_configs_with_its_dialect_and_deployments():
    t = _targets("http://127.0.0.1:9")["azure-preview"]
    event = t.render(SessionConfig.transcription(model="tx-whisper", turn_detection=None))
    assert event["type"] == "transcription_session.update"
    # the deployment maps to gpt-realtime-whisper, so its rules apply (no VAD in a transcription session)
    with pytest.raises(RtlabError, match="deployment of gpt-realtime-whisper"):
        t.render(SessionConfig.transcription(model="tx-whisper", turn_detection="server_vad"))
    with pytest.raises(RtlabError, match="tx-4o, tx-whisper"):
        t.render(SessionConfig.transcription(model="gpt-realtime-whisper"))


# ==============================================================================================================
# Lazy embedded emulator (a stand-in module: the real emulator is tested elsewhere)
# ==============================================================================================================
class FakeHandle:
    def __init__(self, url: str) -> None:
        self.url = url
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


def test_local_target_starts_the_emulator_once_on_first_use(monkeypatch):
    calls: list[dict] = []
    fake = types.ModuleType("rtlab.emulator")

    async def body(rec):
        def start(**kw):
            calls.append(kw)
            return FakeHandle(rec.url)

        fake.start = start
        monkeypatch.setitem(sys.modules, "rtlab.emulator", fake)
        target = Target.local(provider_profile="azure", seed=3)
        assert calls == [] and "not started" in repr(target)
        await handshake(target, "realtime")
        preview = target.with_dialect("azure-preview")
        await handshake(preview, "realtime")
        await handshake(target, "transcription")
        assert calls == [{"profile": "azure", "seed": 3}]
        assert "running" in repr(target) and target.url == rec.url
        handle = target._emulator.handle
        preview.stop()
        assert handle.stopped and "not started" in repr(target)

    rec = run_with_recorder(body)
    assert [s["path"] for s in rec.seen] == ["/openai/v1/realtime", "/openai/realtime", "/openai/v1/realtime"]
    assert rec.seen[1]["query"]["api-version"] == V


# ==============================================================================================================
# Building targets from the environment
# ==============================================================================================================
def test_from_env_defaults_to_the_local_emulator():
    t = Target.from_env()
    assert t.provider == "local" and t.dialect == "openai-ga" and t.base_url is None


def test_from_env_openai(monkeypatch):
    monkeypatch.setenv("RTLAB_TARGET", "openai")
    with pytest.raises(TargetError, match="OPENAI_API_KEY"):
        Target.from_env()
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    t = Target.from_env()
    assert (t.provider, t.dialect, t.base_url) == ("openai", "openai-ga", "https://api.openai.com")
    assert t.api_key.reveal() == OPENAI_KEY and t.api_key.source_env == "OPENAI_API_KEY"


def test_from_env_azure_names_each_missing_variable(monkeypatch):
    monkeypatch.setenv("RTLAB_TARGET", "azure")
    with pytest.raises(TargetError, match="AZURE_OPENAI_ENDPOINT"):
        Target.from_env()
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com/openai/v1/")
    with pytest.raises(TargetError, match="AZURE_OPENAI_API_KEY"):
        Target.from_env()
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    monkeypatch.setenv("AZURE_OPENAI_API_VERSION", "2025-04-01-preview")  # used by preview only
    t = Target.from_env()
    assert (t.provider, t.dialect, t.base_url, t.api_version) == ("azure", "azure-ga",
                                                                  "https://res.openai.azure.com", None)
    with pytest.raises(TargetError, match="AZURE_OPENAI_REALTIME_DEPLOYMENT"):
        t.connect("realtime")
    monkeypatch.setenv("AZURE_OPENAI_REALTIME_DEPLOYMENT", "rt")
    monkeypatch.setenv("AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS", "w=gpt-realtime-whisper, gpt-4o-transcribe")
    monkeypatch.setenv("AZURE_OPENAI_API_VERSION", "2024-10-01-preview")
    monkeypatch.setenv("RTLAB_TARGET", "azure-preview")
    t = Target.from_env()
    assert (t.dialect, t.api_version, t.realtime_deployment) == ("azure-preview", "2024-10-01-preview", "rt")
    assert t.deployments == {"w": "gpt-realtime-whisper", "gpt-4o-transcribe": "gpt-4o-transcribe"}
    assert t.url_for("transcription") == ("wss://res.openai.azure.com/openai/realtime?intent=transcription&"
                                          "api-version=2024-10-01-preview&deployment=w")


def test_azure_preview_transcription_needs_a_deployment(monkeypatch):
    t = Target.azure("https://res.openai.azure.com", AZURE_KEY, preview=True)
    assert t.api_version == V
    with pytest.raises(TargetError, match="AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS"):
        t.url_for("transcription")


@pytest.mark.parametrize("value, needle", [
    ("mars", "RTLAB_TARGET"),
])
def test_bad_target_name(monkeypatch, value, needle):
    monkeypatch.setenv("RTLAB_TARGET", value)
    with pytest.raises(TargetError, match=needle) as info:
        Target.from_env()
    assert "mars" in str(info.value)


def test_bad_arguments_are_clear():
    with pytest.raises(TargetError, match="preview=True"):
        Target.azure("https://res.openai.azure.com", AZURE_KEY, api_version="2025-04-01-preview")
    with pytest.raises(TargetError, match="not an http"):
        Target.azure("res.openai.azure.com", AZURE_KEY)
    with pytest.raises(TargetError, match="azure-ga"):
        Target("openai", "azure-ga", "https://x.example", Secret(OPENAI_KEY))
    with pytest.raises(TargetError, match="empty"):
        Target.openai("")
    with pytest.raises(TargetError, match="deployment=model"):
        parse_deployments("a=,b=c", source="AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS")
    assert parse_deployments("x=gpt-4o-transcribe,,y") == {"x": "gpt-4o-transcribe", "y": "y"}


# ==============================================================================================================
# Secrets never show
# ==============================================================================================================
def _leaks(text: str | bytes, key: str) -> bool:
    if isinstance(text, bytes):
        return key.encode() in text or key[5:25].encode() in text
    return key in text or key[5:25] in text


@pytest.mark.parametrize("which", ["openai", "azure", "azure-env"])
def test_a_key_never_leaks(which, monkeypatch, caplog):
    if which == "openai":
        key, target = OPENAI_KEY, Target.openai(OPENAI_KEY)
    elif which == "azure":
        key = AZURE_KEY
        target = Target.azure("https://res.openai.azure.com", key, preview=True, realtime_deployment="rt")
    else:
        key = AZURE_KEY
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", key)
        monkeypatch.setenv("AZURE_OPENAI_REALTIME_DEPLOYMENT", "rt")
        target = Target.from_env("azure")

    outputs: list[str | bytes] = [
        repr(target), str(target), f"{target}", f"{target!r:>40}", "%s %r" % (target, target),  # noqa: UP031
        repr(target.api_key), str(target.api_key), f"{target.api_key}", "%s" % target.api_key,  # noqa: UP031
        "Bearer " + target.api_key, target._repr_html_(), json.dumps(target.to_dict()),
        json.dumps(dataclasses.asdict(target), default=str), repr(dataclasses.asdict(target)),
        pickle.dumps(target), pickle.dumps(target.api_key), json.dumps({"k": target.api_key}),
        repr(target.headers_for()), target.url_for("realtime"),
    ]
    for out in outputs:
        assert not _leaks(out, key), out

    # Logging: whatever code logs the key, the redacting filter masks it.
    caplog.set_level(logging.DEBUG)
    install_redaction()
    log = logging.getLogger("rtlab.test")
    log.info("connecting with key=%s", target.api_key.reveal())
    log.warning(f"headers {{'api-key': '{target.api_key.reveal()}'}}")
    try:
        raise RuntimeError(f"handshake failed for {target.api_key.reveal()}")
    except RuntimeError:
        log.exception("boom")
    assert caplog.records and not _leaks(caplog.text, key)
    assert all(not _leaks(r.getMessage(), key) for r in caplog.records)

    # Exceptions: a key pasted where the endpoint goes is masked in the error.
    for bad in (key, f"https://res.openai.azure.com/?api-key={key}"):
        with pytest.raises(TargetError) as info:
            Target.azure(bad, key)
        assert not _leaks(str(info.value), key) and not _leaks(repr(info.value), key)

    # Round trips keep working where they can, without ever carrying the key.
    clone = pickle.loads(pickle.dumps(target))
    if target.api_key.source_env:
        assert clone.api_key.reveal() == key  # re-read from the environment
    else:
        with pytest.raises(TargetError, match="pickl"):
            clone.api_key.reveal()
    assert dataclasses.asdict(target)["api_key"].reveal() == key


def test_handshake_debug_logs_are_redacted(caplog):
    # websockets logs every handshake header at DEBUG: the key must not get through.
    caplog.set_level(logging.DEBUG)

    async def body(rec):
        await handshake(Target.openai(OPENAI_KEY, base_url=rec.url), "realtime")
        await handshake(Target.azure(rec.url, AZURE_KEY, preview=True, realtime_deployment="d"), "realtime")

    run_with_recorder(body)
    text = caplog.text
    assert "authorization" in text.lower() and "api-key" in text.lower(), "expected header logs to check"
    assert not _leaks(text, OPENAI_KEY) and not _leaks(text, AZURE_KEY)


def test_the_sdk_gets_the_real_key():
    target = Target.openai(OPENAI_KEY)
    assert target.client().api_key == OPENAI_KEY
    assert Target.azure("https://r.openai.azure.com", AZURE_KEY, preview=True).client().api_key == AZURE_KEY


# ------------------------------------------------------------------------------------------------- secrets unit
def test_mask_examples():
    assert mask("sk-" + "a" * 30 + "wxyz") == "sk-…wxyz"
    assert mask(AZURE_KEY) == "…" + AZURE_KEY[-4:]
    assert mask("short") == "…t"
    assert mask("abc") == "…"
    assert mask(None) == mask("") == "<not set>"


@given(st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=120))
def test_mask_never_shows_more_than_four_characters(value):
    shown = mask(value)
    body = shown.split("…", 1)[1]
    assert len(body) <= 4 and value.endswith(body)
    prefix = shown.split("…", 1)[0]
    assert prefix in ("", "sk-")


def test_secret_behaves_like_its_mask_but_reveals():
    key = Secret(OPENAI_KEY)
    assert key == Secret(OPENAI_KEY) and key != Secret(OPENAI_KEY + "z") and hash(key) == hash(Secret(OPENAI_KEY))
    assert key.reveal() == OPENAI_KEY and len(str(key)) < 12
    assert not Secret(None) and Secret(None).__repr__() == "Secret('<not set>')"
    with pytest.raises(TypeError):
        Secret(123)  # type: ignore[arg-type]
    assert not hasattr(key, "__dict__")


def test_redact_patterns():
    azure = fake_azure_key()
    line = (f"Authorization: Bearer abcdefghij0123456789 api-key: {azure} "
            f"url=https://x?key={OPENAI_KEY} header=('api-key', 'opaque-token-value')")
    out = redact(line)
    assert "abcdefghij0123456789" not in out and azure not in out and OPENAI_KEY not in out
    assert "opaque-token-value" not in out and "Authorization: Bearer …" in out
    assert redact("nothing secret here, 12345") == "nothing secret here, 12345"


def test_filter_keeps_records_and_scrubs_extra_values():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token %s", ("plain-password-1",), None)
    assert RedactingFilter(secrets=["plain-password-1"]).filter(record) is True
    assert "plain-password-1" not in record.getMessage()
