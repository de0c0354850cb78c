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
import time
import types
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai import AsyncAzureOpenAI, AsyncOpenAI
from websockets.asyncio.server import serve

from rtlab import TargetError
from rtlab.analysis import turns as turns_of
from rtlab.auth import AZURE_SCOPE, TokenProvider
from rtlab.config import SessionConfig
from rtlab.errors import RtlabError
from rtlab.secrets import RedactingFilter, Secret, install_redaction, mask, redact
from rtlab.targets import DEFAULT_AZURE_PREVIEW_API_VERSION, Target, parse_deployments

ENV_VARS = ("OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_API_VERSION",
            "AZURE_OPENAI_REALTIME_DEPLOYMENT", "AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS", "RTLAB_TARGET",
            "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_API_VERSION", "AZURE_OPENAI_AUTH",
            "AZURE_OPENAI_AD_TOKEN")


def fake_openai_key() -> str:
    # Built at run time so no key-shaped literal sits in the repository.
    rng = random.Random(7)
    return "sk-" + "test" + "x" * 4 + "-" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(40))


def fake_azure_key() -> str:
    rng = random.Random(11)
    return "".join(rng.choice("0123456789abcdef") for _ in range(32))


def fake_entra_token(seed: int = 13) -> str:
    # JWT-shaped (header.payload.signature), built at run time like the keys above.
    rng = random.Random(seed)
    part = lambda n: "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(n))  # noqa: E731
    return f"eyJ{part(30)}.{part(120)}.{part(60)}"


class StaticCredential:
    """A stand-in azure-identity credential: hands out one fixed token and records the scopes asked for."""

    def __init__(self, token: str) -> None:
        self._token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs):
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken(self._token, int(time.time()) + 3600)


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
        "realtime": ("/v1/realtime", {"model": "gpt-realtime-2.1"}, BEARER_LOCAL, False),
        "transcription": ("/v1/realtime", {"intent": "transcription"}, BEARER_LOCAL, False),
    },
    "local-openai-beta": {
        "realtime": ("/v1/realtime", {"model": "gpt-realtime-2.1"}, BEARER_LOCAL, True),
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
        "realtime": ("/v1/realtime", {"model": "gpt-realtime-2.1"}, BEARER_OPENAI, False),
        "transcription": ("/v1/realtime", {"intent": "transcription"}, BEARER_OPENAI, False),
    },
    "openai-beta": {
        "realtime": ("/v1/realtime", {"model": "gpt-realtime-2.1"}, BEARER_OPENAI, True),
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
        await handshake(t["azure-ga"], "realtime", "rt-dep")
        await handshake(t["azure-ga"], "realtime", "gpt-realtime")  # a voice model: the voice deployment serves it
        await handshake(t["azure-preview"], "transcription", "tx-4o")
        await handshake(t["azure-preview"], "transcription", "gpt-realtime-whisper")  # model -> its deployment

    rec = run_with_recorder(body)
    assert [s["query"] for s in rec.seen] == [
        {"model": "gpt-realtime-mini"}, {"model": "rt-dep"}, {"model": "rt-dep"},
        {"intent": "transcription", "api-version": V, "deployment": "tx-4o"},
        {"intent": "transcription", "api-version": V, "deployment": "tx-whisper"}]


def test_a_name_that_is_neither_a_deployment_nor_a_model_lists_the_deployments():
    t = _targets("http://127.0.0.1:9")["azure-ga"]
    with pytest.raises(TargetError) as info:
        t.connect("realtime", "other-dep")
    message = str(info.value)
    assert "'other-dep' is neither a deployment" in message
    assert "rt-dep (voice), tx-whisper (gpt-realtime-whisper), tx-4o (gpt-4o-transcribe)" in message
    assert AZURE_KEY not in message


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
    assert Target.openai(OPENAI_KEY).url_for("realtime") == "wss://api.openai.com/v1/realtime?model=gpt-realtime-2.1"
    az = Target.azure("https://res.openai.azure.com/", AZURE_KEY, preview=True, realtime_deployment="rt")
    assert az.url_for() == f"wss://res.openai.azure.com/openai/realtime?api-version={V}&deployment=rt"


def test_target_renders_configs_with_its_dialect_and_deployments():
    t = _targets("http://127.0.0.1:9")["azure-preview"]
    event = t.render(SessionConfig.transcription(model="tx-whisper", turn_detection=None))
    assert event["type"] == "transcription_session.update"
    # the deployment maps to gpt-realtime-whisper, so its rules apply (no VAD in a transcription session)
    with pytest.raises(RtlabError, match="deployment of gpt-realtime-whisper"):
        t.render(SessionConfig.transcription(model="tx-whisper", turn_detection="server_vad"))
    # a model name is sent as the deployment that serves it; a model no deployment serves is refused
    mapped = t.render(SessionConfig.transcription(model="gpt-realtime-whisper"))
    assert mapped["session"]["input_audio_transcription"]["model"] == "tx-whisper"
    with pytest.raises(RtlabError, match="tx-4o, tx-whisper"):
        t.render(SessionConfig.transcription(model="whisper-1"))


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
        assert calls == [{"profile": "azure", "seed": 3, "timing": None}]  # None: the profile's own timing
        assert "running" in repr(target) and target.url == rec.url
        handle = target._emulator.handle
        preview.stop()
        assert handle.stopped and "not started" in repr(target)

    rec = run_with_recorder(body)
    assert [s["path"] for s in rec.seen] == ["/openai/v1/realtime", "/openai/realtime", "/openai/v1/realtime"]
    assert rec.seen[1]["query"]["api-version"] == V


def test_a_local_target_naming_deployments_plays_a_resource_with_exactly_those(monkeypatch):
    calls: list[dict] = []
    fake = types.ModuleType("rtlab.emulator")

    class FakeProfile:
        def __init__(self, name: str, deployments: dict | None = None) -> None:
            self.name, self.deployments = name, deployments

        def with_deployments(self, deployments: dict) -> FakeProfile:
            return FakeProfile(self.name, dict(deployments))

    async def body(rec):
        fake.load_profile = FakeProfile
        fake.start = lambda **kw: calls.append(kw) or FakeHandle(rec.url)
        monkeypatch.setitem(sys.modules, "rtlab.emulator", fake)
        named = Target.local(provider_profile="azure", seed=4, realtime_deployment="prod-voice=gpt-realtime",
                             deployments=DEPLOYMENTS)
        await handshake(named, "realtime")
        voice_only = Target.local(provider_profile="azure", realtime_deployment="my-voice")
        await handshake(voice_only, "realtime")

    rec = run_with_recorder(body)
    (named, voice_only) = calls
    assert (named["profile"].name, named["seed"]) == ("azure", 4)
    assert named["profile"].deployments == {**DEPLOYMENTS, "prod-voice": "gpt-realtime"}
    # a voice deployment whose model is not stated plays the default voice model
    assert voice_only["profile"].deployments == {"my-voice": "gpt-realtime-2.1"}
    assert [s["query"]["model"] for s in rec.seen] == ["prod-voice", "my-voice"]


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
    # no key: keyless Entra ID sign-in (nothing is fetched until a connection is made)
    assert Target.from_env().auth == "entra"
    monkeypatch.setenv("AZURE_OPENAI_AUTH", "key")
    with pytest.raises(TargetError, match="AZURE_OPENAI_API_KEY"):
        Target.from_env()
    monkeypatch.delenv("AZURE_OPENAI_AUTH")
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


ENTRA_TOKEN = fake_entra_token()


@pytest.mark.parametrize("which", ["openai", "azure", "azure-env", "azure-entra", "azure-entra-env"])
def test_a_key_never_leaks(which, monkeypatch, caplog):
    """Keys and Entra ID tokens alike: never in a repr, str, dict, pickle, header view, log line or error."""
    entra = which.startswith("azure-entra")
    if which == "openai":
        key, target = OPENAI_KEY, Target.openai(OPENAI_KEY)
    elif which == "azure":
        key = AZURE_KEY
        target = Target.azure("https://res.openai.azure.com", key, preview=True, realtime_deployment="rt")
    elif which == "azure-env":
        key = AZURE_KEY
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", key)
        monkeypatch.setenv("AZURE_OPENAI_REALTIME_DEPLOYMENT", "rt")
        target = Target.from_env("azure")
    elif which == "azure-entra":
        key = ENTRA_TOKEN
        target = Target.azure("https://res.openai.azure.com", preview=True, realtime_deployment="rt",
                              credential=StaticCredential(key))
    else:  # an explicit provider object, chosen through the environment's endpoint and AZURE_OPENAI_AUTH
        key = ENTRA_TOKEN
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)  # ignored: AZURE_OPENAI_AUTH=entra wins
        monkeypatch.setenv("AZURE_OPENAI_AUTH", "entra")
        target = Target.azure(realtime_deployment="rt", credential=TokenProvider(lambda: ENTRA_TOKEN))
    secret_value = target.token_provider.get() if entra else target.api_key.reveal()
    assert secret_value == key

    outputs: list[str | bytes] = [
        repr(target), str(target), f"{target}", f"{target!r:>40}", "%s %r" % (target, target),  # noqa: UP031
        repr(target.api_key), str(target.api_key), f"{target.api_key}", "%s" % target.api_key,  # noqa: UP031
        "Bearer " + target.api_key, target._repr_html_(), json.dumps(target.to_dict()),
        json.dumps(dataclasses.asdict(target), default=str), repr(dataclasses.asdict(target)),
        pickle.dumps(target), pickle.dumps(target.api_key), json.dumps({"k": target.api_key}),
        repr(target.headers_for()), target.url_for("realtime"),
        repr(target.token_provider), pickle.dumps(target.token_provider),
        repr(target.with_dialect("azure-ga")) if target.provider == "azure" else "",
    ]
    for out in outputs:
        assert not _leaks(out, key), out

    # Logging: whatever code logs the key, the redacting filter masks it.
    caplog.set_level(logging.DEBUG)
    install_redaction()
    log = logging.getLogger("rtlab.test")
    log.info("connecting with key=%s", secret_value)
    log.warning(f"headers {{'api-key': '{secret_value}'}}")
    log.debug("token %s", secret_value)
    try:
        raise RuntimeError(f"handshake failed for {secret_value}")
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
    if entra:
        with pytest.raises(TargetError, match="pickl"):
            clone.token_provider.get()
        assert dataclasses.asdict(target)["token_provider"].get() == key
    elif target.api_key.source_env:
        assert clone.api_key.reveal() == key  # re-read from the environment
    else:
        with pytest.raises(TargetError, match="pickl"):
            clone.api_key.reveal()
    if not entra:
        assert dataclasses.asdict(target)["api_key"].reveal() == key


def test_handshake_debug_logs_are_redacted(caplog):
    # websockets logs every handshake header at DEBUG: the key must not get through.
    caplog.set_level(logging.DEBUG)

    token = fake_entra_token(21)

    async def body(rec):
        await handshake(Target.openai(OPENAI_KEY, base_url=rec.url), "realtime")
        await handshake(Target.azure(rec.url, AZURE_KEY, preview=True, realtime_deployment="d"), "realtime")
        await handshake(Target.azure(rec.url, realtime_deployment="d", credential=StaticCredential(token)),
                        "realtime")

    rec = run_with_recorder(body)
    assert rec.seen[-1]["headers"]["authorization"] == f"Bearer {token}"  # it was really sent...
    text = caplog.text
    assert "authorization" in text.lower() and "api-key" in text.lower(), "expected header logs to check"
    assert not _leaks(text, OPENAI_KEY) and not _leaks(text, AZURE_KEY)
    assert not _leaks(text, token)  # ...and never logged


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


# ==============================================================================================================
# Keyless Azure sign-in (Microsoft Entra ID)
# ==============================================================================================================
def test_entra_tokens_travel_as_bearer_on_both_azure_paths():
    token = fake_entra_token(31)
    cred = StaticCredential(token)

    async def body(rec):
        await handshake(Target.azure(rec.url, realtime_deployment="rt", credential=cred), "realtime")
        await handshake(Target.azure(rec.url, realtime_deployment="rt", credential=cred), "transcription")
        await handshake(Target.azure(rec.url, preview=True, realtime_deployment="rt", credential=cred), "realtime")
        await handshake(Target.azure(rec.url, preview=True, deployments=DEPLOYMENTS, credential=cred),
                        "transcription")

    rec = run_with_recorder(body)
    assert [s["path"] for s in rec.seen] == ["/openai/v1/realtime"] * 2 + ["/openai/realtime"] * 2
    for seen in rec.seen:
        assert seen["headers"]["authorization"] == f"Bearer {token}"
        assert "api-key" not in seen["headers"]
    # every token was asked for the Cognitive Services scope, and only that
    assert cred.scopes and set(cred.scopes) == {(AZURE_SCOPE,)}
    assert AZURE_SCOPE == "https://cognitiveservices.azure.com/.default"


def test_entra_clients_are_the_official_sdk_ones_with_a_token_provider():
    cred = StaticCredential(fake_entra_token(33))
    ga = Target.azure("https://r.openai.azure.com", credential=cred).client()
    preview = Target.azure("https://r.openai.azure.com", preview=True, credential=cred).client()
    assert type(ga) is AsyncOpenAI and type(preview) is AsyncAzureOpenAI
    assert ga.api_key == "" and preview.api_key != fake_entra_token(33)  # no token stored up front


def test_how_azure_signs_in(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    # a key wins when there is one ...
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    assert Target.azure().auth == "key"
    # ... unless AZURE_OPENAI_AUTH=entra
    monkeypatch.setenv("AZURE_OPENAI_AUTH", "entra")
    t = Target.azure()
    assert (t.auth, t.token_provider.kind, bool(t.api_key)) == ("entra", "DefaultAzureCredential", False)
    with pytest.raises(TargetError, match="AZURE_OPENAI_AUTH=entra"):
        Target.azure(api_key=AZURE_KEY)
    # no key at all: Entra ID by default
    monkeypatch.delenv("AZURE_OPENAI_AUTH")
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    assert Target.azure().auth == "entra"
    assert Target.from_env("azure-preview").auth == "entra"
    # an explicit credential, a callable, or a provider
    assert Target.azure(credential=StaticCredential("x" * 20)).token_provider.kind == "StaticCredential"
    assert Target.azure(credential=lambda: "y" * 20).token_provider.get() == "y" * 20
    with pytest.raises(TargetError, match="not both"):
        Target.azure(api_key=AZURE_KEY, credential=StaticCredential("x" * 20))
    monkeypatch.setenv("AZURE_OPENAI_AUTH", "password")
    with pytest.raises(TargetError, match="AZURE_OPENAI_AUTH='password'"):
        Target.azure()
    with pytest.raises(TargetError, match="not OpenAI"):
        Target("openai", "openai-ga", "https://api.openai.com", Secret(None), token_provider=TokenProvider())
    with pytest.raises(TargetError, match="credential must be"):
        TokenProvider(42)  # type: ignore[arg-type]


def test_keyless_without_azure_identity_says_what_to_install(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # as if not installed
    with pytest.raises(TargetError, match=r"AZURE_OPENAI_API_KEY.*rtlab\[azure\]"):
        Target.azure()
    monkeypatch.setenv("AZURE_OPENAI_AUTH", "entra")
    with pytest.raises(TargetError, match=r"rtlab\[azure\]"):
        Target.azure().token_provider.get()
    # a callable token source needs nothing else
    assert Target.azure(credential=lambda: "z" * 20).token_provider.get() == "z" * 20


def test_token_sources_sync_async_and_empty():
    async def from_vault() -> str:
        return "v" * 24

    provider = TokenProvider(from_vault)
    assert asyncio.run(provider.aget()) == "v" * 24
    with pytest.raises(TargetError, match="asynchronous"):
        provider.get()
    assert asyncio.run(TokenProvider(lambda: "s" * 24).aget()) == "s" * 24
    with pytest.raises(TargetError, match="no token"):
        TokenProvider(lambda: "").get()
    # a pickled DefaultAzureCredential provider is rebuilt (lazily) as one
    clone = pickle.loads(pickle.dumps(TokenProvider()))
    assert clone.kind == "DefaultAzureCredential" and clone._unusable is None


def test_keyless_session_against_an_emulator_that_requires_a_bearer_token(tmp_path):
    from rtlab.analysis.diagnose import diagnose
    from rtlab.data import clip_path
    from rtlab.emulator import start
    from rtlab.runs import run_session

    token = fake_entra_token(41)
    with start(profile="azure", seed=2, bearer_token=token) as emu:
        cred = StaticCredential(token)
        config = SessionConfig.realtime(transcription="whisper-1")
        good = run_session(Target.azure(emu.url, realtime_deployment="gpt-realtime", credential=cred), config,
                           clip_path("short"), out=tmp_path / "good", speed=float("inf"), progress=False)
        turns = turns_of(good)
        assert len(turns) >= 1 and turns["transcript"].str.len().gt(0).all()
        assert cred.scopes == [(AZURE_SCOPE,)] * len(cred.scopes) and cred.scopes

        # a key where only Entra ID is allowed (the preview client sends it in api-key), and a wrong token:
        # refused at the handshake, and diagnosed
        with_key = run_session(Target.azure(emu.url, AZURE_KEY, preview=True, realtime_deployment="gpt-realtime"),
                               config, clip_path("short"), out=tmp_path / "key", speed=float("inf"), progress=False)
        wrong = run_session(Target.azure(emu.url, realtime_deployment="gpt-realtime",
                                         credential=StaticCredential(fake_entra_token(43))),
                            config, clip_path("short"), out=tmp_path / "wrong", speed=float("inf"), progress=False)
        preview = run_session(Target.azure(emu.url, preview=True, realtime_deployment="gpt-realtime",
                                           credential=cred), config, clip_path("short"), out=tmp_path / "preview",
                              speed=float("inf"), progress=False)
    assert [(d.id, d.facts.status) for d in diagnose(with_key)] == [("azure_key_auth_disabled", 403)]
    assert [(d.id, d.facts.status) for d in diagnose(wrong)] == [("entra_bad_token", 401)]
    assert len(diagnose(preview)) == 0 and len(turns_of(preview)) >= 1
    for log_dir in ("good", "key", "wrong", "preview"):
        text = "".join(p.read_text(errors="replace") for p in (tmp_path / log_dir).glob("*.json*"))
        assert token not in text and token[10:40] not in text


@pytest.mark.parametrize("headers, expected", [
    ({"authorization": "Bearer TOKEN-123456"}, None),
    ({"authorization": "Bearer other-token"}, 401),
    ({}, 401),
    ({"api-key": "KEY-abcdef"}, 403),
    ({"authorization": "Bearer KEY-abcdef"}, 401),
])
def test_emulator_routing_with_a_required_bearer_token(headers, expected):
    from rtlab.emulator import load_profile, route_request
    from rtlab.emulator.server import HttpRefusal

    result = route_request("/openai/v1/realtime?model=gpt-realtime", headers, profile=load_profile("azure"),
                           bearer_token="TOKEN-123456")
    if expected is None:
        assert not isinstance(result, HttpRefusal)
    else:
        assert isinstance(result, HttpRefusal) and result.status == expected
        assert "TOKEN-123456" not in result.message
    # with keys also enabled, the key passes as api-key or as a bearer value
    both = {"api_key": "KEY-abcdef", "bearer_token": "TOKEN-123456"}
    assert not isinstance(route_request("/openai/v1/realtime?model=gpt-realtime", {"api-key": "KEY-abcdef"},
                                        profile=load_profile("azure"), **both), HttpRefusal)
    assert not isinstance(route_request("/openai/v1/realtime?model=gpt-realtime",
                                        {"authorization": "Bearer KEY-abcdef"}, profile=load_profile("azure"),
                                        **both), HttpRefusal)


def test_rtlab_serve_with_a_bearer_token_accepts_only_that_token():
    import signal
    import subprocess

    token = fake_entra_token(51)
    proc = subprocess.Popen([sys.executable, "-m", "rtlab.cli", "serve", "--port", "0", "--profile", "azure",
                             "--bearer-token", token], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("rtlab emulator listening on http://127.0.0.1:"), line
        # Read the evidence line here: communicate() reads the pipe itself, past what readline() has buffered.
        evidence = proc.stdout.readline()
        url = line.rsplit(" ", 1)[1].strip()

        async def first_event(target):
            async with target.connect("realtime") as conn:
                return json.loads(await conn.recv_bytes())["type"]

        keyless = Target.azure(url, realtime_deployment="gpt-realtime", credential=StaticCredential(token))
        assert asyncio.run(first_event(keyless)) == "session.created"
        assert asyncio.run(first_event(keyless.with_dialect("azure-preview"))) == "session.created"
        from websockets.exceptions import InvalidStatus

        with pytest.raises(InvalidStatus) as info:
            asyncio.run(first_event(Target.azure(url, AZURE_KEY, preview=True, realtime_deployment="gpt-realtime")))
        assert info.value.response.status_code == 403
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    # after the listening line, only the profile's evidence line (no secret anywhere)
    assert proc.returncode == 0 and evidence.startswith("profile azure: ") and out == "", (evidence, out)
    assert not _leaks(line + evidence + out + err, token)
    bad = subprocess.run([sys.executable, "-m", "rtlab.cli", "serve", "--bearer-token", " "], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("rtlab serve: --bearer-token") and "Traceback" not in bad.stderr


def test_a_credential_that_cannot_sign_in_is_recorded_and_diagnosed(tmp_path):
    from azure.core.exceptions import ClientAuthenticationError

    from rtlab.analysis.diagnose import diagnose
    from rtlab.data import clip_path
    from rtlab.runs import run_session

    class NoIdentity:
        def get_token(self, *scopes, **kwargs):
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token from the included "
                                            "credentials.")

    # the token is needed before any connection is made: the port need not even listen
    log = run_session(Target.azure("http://127.0.0.1:9", realtime_deployment="rt", credential=NoIdentity()),
                      SessionConfig.realtime(transcription="whisper-1"), clip_path("short"), out=tmp_path,
                      speed=float("inf"), progress=False)
    (d,) = diagnose(log)
    assert d.id == "entra_no_credential" and "az login" in d.fix


class TestEmulatorTiming:
    """The embedded emulator's timing is chosen on the target and recorded in every run's meta."""

    def test_the_chosen_timing_runs_and_is_recorded(self, tmp_path):
        from rtlab import SessionConfig, run_session
        from rtlab.data import clip_path

        for timing in ("local", "modelled"):
            target = Target.local(seed=3, timing=timing)
            try:
                assert target.emulator_timing == timing
                log = run_session(target, SessionConfig.realtime(), clip_path("short"), out=tmp_path / timing,
                                  speed=4, progress=False)
            finally:
                target.stop()
            assert log.meta["sources"]["in-session"]["timing"] == timing

    def test_default_is_the_profiles_and_bad_values_are_refused(self):
        target = Target.local(seed=3)
        try:
            assert target.emulator_timing == "modelled"  # the bundled profiles model published measurements
        finally:
            target.stop()
        with pytest.raises(TargetError, match="'fast' is not 'modelled' or 'local'"):
            Target.local(timing="fast")
        with pytest.raises(TargetError, match="rtlab serve --timing"):
            Target.local("http://127.0.0.1:8765", timing="local")
        assert Target.openai(api_key="sk-" + "x" * 40).emulator_timing is None
