"""The ``dreamlab`` command: generate, upscale, list and follow jobs, manage modes, see the fleet.

The API is DREAMLAB_URL (default http://127.0.0.1:4200), with DREAMLAB_KEY under AUTH=keys.
Every command takes ``--json`` and then prints one JSON document on stdout, for scripts.  A
refused request prints the API's message on stderr and exits 1; never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from dreamlab_client import ApiError, Client, Event

app = typer.Typer(
    help="Dream Lab from the command line.", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
)
jobs_app = typer.Typer(help="List, show, cancel and wait for jobs.", no_args_is_help=True)
modes_app = typer.Typer(help="List, switch to and reload modes.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
app.add_typer(modes_app, name="modes")
out = Console()
err = Console(stderr=True)

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Output = Annotated[Path | None, typer.Option("-o", "--output", help="Where to write the image.")]


class State:
    client: Client


state = State()


@app.callback()
def connect(
    url: Annotated[str | None, typer.Option(envvar="DREAMLAB_URL", help="The API's URL.")] = None,
    key: Annotated[str | None, typer.Option(envvar="DREAMLAB_KEY", help="An API key (AUTH=keys).")] = None,
) -> None:
    state.client = Client(url, key)


@app.command()
def generate(
    prompt: str,
    mode: Annotated[str | None, typer.Option(help="A mode from 'dreamlab modes list'.")] = None,
    negative: Annotated[str | None, typer.Option("--negative", help="Negative prompt.")] = None,
    size: Annotated[str | None, typer.Option(help="WxH, e.g. 512x512.")] = None,
    steps: Annotated[int | None, typer.Option(help="Inference steps.")] = None,
    guidance: Annotated[float | None, typer.Option(help="Guidance scale.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    superres: Annotated[int | None, typer.Option(help="Super-resolution passes (1-3) after generation.")] = None,
    output: Output = None,
    as_json: Json = False,
) -> None:
    """Generate an image, follow its progress and write it (to <job id>.png unless -o)."""
    job = state.client.submit(
        prompt=prompt,
        mode=mode,
        negative_prompt=negative,
        size=size,
        num_inference_steps=steps,
        guidance_scale=guidance,
        seed=seed,
        **({"superres": True, "superres_magnitude": superres} if superres else {}),
    )
    _finish(job, output, as_json)


@app.command("superres")
def superres_command(
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A PNG or JPEG to upscale.")],
    magnitude: Annotated[int, typer.Option(help="Passes of x3 (1-3).")] = 1,
    out_format: Annotated[str, typer.Option("--format", help="png or jpeg.")] = "png",
    quality: Annotated[int | None, typer.Option(help="JPEG quality, 1-100.")] = None,
    output: Output = None,
    as_json: Json = False,
) -> None:
    """Upscale an image (super-resolution) and write the result."""
    _finish(state.client.superres(image, magnitude, out_format, quality), output, as_json)


@jobs_app.command("list")
def jobs_list(
    status: Annotated[
        str | None, typer.Option(help="queued, running, succeeded, failed, canceled (comma-separated).")
    ] = None,
    mode: Annotated[str | None, typer.Option()] = None,
    kind: Annotated[str | None, typer.Option(help="generate, superres, switch, custom.")] = None,
    limit: Annotated[int, typer.Option(help="Jobs per page (1-100).")] = 20,
    cursor: Annotated[str | None, typer.Option(help="The 'next' of a previous page.")] = None,
    as_json: Json = False,
) -> None:
    """Recent jobs, newest first."""
    page = state.client.jobs(status=status, mode=mode, kind=kind, limit=limit, cursor=cursor)
    if as_json:
        return _print_json(page)
    table = Table("id", "kind", "mode", "status", "created", "prompt")
    for job in page["jobs"]:
        prompt = str(job.get("params", {}).get("prompt", ""))
        table.add_row(job["id"], job["kind"], job.get("mode", ""), _status(job), job["created_at"], prompt[:40])
    out.print(table)
    if page["next"]:
        out.print(f"more: dreamlab jobs list --cursor {page['next']}")


@jobs_app.command("show")
def jobs_show(job_id: str, as_json: Json = False) -> None:
    """One job: status, progress, parameters, result or error."""
    job = state.client.job(job_id)
    if as_json:
        return _print_json(job)
    table = Table(show_header=False)
    for field, value in job.items():
        table.add_row(field, value if isinstance(value, str) else json.dumps(value))
    out.print(table)


@jobs_app.command("cancel")
def jobs_cancel(job_id: str, as_json: Json = False) -> None:
    """Cancel a queued or running job."""
    job = state.client.cancel(job_id)
    if as_json:
        return _print_json(job)
    out.print(f"{job_id}: {'cancel requested' if job.get('cancel_requested') else job['status']}")


@jobs_app.command("wait")
def jobs_wait(job_id: str, output: Output = None, as_json: Json = False) -> None:
    """Follow a job until it ends; write its image when it has one."""
    _finish(state.client.job(job_id), output, as_json)


@modes_app.command("list")
def modes_list(as_json: Json = False) -> None:
    """The modes, their defaults, and the modes workers have loaded."""
    listing = state.client.modes()
    if as_json:
        return _print_json(listing)
    table = Table("mode", "backend", "size", "steps", "guidance", "scheduler", "loaded")
    loaded = set(listing.get("current_modes", []))
    for mode in listing["modes"]:
        cells = [mode.get(k) for k in ("backend", "default_size", "default_steps", "default_guidance", "scheduler")]
        default = " (default)" if mode["name"] == listing.get("default_mode") else ""
        table.add_row(mode["name"] + default, *map(str, cells), "yes" if mode["name"] in loaded else "")
    out.print(table)


@modes_app.command("switch")
def modes_switch(mode: str, as_json: Json = False) -> None:
    """Queue a switch of a worker to MODE behind the jobs already queued for it."""
    job = state.client.switch(mode)
    if as_json:
        return _print_json(job)
    out.print(f"switch to {mode} queued: job {job['id']} (dreamlab jobs wait {job['id']})")


@modes_app.command("reload")
def modes_reload(as_json: Json = False) -> None:
    """Re-read the modes file now."""
    listing = state.client.reload()
    if as_json:
        return _print_json(listing)
    out.print(f"modes reloaded: version {listing['config']['version']}, {len(listing['modes'])} modes")


@app.command()
def status(as_json: Json = False) -> None:
    """The fleet: workers and the modes they serve, queue depths, memory."""
    fleet = state.client.fleet()
    if as_json:
        return _print_json(fleet)
    workers = Table("worker", "backend", "mode", "state", "job", "memory", title="workers")
    for w in fleet["workers"]:
        memory = w.get("memory", {})
        used = memory.get("models_bytes", 0)
        workers.add_row(
            w["name"], w.get("backend", ""), w.get("mode", ""), w.get("state", ""), w.get("job") or "", _mb(used)
        )
    queues = Table("mode", "waiting", title=f"queues ({fleet['waiting_total']} of {fleet['queue_max']} waiting)")
    for name, queue in fleet["queues"].items():
        queues.add_row(name, str(queue["waiting"]))
    out.print(workers, queues)


def _finish(job: dict[str, Any], output: Path | None, as_json: bool) -> None:
    """Follow the job to its end (a progress bar unless --json), write its image, exit 1 unless it succeeded."""
    done = state.client.wait(job["id"]) if as_json else _with_progress(job)
    written = None
    if done["status"] == "succeeded" and "url" in done.get("result", {}):
        suffix = ".jpg" if done["result"].get("content_type") == "image/jpeg" else ".png"
        written = output or Path(f"{job['id']}{suffix}")
        written.write_bytes(state.client.result(job["id"]))
    if as_json:
        _print_json({**done, **({"output": str(written)} if written else {})})
    elif written:
        out.print(f"{job['id']}: {written}")
    if done["status"] != "succeeded":
        err.print(f"job {job['id']} {done['status']}: {done.get('error', {}).get('message', '')}")
        raise typer.Exit(1)


def _with_progress(job: dict[str, Any]) -> dict[str, Any]:
    columns = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(f"{job['id'][:8]} {job['status']}", total=None)

        def on_event(event: Event) -> None:
            if event.name == "progress":
                bar.update(
                    task,
                    description=f"{job['id'][:8]} running",
                    total=event.data["total"],
                    completed=event.data["step"],
                )
            elif event.name == "queued" and "position" in event.data:
                bar.update(task, description=f"{job['id'][:8]} queued, position {event.data['position']}")
            else:
                bar.update(task, description=f"{job['id'][:8]} {event.name}")

        return state.client.wait(job["id"], on_event=on_event)


def _status(job: dict[str, Any]) -> str:
    progress = job.get("progress")
    return (
        f"{job['status']} {progress['step']}/{progress['total']}"
        if job["status"] == "running" and progress
        else job["status"]
    )


def _mb(count: int) -> str:
    return f"{count / 2**20:.0f} MB" if count else ""


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def main() -> None:
    try:
        app()
    except ApiError as exc:
        field = f" (field {exc.field})" if exc.field else ""
        err.print(f"error: {exc.message}{field}", markup=False, highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
