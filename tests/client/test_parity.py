"""The async and blocking clients offer the same methods, declared once in client/_core."""

from __future__ import annotations

import inspect

from voip24h.client import AsyncClient, Client, _core
from voip24h.wire.protocol import DATA_TYPES

DECLARED = {*_core.REQUEST_METHODS.values(), *_core.HELPER_METHODS}


def _public(cls: type) -> set[str]:
    return {
        name
        for name, value in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(value)
    } - {"close", "aclose"}


def test_every_request_type_of_the_server_has_a_client_method():
    assert set(_core.REQUEST_METHODS) == set(DATA_TYPES)


def test_both_clients_implement_exactly_the_declared_methods():
    assert _public(Client) == DECLARED
    assert _public(AsyncClient) == DECLARED


def test_the_two_clients_take_the_same_parameters():
    for name in sorted(DECLARED):
        blocking = inspect.signature(getattr(Client, name))
        asynchronous = inspect.signature(getattr(AsyncClient, name))
        assert list(blocking.parameters) == list(asynchronous.parameters), name
        for param in blocking.parameters.values():
            other = asynchronous.parameters[param.name]
            assert (param.kind, param.default) == (other.kind, other.default), (name, param)
