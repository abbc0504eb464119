"""The real AI tools, pinned, and how to run each offline against the fake model API, with its
OTLP exporter pointed at a given endpoint (http/json), in a sandbox of its own (a fresh HOME and
an empty working folder). `make test-real` installs them under `.cache/real-tools/<name>-<version>`
(`DX_REAL_TOOLS_DIR` elsewhere); each tool's recipe is its entry below."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from tests.real.known_usage import KnownUsage

REPO = Path(__file__).resolve().parents[2]
PROMPT_TIMEOUT = 180.0


def tools_dir() -> Path:
    return Path(os.environ.get("DX_REAL_TOOLS_DIR") or REPO / ".cache" / "real-tools")


@dataclass
class Prompted:
    """One prompt run: the tool's exit code and output (the fake's text, nothing else)."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


@dataclass
class Tool:
    """One real tool in one sandbox: `setup()` writes its config, `prompt()` runs it once."""

    root: Path  #: the sandbox: `home/`, `work/` (the tool's cwd)
    api_url: str
    otlp_url: str | None = None  #: OTLP/HTTP base URL (no `/v1/...`), or None for no export
    prompts_run: list[Prompted] = field(default_factory=list)

    name: ClassVar[str]  #: the captures' folder name
    package: ClassVar[str]  #: npm or PyPI name
    version: ClassVar[str]
    binary: ClassVar[str]  #: inside its install folder
    source: ClassVar[str | None] = None  #: our log source's settings name
    #: globs under the sandbox of the files the tool keeps that the captures hold (its logs,
    #: not its binary databases or unpacked runtimes)
    kept: ClassVar[tuple[str, ...]] = ()
    #: model calls each prompt makes (all of them cost tokens, so all count)
    calls_per_prompt: ClassVar[int] = 1

    @classmethod
    def install_dir(cls) -> Path:
        return tools_dir() / f"{cls.name}-{cls.version}"

    @classmethod
    def exe(cls) -> Path:
        return cls.install_dir() / cls.binary

    @classmethod
    def stamp(cls) -> Path:
        """Written once an install is complete."""
        return cls.install_dir() / ".installed"

    @classmethod
    def installed(cls) -> bool:
        return cls.stamp().is_file() and cls.exe().is_file()

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def cwd(self) -> Path:
        return self.root / "work"

    def base_env(self) -> dict[str, str]:
        """Nothing of the caller's environment but PATH and the locale: no real API key, no
        `OTEL_*` of the developer's, no real HOME."""
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TERM")}
        env.update(HOME=str(self.home), TMPDIR=str(self.root / "tmp"), NO_COLOR="1", CI="1")
        return env

    def setup(self) -> None:
        for folder in (self.home, self.cwd, self.root / "tmp"):
            folder.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def command(self, prompt: str, *, first: bool) -> list[str]:
        raise NotImplementedError

    def log_root(self) -> Path:
        """Where the tool writes what it keeps."""
        return self.home

    def source_path(self) -> str | None:
        """Our log source's `path` setting for this sandbox; None: its default places."""
        return None

    def logged(self, usage: KnownUsage) -> KnownUsage:
        """What of the fake's usage the tool's own log can tell (all of it, mostly)."""
        return usage

    def prompt(self, text: str) -> Prompted:
        args = self.command(text, first=not self.prompts_run)
        started = time.monotonic()
        done = subprocess.run(
            args,
            cwd=self.cwd,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PROMPT_TIMEOUT,
        )
        run = Prompted(args, done.returncode, done.stdout, done.stderr, time.monotonic() - started)
        self.prompts_run.append(run)
        if done.returncode != 0:
            said = done.stderr[-2000:] or done.stdout[-2000:]
            raise RuntimeError(f"{self.name} exited {done.returncode}: {said}")
        return run


class ClaudeCode(Tool):
    name = "claude-code"
    package = "@anthropic-ai/claude-code"
    version = "2.1.328"
    binary = "node_modules/@anthropic-ai/claude-code-linux-x64/claude"
    source = "claudeCode"
    kept = ("home/.claude/projects/**/*.jsonl",)

    def log_root(self) -> Path:
        return self.home / ".claude"

    def env(self) -> dict[str, str]:
        env = self.base_env()
        env.update(
            CLAUDE_CONFIG_DIR=str(self.log_root()),
            ANTHROPIC_BASE_URL=self.api_url,
            ANTHROPIC_API_KEY="sk-ant-fake",
            DISABLE_AUTOUPDATER="1",
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        )
        if self.otlp_url:
            env.update(
                CLAUDE_CODE_ENABLE_TELEMETRY="1",
                OTEL_LOGS_EXPORTER="otlp",
                OTEL_METRICS_EXPORTER="otlp",
                # spans too (beta), so what must be ignored is in the captures as well
                CLAUDE_CODE_ENHANCED_TELEMETRY_BETA="1",
                OTEL_TRACES_EXPORTER="otlp",
                OTEL_EXPORTER_OTLP_PROTOCOL="http/json",
                OTEL_EXPORTER_OTLP_ENDPOINT=self.otlp_url,
                OTEL_LOGS_EXPORT_INTERVAL="1000",
                OTEL_METRIC_EXPORT_INTERVAL="1000",
            )
        return env

    def command(self, prompt: str, *, first: bool) -> list[str]:
        resume = [] if first else ["--continue"]
        return [str(self.exe()), "-p", prompt, "--output-format", "json", *resume]


class Codex(Tool):
    name = "codex"
    package = "@openai/codex"
    version = "0.169.0"
    binary = "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
    source = "codex"
    kept = ("home/.codex/sessions/**/*.jsonl", "home/.codex/config.toml")

    def log_root(self) -> Path:
        return self.home / ".codex"

    def setup(self) -> None:
        super().setup()
        self.log_root().mkdir(parents=True, exist_ok=True)
        lines = [
            'model = "gpt-fake"',
            'model_provider = "fake"',
            'approval_policy = "never"',
            'sandbox_mode = "read-only"',
            "[model_providers.fake]",
            'name = "fake"',
            f'base_url = "{self.api_url}/v1"',
            'env_key = "FAKE_OPENAI_KEY"',
            'wire_api = "responses"',
        ]
        if self.otlp_url:
            lines += [
                "[otel]",
                'environment = "real-tools-test"',
                "log_user_prompt = false",
                *(
                    f'{key} = {{ otlp-http = {{ endpoint = "{self.otlp_url}/v1/{signal}", '
                    'protocol = "json" } }'
                    for key, signal in (
                        ("exporter", "logs"),
                        ("trace_exporter", "traces"),
                        ("metrics_exporter", "metrics"),
                    )
                ),
            ]
        else:
            # its metrics default to OpenAI's own ingestion: nothing leaves the machine
            lines += ["[otel]", 'metrics_exporter = "none"']
        (self.log_root() / "config.toml").write_text("\n".join(lines) + "\n")

    def env(self) -> dict[str, str]:
        env = self.base_env()
        env.update(CODEX_HOME=str(self.log_root()), FAKE_OPENAI_KEY="sk-fake")
        return env

    def command(self, prompt: str, *, first: bool) -> list[str]:
        if first:
            return [str(self.exe()), "exec", "--skip-git-repo-check", prompt]
        return [str(self.exe()), "exec", "--skip-git-repo-check", "resume", "--last", prompt]


class GeminiCli(Tool):
    name = "gemini-cli"
    package = "@google/gemini-cli"
    version = "0.61.0"
    binary = "node_modules/.bin/gemini"
    source = "geminiCli"
    kept = ("home/.gemini/tmp/**/chats/*", "home/.gemini/settings.json")
    model: ClassVar[str] = "gemini-2.5-flash"

    def log_root(self) -> Path:
        return self.home / ".gemini"

    def setup(self) -> None:
        super().setup()
        self.log_root().mkdir(parents=True, exist_ok=True)
        settings: dict[str, object] = {"security": {"auth": {"selectedType": "gemini-api-key"}}}
        if self.otlp_url:
            settings["telemetry"] = {
                "enabled": True,
                "target": "local",
                "otlpEndpoint": self.otlp_url,
                "otlpProtocol": "http",
                "logPrompts": False,
            }
        else:
            settings["telemetry"] = {"enabled": False}
        (self.log_root() / "settings.json").write_text(json.dumps(settings, indent=2))

    def env(self) -> dict[str, str]:
        env = self.base_env()
        env.update(
            GEMINI_API_KEY="fake",
            GOOGLE_GEMINI_BASE_URL=self.api_url,
            GEMINI_CLI_TRUST_WORKSPACE="true",
            GEMINI_CLI_NO_RELAUNCH="true",
        )
        return env

    def command(self, prompt: str, *, first: bool) -> list[str]:
        resume = [] if first else ["--resume", "latest"]
        return [
            str(self.exe()),
            "-p",
            prompt,
            "-m",
            self.model,
            "--skip-trust",
            "--output-format",
            "json",
            *resume,
        ]


class CopilotCli(Tool):
    name = "copilot-cli"
    package = "@github/copilot"
    version = "1.0.102"
    binary = "node_modules/@github/copilot-linux-x64/copilot"
    source = "copilotCli"
    kept = ("home/.copilot/session-state/**/*.jsonl", "home/.copilot/session-state/**/*.yaml")
    model: ClassVar[str] = "gpt-5.4"

    def log_root(self) -> Path:
        return self.home / ".copilot"

    def env(self) -> dict[str, str]:
        env = self.base_env()
        env.update(
            COPILOT_PROVIDER_BASE_URL=f"{self.api_url}/v1",
            COPILOT_PROVIDER_TYPE="openai",
            COPILOT_PROVIDER_API_KEY="sk-fake",
            COPILOT_PROVIDER_WIRE_API="completions",
            COPILOT_MODEL=self.model,
        )
        if self.otlp_url:
            env.update(
                COPILOT_OTEL_ENABLED="true",
                OTEL_EXPORTER_OTLP_ENDPOINT=self.otlp_url,
                OTEL_EXPORTER_OTLP_PROTOCOL="http/json",
            )
        return env

    def command(self, prompt: str, *, first: bool) -> list[str]:
        resume = [] if first else ["--continue"]
        return [
            str(self.exe()),
            "-p",
            prompt,
            "--allow-all-tools",
            "--disable-client-telemetry",
            *resume,
        ]


class QwenCode(Tool):
    name = "qwen-code"
    package = "@qwen-code/qwen-code"
    version = "0.24.4"
    binary = "node_modules/.bin/qwen"
    source = "qwenCode"
    kept = ("home/.qwen/projects/**/chats/*.jsonl", "home/.qwen/settings.json")
    #: the answer, then its background memory extractor's call, before the process exits
    calls_per_prompt = 2
    model: ClassVar[str] = "qwen3-coder-plus"

    def log_root(self) -> Path:
        return self.home / ".qwen"

    def setup(self) -> None:
        super().setup()
        self.log_root().mkdir(parents=True, exist_ok=True)
        # its usage statistics go to Alibaba's endpoint by default: nothing leaves the machine
        settings: dict[str, object] = {
            "privacy": {"usageStatisticsEnabled": False},
            "general": {"enableAutoUpdate": False},
        }
        if self.otlp_url:
            settings["telemetry"] = {
                "enabled": True,
                "target": "local",
                "otlpProtocol": "http",  # http/json; its default is gRPC
                "otlpEndpoint": self.otlp_url,
                "logPrompts": False,
            }
        else:
            settings["telemetry"] = {"enabled": False}
        (self.log_root() / "settings.json").write_text(json.dumps(settings, indent=2))

    def env(self) -> dict[str, str]:
        env = self.base_env()
        env.update(
            OPENAI_API_KEY="sk-fake",
            OPENAI_BASE_URL=f"{self.api_url}/v1",
            # its CLI starts itself again in a child with a larger heap: a second start-up
            QWEN_CODE_NO_RELAUNCH="true",
        )
        return env

    def command(self, prompt: str, *, first: bool) -> list[str]:
        resume = [] if first else ["--continue"]
        return [
            str(self.exe()),
            "--auth-type",
            "openai",
            "-m",
            self.model,
            "--output-format",
            "json",
            "-p",
            prompt,
            *resume,
        ]


class Aider(Tool):
    name = "aider"
    package = "aider-chat"
    version = "0.86.2"
    binary = "bin/aider"
    source = "aider"
    kept = ("home/aider-analytics.jsonl", "work/.aider.chat.history.md")

    @property
    def analytics_log(self) -> Path:
        return self.home / "aider-analytics.jsonl"

    def source_path(self) -> str:
        return str(self.analytics_log)  # aider writes it only where told to

    def logged(self, usage: KnownUsage) -> KnownUsage:
        """Its analytics log has the prompt tokens with the cached part inside, and no cache
        count: the cache reads can only be counted as input."""
        return KnownUsage(usage.prompt_total, usage.output, 0, 0, usage.reasoning)

    def env(self) -> dict[str, str]:
        env = self.base_env()
        env.update(OPENAI_API_KEY="sk-fake")
        return env

    def command(self, prompt: str, *, first: bool) -> list[str]:
        return [
            str(self.exe()),
            "--openai-api-base",
            f"{self.api_url}/v1",
            "--model",
            "openai/gpt-4o",
            "--analytics-log",
            str(self.analytics_log),
            "--no-analytics",
            "--no-git",
            "--yes-always",
            "--no-check-update",
            "--no-show-model-warnings",
            "--no-pretty",
            "--no-stream",  # streamed, it estimates the tokens itself instead of reading usage
            "-m",
            prompt,
        ]


TOOLS: dict[str, type[Tool]] = {
    cls.name: cls for cls in (ClaudeCode, GeminiCli, Codex, CopilotCli, QwenCode, Aider)
}
