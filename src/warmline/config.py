"""Settings from ``WARMLINE_*`` environment variables, so one process image serves every deployment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_database_url() -> str:
    """An embedded SQLite file under ``./var/``: a fresh machine runs with nothing else installed."""
    return f"sqlite+aiosqlite:///{Path('var/warmline.db').resolve()}"


class Settings(BaseSettings):
    """Everything a Warmline process needs to know about its deployment."""

    model_config = SettingsConfigDict(env_prefix="WARMLINE_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    database_schema: str | None = Field(
        default=None,
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema to use instead of the default search path.",
    )
    secret_key: str = Field(
        default="warmline-development-secret-change-me",
        min_length=32,
        description="Signs Direct Line tokens; set a long random value in production.",
    )
    public_base_url: str | None = Field(
        default=None,
        description="Origin clients reach this server at (for streamUrl and embed code); "
        "derived from each request when unset.",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Extra origins allowed to call the Direct Line API from a browser.",
    )
    token_lifetime_seconds: int = Field(default=1800, gt=0)
    max_activity_bytes: int = Field(default=256 * 1024, gt=0)
    max_upload_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    upload_dir: Path = Field(default=Path("var/uploads"))
    keepalive_seconds: float = Field(default=20.0, gt=0)
    redis_url: str | None = Field(
        default=None,
        description="redis://host:port/db for events between processes; one process needs none.",
    )
    routing_worker: bool = Field(
        default=True,
        description="Run the timer and assignment loop in this process (offers, overflow, auto-close).",
    )
    admin_token: str | None = Field(
        default=None,
        min_length=16,
        description="Bearer token of the administration REST API (routing configuration, presence); "
        "the API answers 403 while it is unset.",
    )
    sip_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="UDP port of the SIP server (the voice channel); off while unset, 0: any free port.",
    )
    sip_host: str = Field(
        default="127.0.0.1", description="Address SIP and RTP listen on (loopback by default)."
    )
    sip_public_host: str | None = Field(
        default=None,
        description="Address put in SIP Contact/Via headers and SDP when peers must use another one (NAT).",
    )
    sip_trunk: str | None = Field(
        default=None,
        description="host[:port] of the PBX or carrier transfers go to (default: the caller's host).",
    )
    rtp_port_min: int = Field(default=20000, ge=1024, le=65535, description="First UDP port for call audio.")
    rtp_port_max: int = Field(default=20999, ge=1024, le=65535, description="Last UDP port for call audio.")
    voice_dtmf_timeout: float = Field(
        default=0.8,
        gt=0,
        le=10,
        description="Seconds after a caller's last key before the keys are sent ('#' sends at once).",
    )
    voice_ring_seconds: float = Field(
        default=0.0, ge=0, le=60, description="Ring this long before answering."
    )
    voice_stats: bool = Field(
        default=False,
        description="Serve RTP pacing statistics at /voice/stats (benchmarks); off in production.",
    )
    bench_echo: bool = Field(
        default=False,
        description="Mount the raw WebSocket echo at /bench/echo, the benchmark baseline; off in production.",
    )
