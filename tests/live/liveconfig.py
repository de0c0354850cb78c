"""What the live suite runs against: the providers configured in the environment, and what it will spend.

Pure functions of the environment (no network), shared by the live conftest, the live tests and the offline test
of the suite's skip path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

#: The one clip every case streams (3.0 s of speech plus the run's 1.5 s silent tail).
CLIP = "short"
CLIP_SECONDS = 3.0 + 1.5
#: Sessions each case opens, per provider (the local sidecar of `compare` costs nothing).
SESSIONS_PER_CASE = {"voice_in_session": 1, "transcription_session": 1, "probe": 4, "compare": 2}
#: Assistant replies per provider: none. The conformance and compare voice sessions are configured so the model never
#: answers (create_response=False), and so are the probe's voice sessions (rtlab.probe asks about transcription only).
REPLIES = 0
#: Upper bounds we assume, not price quotes (evidence: assumed, rtlab's own cautious bound; the providers' pricing
#: pages have the real numbers): per audio-minute streamed on any Realtime surface, and per short spoken reply.
ASSUMED_MAX_USD_PER_AUDIO_MINUTE = 0.10
ASSUMED_MAX_USD_PER_REPLY = 0.05


@dataclass(frozen=True)
class LiveProvider:
    """One configured account: how to build its target, and which models/deployments the cases use."""

    name: str  # "openai" | "azure"
    voice_model: str
    transcribe_model: str  # a model name (OpenAI) or a deployment name (Azure)
    probe_models: tuple[str, ...]  # model names; on Azure the probe maps them to the configured deployments
    deployments: dict[str, str] = field(default_factory=dict)  # Azure: {deployment: model}

    def target(self):
        from rtlab.targets import Target

        return Target.from_env(self.name)

    def model_of(self, name: str) -> str:
        """The model behind a deployment name (the name itself on OpenAI)."""
        return self.deployments.get(name, name)


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def configured_providers() -> tuple[list[LiveProvider], list[str]]:
    """(providers whose credentials are in the environment, notes on the ones that are half-configured)."""
    providers: list[LiveProvider] = []
    notes: list[str] = []
    if os.environ.get("OPENAI_API_KEY"):
        tx = os.environ.get("RTLAB_LIVE_TRANSCRIBE_MODEL") or "gpt-4o-mini-transcribe"
        providers.append(LiveProvider(
            "openai", os.environ.get("RTLAB_LIVE_VOICE_MODEL") or "gpt-realtime", tx,
            _csv(os.environ.get("RTLAB_LIVE_PROBE_MODELS")) or ("gpt-realtime-whisper", tx)))
    if os.environ.get("AZURE_OPENAI_ENDPOINT"):
        from rtlab.targets import parse_deployments

        voice = os.environ.get("AZURE_OPENAI_REALTIME_DEPLOYMENT")
        deployments = parse_deployments(os.environ.get("AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS") or None) or {}
        if not voice or not deployments:
            notes.append("azure skipped: set AZURE_OPENAI_REALTIME_DEPLOYMENT and AZURE_OPENAI_TRANSCRIBE_DEPLOYMENTS")
        else:
            # In-session: prefer a deployment reported to work inside an Azure voice session (not gpt-realtime-whisper).
            names = sorted(deployments, key=lambda n: deployments[n] == "gpt-realtime-whisper")
            providers.append(LiveProvider("azure", voice, names[0], tuple(dict.fromkeys(
                deployments[n] for n in list(deployments)[:2])), dict(deployments)))
    return providers, notes


def spend_line(providers: list[LiveProvider]) -> str:
    """What the suite will spend, in one line (audio-minutes, replies and an assumed dollar bound)."""
    sessions = sum(SESSIONS_PER_CASE.values()) * len(providers)
    replies = REPLIES * len(providers)
    minutes = sessions * CLIP_SECONDS / 60
    bound = minutes * ASSUMED_MAX_USD_PER_AUDIO_MINUTE + replies * ASSUMED_MAX_USD_PER_REPLY
    names = ", ".join(f"{p.name} (voice {p.voice_model}, transcription {p.transcribe_model})" for p in providers)
    return (f"live suite: {names}: {sessions} sessions, each the bundled '{CLIP}' clip ({CLIP_SECONDS:.1f} s) = "
            f"{minutes:.2f} audio-minutes, {replies} short replies; at most ~${bound:.2f} (assumed bounds: "
            f"${ASSUMED_MAX_USD_PER_AUDIO_MINUTE:.2f}/audio-minute, ${ASSUMED_MAX_USD_PER_REPLY:.2f}/reply)")
