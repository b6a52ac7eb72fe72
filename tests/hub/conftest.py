from tests.hub.harness import client_a, client_b, hub

__all__ = ["client_a", "client_b", "hub"]
