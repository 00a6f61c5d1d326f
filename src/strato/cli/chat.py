from __future__ import annotations

import asyncio
import sys
from contextlib import aclosing
from typing import Annotated

import typer

from strato.cli.options import ConfigOption
from strato.config import load_settings
from strato.errors import StratoError
from strato.gateway import CallContext, Gateway
from strato.runtime import Runtime, build_runtime
from strato.types import GenerationRequest, Message, SamplingParams


def chat(
    question: Annotated[
        str | None, typer.Argument(help="Ask once and exit; omit for an interactive chat.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model name (default: the first one).")
    ] = None,
    system: Annotated[str | None, typer.Option(help="A system prompt.")] = None,
    temperature: Annotated[float, typer.Option(min=0, max=2)] = 0.7,
    max_tokens: Annotated[int, typer.Option(min=1)] = 512,
    config: ConfigOption = None,
) -> None:
    """Chat with a model, streaming the answer to the terminal. Every turn is traced."""
    settings = load_settings(config)
    params = SamplingParams(temperature=temperature, max_tokens=max_tokens)
    runtime = build_runtime(settings)
    asyncio.run(_chat(runtime, model=model, system=system, question=question, params=params))


async def _chat(
    runtime: Runtime,
    *,
    model: str | None,
    system: str | None,
    question: str | None,
    params: SamplingParams,
) -> None:
    gateway = runtime.gateway
    try:
        name = model or runtime.models.default_generator()
        if name is None:
            raise typer.BadParameter("no chat model is configured")
        history: list[Message] = [Message("system", system)] if system else []
        if question is not None:
            await _turn(gateway, name, [*history, Message("user", question)], params)
            return
        interactive = sys.stdin.isatty()
        if interactive:
            typer.echo(f"Chatting with {name}. Ctrl-D or /exit to leave.", err=True)
        while True:
            try:
                line = await asyncio.to_thread(input, "you> " if interactive else "")
            except EOFError:
                break
            if line.strip() in {"/exit", "/quit"}:
                break
            if not line.strip():
                continue
            try:
                answer = await _turn(gateway, name, [*history, Message("user", line)], params)
            except StratoError as exc:  # say so and keep the conversation going
                typer.echo(f"strato: error: {exc.message}", err=True)
                continue
            history += [Message("user", line), Message("assistant", answer)]
    finally:
        await runtime.aclose()


async def _turn(gateway: Gateway, model: str, messages: list[Message], params: SamplingParams) -> str:
    request = GenerationRequest(model=model, messages=tuple(messages), params=params)
    parts: list[str] = []
    try:
        async with aclosing(await gateway.stream(request, CallContext())) as chunks:
            async for chunk in chunks:
                parts.append(chunk.text)
                sys.stdout.write(chunk.text)
                sys.stdout.flush()
    finally:
        if parts:
            sys.stdout.write("\n")
    return "".join(parts)
