"""Trust: key material, the demo PKI, the trust store, PDF seals, XML signatures, encryption.

Submodules are imported directly (``connector.trust.keys``, ``connector.trust.truststore``...);
this package module imports nothing so that loading one concern never pulls in the others.
"""
