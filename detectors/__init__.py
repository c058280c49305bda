"""driftline's monitoring core: detectors, label join, rolling metrics and policies.

Pure and synchronous: nothing here knows about Kafka or imports from ``stream``.
"""
