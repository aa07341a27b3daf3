"""The `hub` command: serve, worker, migrate, create-admin, demo, rotate-keys, audit verify,
bus acknowledge-loss, reset-two-factor."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import signal
import sys
from pathlib import Path

from hub.errors import HubError
from hub.settings import ProcessOptions, Settings, SettingsError, embedded
from hub.web import logs, serving


def cmd_serve(args: argparse.Namespace) -> None:
    from hub.web.app import create_app

    settings = Settings.from_env()
    # Without Redis the bus lives in this process, so the worker role must too.
    app = create_app(settings, run_worker=settings.redis_url is None)
    serving.serve(app, settings, args.host, args.port)


def cmd_worker(args: argparse.Namespace) -> None:
    import httpx

    from hub.services import WORKER_GROUPS, Services
    from hub.workers.runner import group_names, select_groups

    # Named groups are checked first: a typo is the same mistake on every machine.
    groups = select_groups(WORKER_GROUPS, group_names(args.groups), group_names(args.without) or ())
    settings = Settings.from_env()
    if settings.redis_url is None:
        raise SettingsError(
            "Environment variable REDIS_URL is missing; a separate worker needs Redis "
            "(without Redis, `hub demo` and `hub serve` run the worker role themselves)."
        )

    async def run() -> None:
        services = Services.build(settings)
        await services.bus.start()
        await services.epoch.start()
        async with httpx.AsyncClient(timeout=10) as client:
            worker = services.worker(client, groups)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await worker.start()
            serving.settle_gc()
            logging.getLogger("hub.worker").info(
                "worker %s started (groups: %s)", worker.name, ",".join(groups)
            )
            endpoints = None
            if args.port:
                endpoints = serving.worker_endpoints(services, args.host, args.port)
                serving_task = asyncio.create_task(endpoints.serve())
            await stop.wait()
            await worker.stop()
            if endpoints is not None:
                endpoints.should_exit = True
                await serving_task
        await services.close()

    asyncio.run(run())


def cmd_migrate(args: argparse.Namespace) -> None:
    from hub.storage.engine import migrate

    migrate(Settings.from_env())
    print("Database is at the latest schema.")


def cmd_create_admin(args: argparse.Namespace) -> None:
    from hub.accounts.passwords import check_new_password
    from hub.storage.engine import make_engine, migrate, sessionmaker
    from hub.storage.store import Store

    settings = Settings.from_env()
    password = args.password or getpass.getpass("Password for the new admin: ")
    check_new_password(password, email=args.email, name=args.name)  # WeakPassword says why
    migrate(settings)

    async def run() -> None:
        engine = make_engine(settings)
        try:
            workspace, user = await Store(sessionmaker(engine)).create_workspace_with_admin(
                args.workspace, args.email, password, args.name
            )
        finally:
            await engine.dispose()
        print(f"Created workspace {workspace.id} ({workspace.name}) with admin {user.email}.")

    asyncio.run(run())


def cmd_reset_two_factor(args: argparse.Namespace) -> None:
    """The operator's way back in for someone who lost their phone and their recovery codes
    and whose account no single workspace's admin may reset (it belongs to several)."""
    from hub.accounts.twofactor import TwoFactor
    from hub.errors import NotFound
    from hub.storage.engine import make_engine, sessionmaker
    from hub.storage.store import Store
    from hub.storage.vault import Vault

    settings = Settings.from_env()

    async def run() -> bool:
        engine = make_engine(settings)
        try:
            store = Store(sessionmaker(engine))
            user = await store.user_by_email(args.email)
            if user is None:
                raise NotFound("No account has that e-mail.")
            vault = Vault(settings.encryption_keys)
            if not await TwoFactor(store.sessions, vault).disable(user.id):
                return False
            await store.audit(None, "system", None, "two_factor.reset", "user", str(user.id))
            return True
        finally:
            await engine.dispose()

    if asyncio.run(run()):
        print("Two-factor sign-in is off for that account; it signs in with its password.")
    else:
        print("That account had no second factor.")


def cmd_demo(args: argparse.Namespace) -> None:
    from hub.demo import seed
    from hub.storage.engine import make_engine, migrate, sessionmaker
    from hub.storage.store import Store
    from hub.web.app import create_app

    data_dir = Path(args.data_dir)
    settings = embedded(data_dir)
    if settings.public_url is None:
        settings = settings.with_overrides(public_url=f"http://{args.host}:{args.port}")
    migrate(settings)
    origins = sorted(
        {
            settings.public_url or "",
            f"http://127.0.0.1:{args.port}",
            f"http://localhost:{args.port}",
        }
        - {""}
    )

    async def seed_once() -> object:
        engine = make_engine(settings)
        try:
            return await seed(Store(sessionmaker(engine)), data_dir, origins)
        finally:
            await engine.dispose()

    demo = asyncio.run(seed_once())
    base = settings.public_url
    print(
        "\nSosyoCRM hub demo is running (SQLite and the in-process bus; data in "
        f"{data_dir.resolve()}).\n"
        f"  Inbox:      {base}/\n"
        f"  E-mail:     {demo.email}\n"  # type: ignore[attr-defined]
        f"  Password:   {demo.password}\n"  # type: ignore[attr-defined]
        f"  Demo page:  {base}/demo?channel={demo.public_key}\n",  # type: ignore[attr-defined]
        flush=True,
    )
    app = create_app(settings, run_worker=True)
    serving.serve(app, settings, args.host, args.port)


def cmd_rotate_keys(args: argparse.Namespace) -> None:
    from hub.storage.engine import make_engine, sessionmaker
    from hub.storage.rotation import Rotation, rotate_secrets
    from hub.storage.store import Store
    from hub.storage.vault import SecretUnreadable, Vault

    settings = Settings.from_env()

    async def run() -> Rotation:
        engine = make_engine(settings)
        try:
            store, vault = Store(sessionmaker(engine)), Vault(settings.encryption_keys)
            return await rotate_secrets(store, vault, batch_rows=args.batch)
        finally:
            await engine.dispose()

    done = asyncio.run(run())
    print(
        f"Rotated {done.rotated} sealed secrets to the newest key "
        f"({done.current} already were under it)."
    )
    for column in done.columns:
        print(
            f"  {column.name}: {column.rotated} rotated, {column.current} already current"
            + (f", {len(column.unreadable)} unreadable" if column.unreadable else "")
        )
    if done.unreadable:
        raise SecretUnreadable(
            f"{len(done.unreadable)} sealed values open with none of HUB_ENCRYPTION_KEYS "
            f"and were left as they are (the first: {done.unreadable[0]})."
        )


def cmd_audit_verify(args: argparse.Namespace) -> None:
    from hub.storage.audit import Verdict, verify
    from hub.storage.engine import make_engine, sessionmaker

    settings = Settings.from_env()

    async def run() -> Verdict:
        engine = make_engine(settings)
        try:
            return await verify(sessionmaker(engine))
        finally:
            await engine.dispose()

    verdict = asyncio.run(run())
    print(verdict.line())
    if not verdict.ok:
        raise SystemExit(1)


def cmd_bus_acknowledge_loss(args: argparse.Namespace) -> None:
    """Clear the recorded loss of the bus's data that /readyz, /metrics and the status page
    report (`hub.web.epoch`), once an operator has seen it (docs/operations.md)."""
    from hub.bus import make_bus

    settings = Settings.from_env()
    if settings.redis_url is None:
        raise SettingsError("Environment variable REDIS_URL is missing: there is no bus to ask.")

    async def run() -> dict[str, str] | None:
        bus = make_bus(settings)
        await bus.start()
        try:
            return await bus.acknowledge_loss()
        finally:
            await bus.close()

    loss = asyncio.run(run())
    if loss is None:
        print("No loss of the bus's data is recorded.")
        return
    print(
        f"Acknowledged the loss of the bus's data noticed at {loss.get('detected_at', '?')} "
        f"by node {loss.get('node', '?')}; the nodes stop reporting it within seconds."
    )


def _positive(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError("a whole number from 1 up")
    return int(raw)


def main(argv: list[str] | None = None) -> None:
    try:
        options = ProcessOptions.from_env()
    except SettingsError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    parser = argparse.ArgumentParser(prog="hub", description="SosyoCRM hub")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a web process")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(run=cmd_serve)
    worker = sub.add_parser("worker", help="run stream consumers (needs REDIS_URL)")
    worker.add_argument("--host", default="127.0.0.1", help="of --port's listener")
    worker.add_argument(
        "--port",
        type=int,
        default=options.worker_port,
        help="serve /healthz, /readyz and /metrics on this port (HUB_WORKER_PORT; none if unset)",
    )
    chosen = worker.add_mutually_exclusive_group()
    chosen.add_argument(
        "--groups",
        default=None,
        metavar="A,B",
        help="run only these consumer groups (HUB_WORKER_GROUPS); the periodic sweeps run "
        "where persist runs",
    )
    chosen.add_argument(
        "--without",
        default=None,
        metavar="A,B",
        help="run every consumer group but these (HUB_WORKER_WITHOUT)",
    )
    worker.set_defaults(run=cmd_worker)
    sub.add_parser("migrate", help="upgrade the database schema").set_defaults(run=cmd_migrate)
    admin = sub.add_parser("create-admin", help="create a workspace and its admin")
    admin.add_argument("--workspace", required=True, help="workspace name")
    admin.add_argument("--email", required=True)
    admin.add_argument("--name", default=None)
    admin.add_argument("--password", default=None, help="read from the terminal when omitted")
    admin.set_defaults(run=cmd_create_admin)
    demo = sub.add_parser("demo", help="run everything in one process on SQLite, seeded")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--data-dir", default="hub-data")
    demo.set_defaults(run=cmd_demo)
    rotate = sub.add_parser(
        "rotate-keys", help="re-encrypt every stored secret under the newest encryption key"
    )
    rotate.add_argument(
        "--batch", type=_positive, default=100, help="channels per transaction (100)"
    )
    rotate.set_defaults(run=cmd_rotate_keys)
    reset = sub.add_parser(
        "reset-two-factor", help="turn off an account's two-factor sign-in (a lost phone)"
    )
    reset.add_argument("--email", required=True)
    reset.set_defaults(run=cmd_reset_two_factor)
    audit = sub.add_parser("audit", help="the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser(
        "verify", help="check the audit log's hash chain; exit 1 naming the first broken row"
    ).set_defaults(run=cmd_audit_verify)
    bus = sub.add_parser("bus", help="the event bus (Redis)")
    bus_sub = bus.add_subparsers(dest="bus_command", required=True)
    bus_sub.add_parser(
        "acknowledge-loss",
        help="stop reporting a loss of Redis's data on /readyz, /metrics and the status page",
    ).set_defaults(run=cmd_bus_acknowledge_loss)
    args = parser.parse_args(argv)
    if args.command == "worker" and args.groups is None and args.without is None:
        args.groups, args.without = options.worker_groups, options.worker_without
    fmt = options.log_format or ("json" if args.command in ("serve", "worker") else "text")
    try:
        logs.configure(fmt)
    except ValueError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        args.run(args)
    except (SettingsError, HubError) as exc:
        print(f"hub: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
