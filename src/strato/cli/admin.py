"""What the admin verbs (`strato keys`, `strato audit`) check first: that they were given the admin key.

They work on the database directly rather than through a running gateway, so the key they are
given (STRATO_MASTER_KEY or STRATO_ADMIN_KEY, or the config file) is checked against the hashes of
the admin keys the gateway last ran with on that database.
"""

from __future__ import annotations

from typing import NoReturn

import typer

from strato.auth import KeyStore
from strato.cli.options import ConfigOption
from strato.config import Settings, load_settings
from strato.store.sql import SQLStore


def _refuse(message: str) -> NoReturn:
    typer.echo(f"strato: error: {message}", err=True)
    raise typer.Exit(2)


def reader_settings(config: ConfigOption) -> Settings:
    """The settings for a verb that reads every key's traces (`strato traces`). Without auth it is
    open, as the API is; once a gateway with admin keys has run on the database, it needs one."""
    settings = load_settings(config)
    store = KeyStore.open(settings.store.resolved_url())
    try:
        _check_admin_key(settings, store)
    finally:
        store.close()
    return settings


def reader_store(config: ConfigOption) -> SQLStore:
    """The store, opened once, for a verb that reads every key's traces (`strato traces`): open
    without auth, as the API is; once a gateway with admin keys has run on the database, only with
    one of them."""
    settings = load_settings(config)
    store = SQLStore.open(settings.store.resolved_url())
    try:
        _check_admin_key(settings, KeyStore(store.engine))  # the same database, already migrated
    except BaseException:
        store.close()
        raise
    return store


def admin_store(config: ConfigOption) -> tuple[Settings, KeyStore]:
    """The settings and the key store, once the caller has shown an admin key the gateway accepts."""
    settings = load_settings(config)
    if not settings.server.admin_keys():
        _refuse(
            "this command needs the admin key: set STRATO_MASTER_KEY (or STRATO_ADMIN_KEY) to the key "
            "`strato serve` runs with"
        )
    store = KeyStore.open(settings.store.resolved_url())
    try:
        _check_admin_key(settings, store)
    except BaseException:
        store.close()
        raise
    return settings, store


def _check_admin_key(settings: Settings, store: KeyStore) -> None:
    """Refuse when the gateway has run on this database with admin keys and the settings hold none
    of them (before any such gateway has run, anything passes)."""
    given = settings.server.admin_keys()
    if store.admin_key_matches(given) is not False:
        return
    if not given:
        _refuse(
            "this database belongs to a gateway with auth on: set STRATO_MASTER_KEY (or "
            "STRATO_ADMIN_KEY) to the key `strato serve` runs with"
        )
    _refuse("the admin key given is not the one `strato serve` last ran with on this database")
