"""The composition root: settings in, a wired ``SyncPipeline`` out. The only place adapters meet."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from pydantic import SecretStr

from crmbridge.configuration import Configuration, load_configuration
from crmbridge.errors import ConfigError, ConfigProblem, Location, StateStoreMissingError
from crmbridge.observe import CallObserver
from crmbridge.pipeline import SyncPipeline
from crmbridge.ports import StateStore
from crmbridge.retry import RetryPolicy, Sleeper
from crmbridge.settings import Settings
from crmbridge.sinks.salesforce import SalesforceSink, TokenProvider, build_session
from crmbridge.sinks.salesforce_auth import JwtBearerLogin
from crmbridge.sources.hubspot import HubSpotSource, SearchPacer
from crmbridge.state import open_store

#: What an admin's files say: the rules and the field/stage map (one whole configuration).
Config = Configuration
load_config = load_configuration

log = structlog.get_logger(__name__)


def missing_salesforce_settings(settings: Settings) -> list[str]:
    """The variables still to set before crmbridge can reach Salesforce ([] when none)."""
    salesforce = settings.salesforce
    jwt_parts = {
        "CRMBRIDGE_SALESFORCE__CONSUMER_KEY": salesforce.consumer_key,
        "CRMBRIDGE_SALESFORCE__USERNAME": salesforce.username,
        "CRMBRIDGE_SALESFORCE__PRIVATE_KEY_FILE": salesforce.private_key_file,
    }
    if any(jwt_parts.values()):
        # A JWT bearer login was meant: name whatever part of it is missing.
        return [name for name, value in jwt_parts.items() if not value]
    missing = []
    if not salesforce.instance_url:
        missing.append("CRMBRIDGE_SALESFORCE__INSTANCE_URL")
    if not salesforce.access_token:
        missing.append("CRMBRIDGE_SALESFORCE__ACCESS_TOKEN")
    return missing


def require_endpoints(settings: Settings) -> None:
    """Refuse to start without both endpoints, naming the variables to set."""
    missing = [] if settings.hubspot.access_token else ["CRMBRIDGE_HUBSPOT__ACCESS_TOKEN"]
    missing += missing_salesforce_settings(settings)
    if missing:
        raise ConfigError(
            [
                ConfigProblem(
                    Location(f"environment variable {name}"),
                    "not set",
                    hint="set it (or put it in .env); for Salesforce either INSTANCE_URL and "
                    "ACCESS_TOKEN, or the JWT bearer login (CONSUMER_KEY, USERNAME, "
                    "PRIVATE_KEY_FILE); `crmbridge demo` runs against the built-in simulators",
                )
                for name in missing
            ]
        )


@dataclass
class App:
    pipeline: SyncPipeline
    store: StateStore
    sink: SalesforceSink
    source: HubSpotSource
    config: Config

    login: JwtBearerLogin | None = None

    def close(self) -> None:
        self.sink.close()
        self.store.close()
        if self.login is not None:
            self.login.close()


class _Waits:
    """How every adapter waits: on the process's stop Event (or a test's sleeper)."""

    def __init__(
        self,
        settings: Settings,
        stop: threading.Event | None,
        sleep: Sleeper | None,
        observer: CallObserver | None = None,
    ) -> None:
        self.settings = settings
        self.stop = stop if stop is not None else threading.Event()
        self.sleep = sleep if sleep is not None else self.stop.wait
        self.observer = observer

    def policy(self, system: str) -> RetryPolicy:
        return RetryPolicy(
            system,
            self.settings.retry,
            sleep=self.sleep,
            stop=self.stop,
            stop_grace_s=self.settings.stop_grace_s,
            observer=self.observer,
        )


def _connect_salesforce(
    settings: Settings,
    waits: _Waits,
    *,
    object_name: str,
    external_id_field: str,
    object_location: Location | None = None,
    clock: Callable[[], float] = time.time,
    token_provider: TokenProvider | None = None,
) -> tuple[SalesforceSink, JwtBearerLogin | None]:
    """The Salesforce sink the settings name, logged in first when they name a JWT bearer
    login (the login renews the session later). The caller closes both."""
    salesforce = settings.salesforce
    login = None
    if salesforce.uses_jwt:
        login = JwtBearerLogin(
            salesforce,
            waits.policy("salesforce-login"),
            session=build_session(str(salesforce.ca_bundle) if salesforce.ca_bundle else None),
            clock=clock,
        )
        try:
            token = login()
        except BaseException:
            login.close()
            raise
        instance_url = salesforce.instance_url or login.instance_url
        if instance_url is None:
            login.close()
            raise ConfigError(
                ConfigProblem(
                    Location("environment variable CRMBRIDGE_SALESFORCE__INSTANCE_URL"),
                    "not set, and the JWT login's answer named no https instance URL",
                    hint="set it to the org's My Domain URL, e.g. https://acme.my.salesforce.com",
                )
            )
        salesforce = salesforce.model_copy(
            update={"instance_url": instance_url, "access_token": SecretStr(token)}
        )
        token_provider = token_provider or login
    sink = SalesforceSink(
        salesforce,
        waits.policy("salesforce"),
        external_id_field=external_id_field,
        object_name=object_name,
        object_location=object_location,
        token_provider=token_provider,
    )
    return sink, login


def check_against_salesforce(
    settings: Settings, config: Config, *, stop: threading.Event | None = None
) -> str:
    """Check the map against Salesforce's live describe when its settings are there; return
    what was checked. Raises ConfigError for every problem, and the API errors of the call."""
    missing = missing_salesforce_settings(settings)
    if missing:
        return f"only the files were checked: {', '.join(missing)} not set"
    sink, login = _connect_salesforce(
        settings,
        _Waits(settings, stop, None),
        object_name=config.mapping.target_object,
        external_id_field=config.mapping.external_id_field,
        object_location=config.mapping.locations.get("object"),
    )
    try:
        schema = sink.describe()
    finally:
        sink.close()
        if login is not None:
            login.close()
    problems = config.check_schema(schema)
    if problems:
        raise ConfigError(problems)
    return (
        f"checked against Salesforce's describe of {schema.name} "
        f"(API version {settings.salesforce.api_version})"
    )


def build_app(
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    sleep: Sleeper | None = None,
    clock: Callable[[], float] = time.time,
    token_provider: TokenProvider | None = None,
    config: Config | None = None,
    dry_run: bool = False,
    observer: CallObserver | None = None,
) -> App:
    """Wire the adapters the settings name into a pipeline (files are validated first).

    The state store must exist (``crmbridge state init``): a missing one is a
    ``StateStoreMissingError``, except for a ``dry_run``, which then judges from an empty
    in-memory state and writes nothing.

    ``stop`` is the process's stop Event: every wait (retries, pacing, lock resends) is cut
    short by it, and a call still unanswered ``stop_grace_s`` after it is set is abandoned.
    ``sleep`` replaces those waits in tests. ``observer`` hears every call attempt and retry
    (metrics, readiness)."""
    require_endpoints(settings)
    config = config or load_config(settings.mappings_dir)
    store = _open_state(settings.state_url, dry_run=dry_run)  # before any call: it may be absent
    waits = _Waits(settings, stop, sleep, observer)
    try:
        sink, login = _connect_salesforce(
            settings,
            waits,
            object_name=config.mapping.target_object,
            external_id_field=config.mapping.external_id_field,
            object_location=config.mapping.locations.get("object"),
            clock=clock,
            token_provider=token_provider,
        )
    except BaseException:
        store.close()
        raise
    source = HubSpotSource(
        settings.hubspot,
        waits.policy("hubspot"),
        # Pacing runs on the real clock, so it waits for real (and a stop cuts it short).
        pacer=SearchPacer(settings.hubspot.search_per_s, sleep=waits.stop.wait),
    )
    pipeline = SyncPipeline(
        source=source,
        sink=sink,
        store=store,
        config=config,
        index_lag_s=settings.hubspot.index_lag_s,
        batch_size=settings.salesforce.batch_size,
        clock=clock,
        sleep=waits.sleep,
        stop=waits.stop,
    )
    return App(pipeline=pipeline, store=store, sink=sink, source=source, config=config, login=login)


@dataclass
class MetadataClients:
    """The two adapters, for reading metadata only (``crmbridge mappings init``)."""

    source: HubSpotSource
    sink: SalesforceSink
    login: JwtBearerLogin | None

    def close(self) -> None:
        self.sink.close()
        if self.login is not None:
            self.login.close()


def metadata_clients(
    settings: Settings, *, object_name: str = "Lead", stop: threading.Event | None = None
) -> MetadataClients:
    """Connect to both systems to read their metadata; no state store, no mapping files."""
    require_endpoints(settings)
    waits = _Waits(settings, stop, None)
    sink, login = _connect_salesforce(
        settings, waits, object_name=object_name, external_id_field="Id"
    )
    source = HubSpotSource(settings.hubspot, waits.policy("hubspot"))
    return MetadataClients(source, sink, login)


def _open_state(url: str, *, dry_run: bool) -> StateStore:
    try:
        store = open_store(url)
    except StateStoreMissingError:
        if not dry_run:
            raise
        # Nothing synced yet: judge from the start without creating a store.
        return open_store("sqlite:///:memory:", create=True)
    identity = store.identity()
    log.info(
        "state_store_opened",
        store_id=identity.store_id,
        pipeline=identity.pipeline,
        url=identity.url,
        created_at=identity.created_at,
        created_url=identity.created_url,
    )
    return store
