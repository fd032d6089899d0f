"""A prover worker stand-in for the generator-service tests, in a module of its own: a spawned worker
imports it, and it imports nothing heavy, so the test can see that a worker never loads torch."""
import os
import sys


def ask(conn, address, states, n) -> None:
    """A real worker process: on 'go', ask the service for each state in turn, send back what came."""
    client = address.connect()
    conn.send("ready")
    conn.recv()
    out = [client.generate(s, n) for s in states]
    conn.send({"pid": os.getpid(), "candidates": out, "torch_loaded": "torch" in sys.modules})
    conn.recv()
