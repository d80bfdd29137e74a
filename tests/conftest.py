import sys
from pathlib import Path

# builders.py lives next to the tests; make it importable as a plain module.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import argparse
import socket

import pytest


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def cli():
    """A tiny nngrader entry: register() on a plain argparse parser, as grader/cli.py will."""
    from grader.export.cli import register

    def run(*argv) -> int:
        parser = argparse.ArgumentParser(prog="nngrader")
        register(parser.add_subparsers(required=True))
        args = parser.parse_args([str(a) for a in argv])
        return args.func(args)
    return run
