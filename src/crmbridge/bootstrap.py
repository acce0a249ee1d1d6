"""The composition root: settings in, a wired ``SyncPipeline`` out. The only place adapters meet."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from crmbridge.errors import ConfigError, ConfigProblem, Location
from crmbridge.mapping import FieldMapping, load_mapping
from crmbridge.pipeline import SyncPipeline
from crmbridge.retry import RetryPolicy, Sleeper
from crmbridge.rules import RuleSet, load_rule_set
from crmbridge.settings import Settings
from crmbridge.sinks.salesforce import SalesforceSink, TokenProvider, build_session
from crmbridge.sinks.salesforce_auth import JwtBearerLogin
from crmbridge.sources.hubspot import HubSpotSource, SearchPacer
from crmbridge.state import open_store
from crmbridge.state.sqlite import SQLiteStateStore

RULES_FILE = "qualification.yaml"


@dataclass
class Config:
    """What an admin's files say: the field/stage map and the qualification rule set."""

    mapping: FieldMapping
    rules: RuleSet


def load_config(mappings_dir: Path) -> Config:
    """Load and validate every file under ``mappings_dir``; all problems in one ConfigError."""
    if not mappings_dir.is_dir():
        raise ConfigError(
            ConfigProblem(
                Location(str(mappings_dir)),
                "mappings directory not found",
                hint="set CRMBRIDGE_MAPPINGS_DIR or run from the directory that holds mappings/",
            )
        )
    problems: list[ConfigProblem] = []
    mapping = rules = None
    try:
        mapping = load_mapping(mappings_dir)
    except ConfigError as exc:
        problems.extend(exc.problems)
    try:
        rules = load_rule_set(mappings_dir / RULES_FILE)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems or mapping is None or rules is None:
        raise ConfigError(problems)
    return Config(mapping=mapping, rules=rules)


def require_endpoints(settings: Settings) -> None:
    """Refuse to start without both endpoints, naming the variables to set."""
    missing = []
    if not settings.hubspot.access_token:
        missing.append("CRMBRIDGE_HUBSPOT__ACCESS_TOKEN")
    salesforce = settings.salesforce
    jwt_parts = {
        "CRMBRIDGE_SALESFORCE__CONSUMER_KEY": salesforce.consumer_key,
        "CRMBRIDGE_SALESFORCE__USERNAME": salesforce.username,
        "CRMBRIDGE_SALESFORCE__PRIVATE_KEY_FILE": salesforce.private_key_file,
    }
    if any(jwt_parts.values()):
        # A JWT bearer login was meant: name whatever part of it is missing.
        missing += [name for name, value in jwt_parts.items() if not value]
    else:
        if not salesforce.instance_url:
            missing.append("CRMBRIDGE_SALESFORCE__INSTANCE_URL")
        if not salesforce.access_token:
            missing.append("CRMBRIDGE_SALESFORCE__ACCESS_TOKEN")
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
    store: SQLiteStateStore
    sink: SalesforceSink
    source: HubSpotSource
    config: Config

    login: JwtBearerLogin | None = None

    def close(self) -> None:
        self.sink.close()
        self.store.close()
        if self.login is not None:
            self.login.close()


def build_app(
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    sleep: Sleeper | None = None,
    clock: Callable[[], float] = time.time,
    token_provider: TokenProvider | None = None,
    config: Config | None = None,
) -> App:
    """Wire the adapters the settings name into a pipeline (files are validated first).

    ``stop`` is the process's stop Event: every wait (retries, pacing, lock resends) is cut
    short by it, and a call still unanswered ``stop_grace_s`` after it is set is abandoned.
    ``sleep`` replaces those waits in tests."""
    require_endpoints(settings)
    config = config or load_config(settings.mappings_dir)
    stop = stop if stop is not None else threading.Event()
    sleep = sleep if sleep is not None else stop.wait

    def policy(system: str) -> RetryPolicy:
        return RetryPolicy(
            system, settings.retry, sleep=sleep, stop=stop, stop_grace_s=settings.stop_grace_s
        )

    salesforce = settings.salesforce
    login = None
    if salesforce.uses_jwt:
        login = JwtBearerLogin(
            salesforce,
            policy("salesforce-login"),
            session=build_session(str(salesforce.ca_bundle) if salesforce.ca_bundle else None),
            clock=clock,
        )
        try:
            token = login()
        except BaseException:
            login.close()
            raise
        salesforce = salesforce.model_copy(
            update={
                "instance_url": salesforce.instance_url or login.instance_url,
                "access_token": SecretStr(token),
            }
        )
        token_provider = token_provider or login
    store = open_store(settings.state_url)
    source = HubSpotSource(
        settings.hubspot,
        policy("hubspot"),
        # Pacing runs on the real clock, so it waits for real (and a stop cuts it short).
        pacer=SearchPacer(settings.hubspot.search_per_s, sleep=stop.wait),
    )
    sink = SalesforceSink(
        salesforce,
        policy("salesforce"),
        external_id_field=config.mapping.external_id_field,
        object_name=config.mapping.target_object,
        token_provider=token_provider,
    )
    pipeline = SyncPipeline(
        source=source,
        sink=sink,
        store=store,
        mapping=config.mapping,
        rules=config.rules,
        index_lag_s=settings.hubspot.index_lag_s,
        batch_size=settings.salesforce.batch_size,
        clock=clock,
        sleep=sleep,
        stop=stop,
    )
    return App(pipeline=pipeline, store=store, sink=sink, source=source, config=config, login=login)
