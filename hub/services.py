"""The long-lived parts of a process, built once from the settings and passed down."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.outbound import Platforms
from hub.accounts.auth import Signer
from hub.accounts.invitations import Invitations
from hub.accounts.members import Members
from hub.accounts.resets import PasswordResets
from hub.accounts.sessions import SessionSweep, UserSessions
from hub.automation.worker import AUTOMATION_GROUP, Automation
from hub.bus import Bus, make_bus
from hub.canned.service import Canned
from hub.channels.service import Channels
from hub.channels.tokens import TokenRefresher
from hub.comments.replies import ReplySweeper
from hub.hooks.service import HOOKS_GROUP, Hooks, Retrier
from hub.mail import Mailer
from hub.media import make_media_store
from hub.media.library import MediaLibrary
from hub.media.links import MediaLinks
from hub.notify.mentions import Mentions
from hub.notify.prefs import Prefs
from hub.notify.push import Pusher, PushKeys, Subscriptions
from hub.notify.worker import PUSH_GROUP, PushWorker
from hub.privacy.deletions import Deletions, Sweeper
from hub.privacy.erasure import Erasure
from hub.privacy.retention import Retention
from hub.realtime.fanout import ROOM_LINGER_S, Fanout, Outlet
from hub.realtime.ingress import Ingress
from hub.routing.service import Router
from hub.routing.teams import Teams
from hub.settings import Settings
from hub.storage.engine import make_engine, sessionmaker
from hub.storage.lastknown import LastKnown
from hub.storage.store import Store
from hub.storage.vault import Vault
from hub.templates.service import TemplateRefresher, Templates
from hub.web.epoch import EpochWatch
from hub.web.metrics import Metrics
from hub.webchat.service import WebChat
from hub.workers.media import MEDIA_GROUP, MediaFetcher
from hub.workers.profiles import Profiler
from hub.workers.runner import (
    PERSIST_GROUP,
    PROFILE_GROUP,
    SEND_GROUP,
    Consumer,
    Handler,
    Persister,
    Task,
    Worker,
)
from hub.workers.sender import Sender

# Every consumer group of the worker role, in the order a worker starts them.
WORKER_GROUPS = (
    PERSIST_GROUP,
    SEND_GROUP,
    PROFILE_GROUP,
    MEDIA_GROUP,
    AUTOMATION_GROUP,
    HOOKS_GROUP,
    PUSH_GROUP,
)


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    bus: Bus
    store: Store
    signer: Signer
    ingress: Ingress
    webchat: WebChat
    fanout: Fanout
    vault: Vault
    channels: Channels
    platforms: Platforms
    members: Members
    user_sessions: UserSessions  # sign-in sessions kept on the server
    deletions: Deletions
    teams: Teams
    canned: Canned
    library: MediaLibrary  # the workspaces' files, in the store HUB_MEDIA_URL names
    epoch: EpochWatch  # notices that the bus lost its data
    mailer: Mailer  # invitations and password resets (SMTP, or files in the demo)
    invitations: Invitations
    resets: PasswordResets
    prefs: Prefs  # notification preferences (hub.notify)
    push_keys: PushKeys  # the VAPID key pair, read once
    subscriptions: Subscriptions
    mentions: Mentions
    connected: set[Outlet] = field(default_factory=set)  # every open socket on this node
    metrics: Metrics = field(default_factory=Metrics)  # what this node counts (/metrics)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        engine = make_engine(settings)
        bus = make_bus(settings)
        last_known = LastKnown(bus, ttl_s=settings.last_known_ttl_s)
        store = Store(sessionmaker(engine), last_known=last_known)
        signer = Signer(settings)
        vault = Vault(settings.encryption_keys)
        platforms = Platforms(
            graph=settings.graph_url,
            instagram=settings.instagram_graph_url,
            telegram=settings.telegram_api_url,
        )
        ingress = Ingress(
            bus, store, cache_ttl_s=settings.cache_ttl_s, presence_ttl_s=settings.presence_ttl_s
        )
        metrics = Metrics()
        library = MediaLibrary(make_media_store(settings))
        fanout = Fanout(
            bus,
            resume_max_events=settings.resume_max_events,
            delivery=metrics.delivery,
            linger_s=ROOM_LINGER_S,
        )
        return cls(
            settings=settings,
            engine=engine,
            bus=bus,
            store=store,
            signer=signer,
            ingress=ingress,
            webchat=WebChat(
                store, signer, vault, cache_ttl_s=settings.cache_ttl_s, last_known=last_known
            ),
            fanout=fanout,
            vault=vault,
            channels=Channels(store, vault, cache_ttl_s=settings.cache_ttl_s, platforms=platforms),
            platforms=platforms,
            members=Members(store.sessions),
            user_sessions=UserSessions(
                store.sessions,
                bus,
                max_age_s=settings.session_max_age_s,
                last_known=last_known,
            ),
            deletions=Deletions(
                store,
                Erasure(store.sessions, bus, ingress, library),
                secret_key=settings.secret_key,
                lease_s=settings.deletion_lease_s,
            ),
            teams=Teams(store.sessions, bus),
            canned=Canned(store.sessions),
            library=library,
            epoch=EpochWatch(bus, metrics, node=settings.node_id, on_loss=fanout.lost),
            mailer=Mailer(settings),
            invitations=Invitations(store.sessions, ttl_s=settings.invitation_ttl_s),
            resets=PasswordResets(store, ttl_s=settings.password_reset_ttl_s),
            prefs=Prefs(store.sessions),
            push_keys=PushKeys(store.sessions, vault),
            subscriptions=Subscriptions(store.sessions),
            mentions=Mentions(store.sessions, bus),
            metrics=metrics,
        )

    def worker(self, client: httpx.AsyncClient, groups: Sequence[str] = WORKER_GROUPS) -> Worker:
        """The worker role on this process's bus: persist (and routing), send, profiles,
        inbound media, automation (the away auto-reply), outbound webhooks and their retries,
        token refresh, the WhatsApp templates' sync, the deletion requests' sweep and the
        retention sweep. With `groups` (`hub.workers.runner.select_groups`) only those consumer
        groups; the periodic tasks come with "persist"."""
        settings, bus = self.settings, self.bus
        hooks = self.hooks()  # with its own client: see hub.web.pinning
        media = self.media_fetcher(client)  # and one of its own for links in webhooks
        push = self.push_worker()  # and one of its own for push services
        handlers: dict[str, Callable[[], Handler]] = {
            PERSIST_GROUP: lambda: (
                Persister(
                    self.store.sessions, bus, Router(self.ingress.presences), self.library
                ).handle
            ),
            SEND_GROUP: lambda: self.sender(client).handle,
            PROFILE_GROUP: lambda: self.profiler(client).handle,
            MEDIA_GROUP: lambda: media.handle,
            AUTOMATION_GROUP: lambda: self.automation().handle,
            HOOKS_GROUP: lambda: hooks.handle,
            PUSH_GROUP: lambda: push.handle,
        }
        tasks: list[Task] = []
        if PERSIST_GROUP in groups:
            tasks = [
                self.token_refresher(),
                Sweeper(self.deletions, every_s=settings.deletion_lease_s / 2),
                Retention(
                    self.store,
                    bus,
                    self.ingress,
                    self.library,
                    every_s=settings.retention_sweep_s,
                    waiting_ttl_s=settings.waiting_change_ttl_s,
                ),
                Retrier(hooks, every_s=settings.hooks_retry_s),
                TemplateRefresher(self.templates(), every_s=settings.template_sync_s),
                ReplySweeper(self.store.sessions, every_s=settings.retention_sweep_s),
                SessionSweep(self.user_sessions, every_s=settings.retention_sweep_s),
            ]
        consumers = [Consumer(settings, bus, g, handlers[g]()) for g in groups]
        return Worker(consumers, tasks=[*tasks, hooks, media, push])  # last: they close clients

    def sender(self, client: httpx.AsyncClient) -> Sender:
        return Sender(
            self.bus,
            self.store,
            self.ingress,
            self.channels,
            self.platforms,
            self.metrics,
            client,
            self.library,
            MediaLinks(self.settings.secret_key, self.settings.public_url),
        )

    def profiler(self, client: httpx.AsyncClient) -> Profiler:
        return Profiler(self.bus, self.channels, self.platforms, client)

    def media_fetcher(self, client: httpx.AsyncClient) -> MediaFetcher:
        return MediaFetcher(
            self.bus,
            self.channels,
            self.library,
            self.platforms,
            client,
            max_bytes=self.settings.max_media_bytes,
            timeout_s=self.settings.media_fetch_timeout_s,
            allow_private=self.settings.media_allow_private,
        )

    def automation(self) -> Automation:
        return Automation(
            self.bus,
            self.store,
            self.ingress,
            self.members,
            self.teams,
            cache_ttl_s=self.settings.cache_ttl_s,
        )

    def hooks(self) -> Hooks:
        """Endpoints and deliveries (sent through a client of their own)."""
        return Hooks(self.store, self.bus, self.vault, self.settings)

    def push_worker(self) -> PushWorker:
        """Web Push to the agents an event concerns (sent through a client of its own)."""
        settings = self.settings
        public = settings.public_url or ""
        pusher = Pusher(
            self.push_keys,
            self.subscriptions,
            contact=public if public.startswith("https://") else "mailto:hub@localhost",
            allow_loopback=settings.push_allow_loopback,
            timeout_s=settings.hooks_timeout_s,
        )
        return PushWorker(self.store.sessions, self.prefs, pusher)

    def templates(self) -> Templates:
        """WhatsApp templates: their sync, list and status webhooks."""
        return Templates(self.store, self.vault, self.platforms)

    def token_refresher(self) -> TokenRefresher:
        return TokenRefresher(self.channels, self.settings)

    async def close(self) -> None:
        await self.epoch.stop()
        await self.fanout.stop()
        await self.bus.close()
        await self.library.store.close()
        await self.engine.dispose()
