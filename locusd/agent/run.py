"""One agent run from start to end, without any cloud: a worktree, the bootstrap, the loop, the
diff, the transcript's header and footer. ``locus agent run`` calls this; the daemon will too.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from locusd import repo_config
from locusd.agent import caches, hints, sandbox, tools
from locusd.agent import planning as planning_tools
from locusd.agent.commands import registry_env, scrubbed_env
from locusd.agent.egress.journal import Journal
from locusd.agent.egress.network import network_for
from locusd.agent.egress.proxy import Connection
from locusd.agent.external import presets
from locusd.agent.external.session import GUIDANCE, ExternalAgent
from locusd.agent.guidance import Guidance
from locusd.agent.loop import NUDGE, SYSTEM_PROMPT, Agent, LoopResult
from locusd.agent.messages import Usage
from locusd.agent.policy import CONTAINER_WARNING
from locusd.agent.providers import ConfigurationError, Provider
from locusd.agent.providers.replay import ReplayProvider
from locusd.agent.report import Approver, Event, OnEvent, RunReport, local_task_id, repo_key
from locusd.agent.tools import Stop, Workspace
from locusd.agent.transcript import Ending, Footer, Header, TranscriptWriter
from locusd.agent.verify import VerifyCommand, detect_at
from locusd.config import Config
from locusd.git import worktreeinclude
from locusd.git.cli import GitFailed, TimedOut
from locusd.git.diffs import diff_and_left_out, left_out_warning
from locusd.git.repo import RepositoryError
from locusd.git.worktrees import Worktree, WorktreeError, Worktrees

#: Finished worktrees kept for reuse (their ignored build caches make the next run start warm).
POOL_SIZE = 2
NO_VERIFY = 'no verify command found: add verify = "…" to .locus.toml; the run is unverified'


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("locus", "anthropic", "openai"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


async def run_task(
    *,
    repo: Path,
    task: str,
    provider: Provider | None,
    config: Config,
    transcript_path: Path | None = None,
    task_id: str | None = None,
    base: str = "HEAD",
    cancel: asyncio.Event | None = None,
    approver: Approver | None = None,
    on_event: OnEvent | None = None,
    on_phase: Callable[[str], None] | None = None,
    on_worktree: Callable[[Worktree], None] | None = None,
    continue_in: Worktree | None = None,
    planning: bool = False,
) -> RunReport:
    """One run. ``continue_in``: a previous run's worktree (its branch, base and changes) for a
    further round after a review, instead of a new worktree. ``on_worktree`` hears of the
    worktree as soon as it exists — before the bootstrap and the agent's first edit — so the
    daemon can name it in the run before anything can be lost in it. ``provider``: the built-in
    loop's model; None when ``[agent] agent`` names an ACP agent (which brings its own).
    ``planning``: a planning run (:mod:`locusd.agent.planning`): the built-in loop with the
    read-only tools, no bootstrap, ending with the tasks it proposes."""
    started = time.monotonic()
    phase = on_phase or (lambda text: None)
    task_id = task_id or local_task_id()
    cancel = cancel or asyncio.Event()
    agent_config = config.agent

    run_dir = config.state_dir / "runs" / task_id
    # Transcripts and command output hold code: the owner's eyes only.
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # An ACP agent instead of the built-in loop: what to start, checked before any worktree.
    # A planning run is always the built-in loop: only its tool set can be held read-only.
    launch = (
        None
        if planning or agent_config.agent == presets.BUILTIN
        else presets.resolve(agent_config, config.agents, os.environ, run_dir)
    )
    if launch is None and provider is None:
        raise ConfigurationError("the built-in agent needs a provider: none was given")
    provider_name = provider.name if provider else ""
    phase("creating the worktree")
    worktrees = Worktrees(repo, config.worktree_dir / repo_key(repo))
    worktree: Worktree
    if continue_in is not None:
        worktree = continue_in
        await asyncio.to_thread(worktrees.resume, worktree, task_id)
    else:
        # Stale worktrees go first (never one holding unreviewed, uncommitted or unreported
        # work), then a pooled worktree (its ignored build caches warm) when there is one.
        await asyncio.to_thread(worktrees.prune, POOL_SIZE)
        pooled = await asyncio.to_thread(worktrees.take_from_pool, task_id, task, base)
        if pooled is None:
            pooled = await asyncio.to_thread(worktrees.create, task_id, task, base)
        worktree = pooled
    if on_worktree is not None:
        on_worktree(worktree)
    warnings = list(worktree.warnings)
    contained = sandbox.containment(agent_config)
    if contained.warning:
        warnings.append(contained.warning)
    if agent_config.containers == "allow":
        warnings.append(
            '[agent] containers = "allow": the container engines\' sockets are in reach of every'
            f" command of this run; {CONTAINER_WARNING}"
        )
    # The repository's own package caches (never the user's ~/.npm, ~/.cache/pip: caches.py).
    packages = await asyncio.to_thread(caches.for_run, config.cache_dir, repo, warnings)
    # What the run holds until its end: the caches' lock, then the egress proxy.
    held = contextlib.AsyncExitStack()
    if packages is not None:
        held.callback(packages.release)
    command_env = (
        scrubbed_env(os.environ)
        | registry_env(os.environ)
        | (packages.env() if packages else {})
        | {"PYTHONDONTWRITEBYTECODE": "1"}
    )
    transcript_path = transcript_path or run_dir / "transcript.jsonl"
    boxed: sandbox.Sandbox | None = None
    verify: VerifyCommand | None = None
    problem: str | None = None

    # The network: the egress proxy, for the setup command, the agent's commands and verify.
    def refused(connection: Connection) -> None:  # seen live, as the run goes
        if on_event is not None:
            text = f"network: refused {connection.host}:{connection.port} — {connection.reason}"
            on_event(Event("note", 0, text, {"kind": "egress"}))

    journal = Journal(on_refused=refused)
    try:
        # One sandbox for the setup command, the agent's commands and verify (see sandbox.py).
        boxed = sandbox.for_run(
            contained.sandbox,
            env=os.environ,
            locus_dirs=(
                *(config.state_dir, config.credentials_dir, config.worktree_dir),
                config.cache_dir,  # every repository's caches: only this one's is bound back
            ),
            home_allow=agent_config.home_allow,
            worktree=worktree.path,
            common_dir=worktrees.common_dir,
            containers=agent_config.containers == "allow",
        )
        if boxed is not None and packages is not None:
            boxed = boxed.with_caches(packages.binds(os.environ))
        boxed = await held.enter_async_context(
            network_for(agent_config, worktree.path, boxed, journal, warnings)
        )
        settings = repo_config.load(worktree.path)
        warnings += repo_config.ignored(settings)
        named = [
            *([repo_config.FILENAME] if settings.copy_files or settings.setup else []),
            *([worktreeinclude.FILENAME] if worktreeinclude.present(worktrees.checkout) else []),
        ]
        if named and not planning:  # a planning run runs no command, the setup's neither
            phase(f"bootstrapping ({', '.join(named)})")
            warnings += await asyncio.to_thread(
                worktrees.bootstrap, worktree, settings, boxed, command_env
            )
        # From the base commit, not the worktree: a (continued) run's own edits choose nothing.
        verify = await asyncio.to_thread(detect_at, worktree.path, worktree.base_commit)
    except (sandbox.GitLayoutError, repo_config.RepoConfigError, WorktreeError) as exc:
        # Repository content (.locus.toml) or a worktree that is not as it should be: the run
        # ends before the agent starts, as a failure that says why, with a transcript and a
        # report.
        problem = f"the run could not start: {exc}"[:2000]
    except BaseException:
        await held.aclose()
        raise
    if agent_config.mode != "ask" and boxed is None:
        warnings.append(
            f"mode {agent_config.mode} runs commands unasked only in the sandbox, which is off"
            " for this run: they were asked about as in mode ask"
        )
    workspace = Workspace(
        root=worktree.path,
        scratch=run_dir / "commands",
        policy=agent_config.policy,
        # No .pyc files: an edit within the same second as the last run, to the same size, would
        # otherwise be shadowed by stale bytecode and verify would test the old code.
        env=command_env,
        cancel=cancel,
        verify=verify,
        base_commit=worktree.base_commit,
        approver=approver,
        sandbox=boxed,
        command_timeout=agent_config.command_timeout,
        verify_timeout=agent_config.verify_timeout,
        max_verify_rounds=agent_config.max_verify_rounds,
        containers=agent_config.containers,
        mode=agent_config.mode,
        tools=planning_tools.PLANNING_TOOLS if planning else None,
    )
    system = planning_tools.SYSTEM_PROMPT if planning else SYSTEM_PROMPT
    guidance = Guidance(workspace.files)  # the file tools' own confined open
    instructions = await asyncio.to_thread(guidance.at_start, task)
    # A new run's (not a planning run's, not a further round's) file hints; a replay is given
    # those it was recorded with, so its first message is the recorded one.
    hinted: str | None = None
    if isinstance(provider, ReplayProvider):
        hinted = provider.hints
    elif agent_config.hints and not planning and continue_in is None and problem is None:
        phase("ranking file hints")
        hinted = await _hints(worktrees.checkout, worktree.base_commit, task, warnings)
    if hinted and on_event is not None:
        on_event(Event("note", 0, hinted, {"kind": "hints"}))
    transcript = TranscriptWriter(transcript_path)
    try:
        transcript.write(
            Header(
                versions=versions(),
                provider=f"acp:{launch.name}" if launch else provider_name,
                model=provider.model if provider else agent_config.model or "",
                task=task,
                repo=str(worktrees.checkout),
                worktree=str(worktree.path),
                branch=worktree.branch,
                base_commit=worktree.base_commit,
                config=agent_config.model_dump(mode="json"),
                # An ACP agent brings its own system prompt and tools: Locus's guidance only.
                system=system if launch is None else GUIDANCE,
                instructions=instructions,
                hints=hinted,
                tools=tools.specs(workspace.tools) if launch is None else [],
                started_at=datetime.now(UTC).isoformat(),
            )
        )
        journal.attach(transcript)
        if problem is None:
            phase("running the agent")
            agent: Agent | ExternalAgent
            if launch is not None:
                agent = ExternalAgent(
                    launch,
                    workspace,
                    transcript,
                    agent_config.budget,
                    sandbox=boxed,
                    journal=journal,
                    log_dir=run_dir,
                    env=command_env,
                    instructions=instructions,
                    on_event=on_event,
                    price=agent_config.price(),
                )
            else:
                assert provider is not None  # checked above
                agent = Agent(
                    provider,
                    workspace,
                    transcript,
                    agent_config.budget,
                    instructions=instructions,
                    guidance=guidance,
                    max_tokens=agent_config.max_output_tokens,
                    stuck_threshold=agent_config.stuck_threshold,
                    on_event=on_event,
                    system=system,
                    nudge=planning_tools.NUDGE if planning else NUDGE,
                )
            first = planning_tools.planning_goal(task) if planning else task
            result = await agent.run(hints.first_message(first, hinted))
        else:
            result = LoopResult(Stop("failed", reason=problem), 0, Usage(), 0.0, True)
        stop = result.stop
        outcome, reason = stop.outcome, stop.reason
        unreadable = False
        try:
            diff, left_out = await asyncio.to_thread(
                diff_and_left_out, worktree.path, worktree.base_commit
            )
            if left_out:
                warnings.append(left_out_warning(left_out))
        except (GitFailed, TimedOut, RepositoryError, OSError) as exc:
            # The agent's commands can break the worktree (rm .git): the run still ends, as a
            # failure that says so, with a footer and a report; the worktree is kept.
            diff, unreadable = "", True
            outcome = "failed"
            reason = f"the run's changes cannot be read (is its .git gone?): {exc}"[:2000]
        ending = Ending(
            outcome=outcome,
            reason=reason,
            summary=stop.summary,
            question=stop.question,
            follow_ups=workspace.follow_ups,
            verification=workspace.verifications[-1] if workspace.verifications else None,
            diff=diff,
            turns=result.turns,
            usage=result.usage,
            cost_usd=round(result.cost, 6),
            cost_known=result.cost_known,
            duration=round(time.monotonic() - started, 3),
            network=journal.summary(),
            proposals=list(stop.proposals),
        )
        transcript.write(Footer(**dict(ending)))
        warnings += workspace.warnings + guidance.warnings
    finally:
        await held.aclose()  # after the footer: no command runs by then
        journal.detach()
        transcript.close()
    # With changes, the worktree waits for review (its work kept under the run's ref); without,
    # it is free for the pool. A failed run whose changes could not be read is kept for review.
    kept = bool(diff) or unreadable
    try:
        await asyncio.to_thread(worktrees.finish, worktree, task_id, kept=kept)
    except (
        WorktreeError,
        RepositoryError,
        OSError,
        ValueError,
    ) as exc:  # not a worktree any more: nothing to record it in
        warnings.append(f"the worktree's state could not be recorded: {exc}")
    return RunReport(
        **dict(ending),
        task_id=task_id,
        verify_command=verify.command if verify else None,
        verify_reason=verify.reason if verify else NO_VERIFY,
        worktree=str(worktree.path),
        branch=worktree.branch,
        base_commit=worktree.base_commit,
        transcript=str(transcript_path),
        warnings=warnings,
    )


async def _hints(repo: Path, base: str, task: str, warnings: list[str]) -> str | None:
    """The hints section for ``task`` at ``base``; a history that cannot be read gives none
    (and a warning): hints help a run, they never stop one."""
    try:
        return hints.section(await asyncio.to_thread(hints.compute, repo, base, task))
    except (GitFailed, TimedOut, RepositoryError, OSError, ValueError) as exc:
        warnings.append(f"no file hints: the repository's history could not be read: {exc}")
        return None
