"""edoc-connector: the gateway between an agency's document system and the e-document interconnect.

Sub-packages own one concern each: ``edxml`` (message model, parsing, schemas), ``mapping``
(local records <-> edXML), ``trust`` (keys, PDF seals, XML signatures, encryption),
``interconnect`` (hub clients), ``hub`` (the emulator), ``store`` (tracking), ``local``
(spool folder and AMQP adapters) and ``daemon`` (pipelines and lifecycle).
"""

__version__ = "0.1.0"

# pyHanko imports cryptography's deprecated DSA types: a warning every process (daemon, pool
# workers, CLI, demo) would print and no operator can act on. Filtered here, on first import.
from connector.logsetup import quiet_known_warnings as _quiet

_quiet()
