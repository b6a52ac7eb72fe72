"""Adapters to the agency's local document system (spool folder, AMQP)."""
