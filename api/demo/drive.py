"""One run of the demo, step by step: services, sandbox, tenant, processes, traffic, replies,
then the report. Everything it starts goes into the Session, which stops it all again."""

from __future__ import annotations

import random
import secrets
import sys
import time
from dataclasses import dataclass, field, replace

import psutil  # type: ignore[import-untyped,unused-ignore]
from sqlalchemy import Engine

from api.demo.channel_report import ChannelSection, ReplyFacts, SandboxSeen, build_channel_section
from api.demo.channels import ChannelPlan, email_answer, make_channel_plan
from api.demo.customers import make_customers
from api.demo.errors import DemoError
from api.demo.observe import observe
from api.demo.observe_channels import (
    count_quoting,
    count_tenant_inbox,
    observe_channels,
    observe_replies,
    reply_dead_letters,
)
from api.demo.outbound import Agent, SentReply, send_replies
from api.demo.posting import Answer, Post, post_all
from api.demo.processes import EngineProcesses, child_env
from api.demo.provider_sandbox import ProviderSandbox, register_callbacks
from api.demo.seed import SandboxAddress, Seeded, seed_demo_tenant
from api.demo.summary import Report, build_report
from api.demo.traffic import Plan, make_plan, to_posts
from config import Settings
from engine.db import apply_schema, create_db_engine
from engine.events import ChannelType
from engine.runtime import Runtime

PROCESSING_TIMEOUT_S = 60.0


@dataclass
class Session:
    """What this run started, so that one `close()` stops all of it, in order."""

    runtime: Runtime
    embedded: str
    db: Engine | None = None
    sandbox: ProviderSandbox | None = None
    engines: EngineProcesses | None = None
    agent: Agent | None = None
    stopped: list[str] = field(default_factory=list)
    started: list[psutil.Process] = field(default_factory=list)
    still_listening: list[str] = field(default_factory=list)

    def close(self) -> None:
        if self.agent is not None:
            self.agent.close()
            self.agent = None
        if self.engines is not None:
            self.stopped += self.engines.stop()
            self.started += self.engines.started
            self.engines = None
        if self.sandbox is not None:
            self.stopped += self.sandbox.stop()
            self.still_listening += self.sandbox.left_listening
            self.sandbox = None
        if self.db is not None:
            self.db.dispose()
            self.db = None
        if self.runtime.services is not None:
            self.runtime.close()
            self.stopped.append(f"embedded {self.embedded}: stopped")


@dataclass(frozen=True)
class _Stage:
    """What the steps after start-up work with."""

    db: Engine
    sandbox: ProviderSandbox
    address: SandboxAddress
    engines: EngineProcesses
    seeded: Seeded
    rng: random.Random


def drive(session: Session, settings: Settings, contacts: int) -> Report:
    """Run every step; raises DemoError when one fails. The caller closes `session`."""
    stage = _start(session, settings)
    now = int(time.time())
    plan = make_plan(stage.rng, stage.seeded.business, make_customers(stage.rng, contacts), now=now)
    others = make_channel_plan(
        stage.rng,
        stage.seeded,
        plan,
        base_url=stage.engines.base_url,
        sandbox_url=stage.address.http_url,
        now=now,
    )
    answers = _inbound(stage, plan, others)
    agent = session.agent = Agent(
        stage.engines.base_url, email=stage.seeded.email, password=stage.seeded.password
    )
    say(f"logged in as {stage.seeded.email}; replying on one ticket per channel")
    sent = send_replies(
        others.replies,
        agent=agent,
        db=stage.db,
        seeded=stage.seeded,
        sandbox=stage.sandbox,
        say=say,
    )
    answers += _email_answer(stage, others, sent, phase=len(plan.phases) + 1)
    return _report(stage, session.runtime, settings, plan, others, answers, sent)


def _start(session: Session, settings: Settings) -> _Stage:
    """Schema, sandbox, tenant and channels, status callbacks, then web, worker and scheduler."""
    runtime = session.runtime
    version = apply_schema(runtime.database_url)
    say(f"schema ready (version {version})")
    db = session.db = create_db_engine(runtime.database_url, pool_size=2)
    rng = random.Random(secrets.randbits(64))
    sandbox = session.sandbox = ProviderSandbox()
    address = sandbox.start()
    say(f"provider sandbox on {address.http_url}, SMTP on port {address.smtp_port}")
    engines = session.engines = EngineProcesses(
        child_env(settings, runtime), settings.FLOWDESK_DATA_DIR / "demo-logs"
    )
    seeded = seed_demo_tenant(db, rng, sandbox=address)
    channels = ", ".join(f"{kind} {ch.id}" for kind, ch in seeded.channels.items())
    say(f"demo tenant {seeded.tenant_id}, channels {channels}")
    callbacks = register_callbacks(sandbox, seeded, base_url=engines.base_url)
    say(f"the sandbox reports delivery statuses of {callbacks} channels to their webhooks")
    say("starting web, worker and scheduler…")
    engines.start()
    engines.wait_healthy()
    say(f"web answers on {engines.base_url}")
    return _Stage(db, sandbox, address, engines, seeded, rng)


def _inbound(stage: _Stage, plan: Plan, others: ChannelPlan) -> list[Answer]:
    """Every phase's webhooks of all six channels at once, each phase once the last is done."""
    answers: list[Answer] = []
    whatsapp = stage.seeded.whatsapp
    url = stage.engines.base_url + whatsapp.webhook_path
    phases = len(plan.phases) + 1  # the e-mail answer comes last
    for number, (phase, extra) in enumerate(zip(plan.phases, others.phases, strict=True), 1):
        posts = [*to_posts(phase, url=url, app_secret=whatsapp.secret), *extra]
        answers += _post(f"phase {number}/{phases}, {phase.title}", posts, stage.rng)
        _wait_processed(stage.db, stage.seeded.tenant_id, stage.engines)
    return answers


def _email_answer(
    stage: _Stage, others: ChannelPlan, sent: list[SentReply], *, phase: int
) -> list[Answer]:
    """The e-mail customer answers the mail the sandbox took for her (none: nothing to answer)."""
    mailed = next(s for s in sent if s.reply.channel is ChannelType.EMAIL)
    received = _mail_to(stage.sandbox, mailed.reply.recipient)
    if received is None:
        return []
    answer = email_answer(
        others,
        stage.rng,
        stage.seeded,
        base_url=stage.engines.base_url,
        now=int(time.time()),
        our_message_id=received,
    )
    answers = _post(f"phase {phase}/{phase}, answers to our replies", [answer], stage.rng)
    _wait_processed(stage.db, stage.seeded.tenant_id, stage.engines)
    return answers


def _report(
    stage: _Stage,
    runtime: Runtime,
    settings: Settings,
    plan: Plan,
    others: ChannelPlan,
    answers: list[Answer],
    sent: list[SentReply],
) -> Report:
    seeded = stage.seeded
    seen = observe(
        stage.db,
        tenant_id=seeded.tenant_id,
        channel_id=seeded.whatsapp.id,
        brazil_wamids=plan.brazil_wamids,
    )
    report = build_report(
        plan,
        answers,
        seen,
        channels=_channel_section(stage, others, answers, sent),
        run={
            "tenant_id": seeded.tenant_id,
            "whatsapp_channel_id": seeded.whatsapp.id,
            "phone_number_id": seeded.business.phone_number_id,
            "web_url": stage.engines.base_url,
            "sandbox_url": stage.address.http_url,
            "services": "embedded" if runtime.services else "configured",
        },
        login={"tenant": seeded.tenant_name, "email": seeded.email, "password": seeded.password},
    )
    return replace(report, next_steps=_next_steps(settings, seeded))


def _post(title: str, posts: list[Post], rng: random.Random) -> list[Answer]:
    answers = post_all(posts, rng=rng)
    accepted = sum(a.accepted for a in answers)
    kinds = len({p.channel for p in posts})
    say(f"{title}: {len(posts)} webhooks on {kinds} channels posted, {accepted} accepted")
    return answers


def _mail_to(sandbox: ProviderSandbox, address: str) -> str | None:
    """The Message-ID of the last mail the SMTP sink took for `address`."""
    ids = [
        m.message_id
        for m in sandbox.mail()
        if m.message_id and address.lower() in (t.lower() for t in m.rcpt_tos)
    ]
    return ids[-1] if ids else None


def _channel_section(
    stage: _Stage, plan: ChannelPlan, answers: list[Answer], sent: list[SentReply]
) -> ChannelSection:
    db, seeded, sandbox = stage.db, stage.seeded, stage.sandbox
    ids = [s.message_id for s in sent]
    rows = observe_replies(db, ids)
    dead = reply_dead_letters(db, ids)
    mailed = next(s for s in sent if s.reply.channel is ChannelType.EMAIL)
    return build_channel_section(
        seeded=seeded,
        plan=plan,
        answers=answers,
        seen=observe_channels(db, seeded.tenant_id),
        replies=[ReplyFacts(s, rows[s.message_id], dead.get(s.message_id)) for s in sent],
        sandbox=SandboxSeen(
            tuple(sandbox.requests()), tuple(sandbox.mail()), tuple(sandbox.callbacks_sent())
        ),
        email_answer_quotes=count_quoting(db, mailed.message_id),
    )


def _wait_processed(db: Engine, tenant_id: int, engines: EngineProcesses) -> None:
    """Poll the inbox until none of this tenant's rows is pending (bounded)."""
    deadline = time.monotonic() + PROCESSING_TIMEOUT_S
    shown = (-1, -1)
    while True:
        done, total = count_tenant_inbox(db, tenant_id)
        if (done, total) != shown:
            say(f"processed {done}/{total} webhooks")
            shown = (done, total)
        if done == total:
            return
        engines.check_alive()
        if time.monotonic() > deadline:
            raise DemoError(
                f"{total - done} webhooks still pending after {PROCESSING_TIMEOUT_S:.0f}s\n"
                + engines.log_tail("worker")
            )
        time.sleep(0.25)


def _next_steps(settings: Settings, seeded: Seeded) -> tuple[str, ...]:
    base = f"http://127.0.0.1:{settings.PORT}"
    login = f'{{"email": "{seeded.email}", "password": "{seeded.password}"}}'
    logs = settings.FLOWDESK_DATA_DIR / "demo-logs"
    return (
        f"Demo admin of tenant {seeded.tenant_name!r}: {seeded.email} / {seeded.password}",
        "The engine is stopped now. Run it yourself with `flowdesk run` (web, worker and",
        f"scheduler from the Procfile, web on {base}), then log in:",
        f"  curl -s {base}/api/v1/auth/login -H 'Content-Type: application/json' -d '{login}'",
        f"Logs of this run: {logs}/web.log, worker.log, scheduler.log",
    )


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
